/**
 * One BullMQ worker process of the peer benchmark (bench/peer.bench.ts), as a BullMQ user runs one:
 *
 *   node --import tsx bench/peer/bullmq-worker.ts --port P --queue NAME --concurrency N (--processor FILE | --in-process)
 *
 * With --processor, BullMQ's sandbox runs the file in worker threads (`useWorkerThreads`), one per
 * concurrent job at most, as our executor runs each action in a thread of its own; with --in-process
 * the processor is a function in this process's event loop. Either way the processor returns the
 * moment it started (epoch ms, sub-millisecond), which the benchmark reads back for latency.
 * Prints `ready` on stdout once the worker is connected; SIGTERM closes it (running jobs finish).
 */
import { Worker, type Job } from 'bullmq';

function flag(name: string): string | undefined {
  const index = process.argv.indexOf(name);
  return index === -1 ? undefined : process.argv[index + 1];
}

function required(name: string): string {
  const value = flag(name);
  if (value === undefined || value.startsWith('--')) throw new Error(`${name} needs a value`);
  return value;
}

const port = Number(required('--port'));
const concurrency = Number(required('--concurrency'));
if (!Number.isInteger(port) || port <= 0) throw new Error(`--port needs a port number, got ${String(flag('--port'))}`);
if (!Number.isInteger(concurrency) || concurrency <= 0)
  throw new Error(`--concurrency needs a positive integer, got ${String(flag('--concurrency'))}`);
const processorFile = flag('--processor');
const inProcess = process.argv.includes('--in-process');
if ((processorFile === undefined) === !inProcess) throw new Error('give exactly one of --processor FILE and --in-process');

const startedAt = (_job: Job): Promise<string> => Promise.resolve(String(performance.timeOrigin + performance.now()));

const worker = new Worker(required('--queue'), processorFile ?? startedAt, {
  connection: { host: '127.0.0.1', port },
  concurrency,
  useWorkerThreads: processorFile !== undefined,
});
worker.on('error', (error) => {
  process.stderr.write(`bullmq worker error: ${error.message}\n`);
});
await worker.waitUntilReady();
process.stdout.write('ready\n');

process.once('SIGTERM', () => {
  void worker.close().then(
    () => process.exit(0),
    (error: unknown) => {
      process.stderr.write(`closing the worker failed: ${String(error)}\n`);
      process.exit(1);
    },
  );
});
