/**
 * Starts one of the executor's worker-thread entry points (action-worker, discovery-worker) in a new
 * thread. Under tsx (tests, a checkout) the entry is TypeScript, and Node 20 does not carry the main
 * thread's loader hooks into workers: the thread registers tsx itself before importing the entry.
 */
import { extname } from 'node:path';
import { Worker } from 'node:worker_threads';

const EXTENSION = extname(new URL(import.meta.url).pathname);
const TSX_API = EXTENSION === '.ts' ? import.meta.resolve('tsx/esm/api') : undefined;
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.tsx !== undefined) (await import(workerData.tsx)).register();
  await import(workerData.entry);
})().catch((error) => { process.nextTick(() => { throw error; }); });
`;

export type WorkerEntry = 'action-worker' | 'discovery-worker';

/** `data` becomes the thread's workerData, with the entry's own fields added. */
export function startWorker(entry: WorkerEntry, name: string, data: object): Worker {
  const entryUrl = new URL(`./${entry}${EXTENSION}`, import.meta.url).href;
  return new Worker(BOOTSTRAP, { eval: true, name, workerData: { ...data, entry: entryUrl, tsx: TSX_API } });
}
