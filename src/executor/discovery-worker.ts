/**
 * Entry point of the thread that discovers action modules (action-discovery.ts): imports each file it
 * is given, one at a time, and reports what each defines (its name and timeout) or why it cannot be
 * used. A module's top-level code runs here, not in the executor's main thread: a process.exit() ends
 * only this thread, and the executor reports that module and carries on with the others.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { toError } from '../util/errors.js';
import { loadActionModule } from './action-loader.js';
import { parseDiscoveryData, type FromDiscovery } from './discovery-protocol.js';

const port = parentPort;
if (port === null) throw new Error('discovery-worker must run in a worker thread');
const { files, importTimeoutMs } = parseDiscoveryData(workerData);

const post = (message: FromDiscovery): void => {
  port.postMessage(message);
};

// A module's timer or promise that fails after its import must not end the thread (and be blamed on
// the module imported next): it is reported with its stack, which names the module it came from.
const stray = (error: unknown): void => {
  const failure = toError(error);
  post({ type: 'stray', error: failure.message, ...(failure.stack === undefined ? {} : { stack: failure.stack }) });
};
process.on('uncaughtException', stray);
process.on('unhandledRejection', stray);

for (const file of files) {
  post({ type: 'importing', file });
  try {
    const definition = await loadActionModule(file, importTimeoutMs);
    post({
      type: 'found',
      file,
      name: definition.name,
      timeoutSeconds: definition.timeoutSeconds,
      ...(definition.maxAttempts === undefined ? {} : { maxAttempts: definition.maxAttempts }),
      ...(definition.retry === undefined ? {} : { retry: definition.retry }),
      ...(definition.maxConcurrent === undefined ? {} : { maxConcurrent: definition.maxConcurrent }),
      ...(definition.ratePerSecond === undefined ? {} : { ratePerSecond: definition.ratePerSecond }),
      ...(definition.description === undefined ? {} : { description: definition.description }),
      ...(definition.isolation === undefined ? {} : { isolation: definition.isolation }),
    });
  } catch (error) {
    post({ type: 'failed', file, error: toError(error).message });
  }
}
post({ type: 'done' });
