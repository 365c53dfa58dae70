/**
 * Finds the executor's actions without importing any module in its main thread.
 * A module's top-level code may do anything: `process.exit(0)` in the main thread ended the executor
 * silently. Here the modules are imported in a discovery thread (discovery-worker.ts), one after the
 * other, and only their names and timeouts come back. When a module ends that thread (process.exit,
 * an uncaught exception) or blocks it past the import timeout, that module is reported as broken and
 * a new thread goes on with the files after it. The actions then run in worker threads too
 * (action-thread.ts), so the main thread never runs a module's code.
 */
import type { Worker } from 'node:worker_threads';
import { toError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import {
  DEFAULT_IMPORT_TIMEOUT_MS,
  collectDropIns,
  listDropInFiles,
  type DropInLoadFailure,
  type LoadDropInsOptions,
  type LoadedDropIn,
} from '../util/drop-in-modules.js';
import { parseFromDiscovery, type ActionMetadata } from './discovery-protocol.js';
import { startWorker } from './worker-bootstrap.js';

export type { ActionMetadata } from './discovery-protocol.js';

/** An action as the executor knows it: its module's path and what it defines. */
export type DiscoveredAction = LoadedDropIn<ActionMetadata>;

export interface DiscoveredActions {
  /** Keyed by action name, in name order. */
  readonly actions: ReadonlyMap<string, DiscoveredAction>;
  /** In file-path order. */
  readonly failures: readonly DropInLoadFailure[];
}

/** Beyond the import timeout the thread enforces itself: for a module that blocks the thread outright. */
const STUCK_MARGIN_MS = 2000;

/** What one discovery thread reported before it finished or ended. */
interface ThreadReport {
  readonly found: DiscoveredAction[];
  readonly failures: DropInLoadFailure[];
  /** Files the thread never reached: a new thread takes them. */
  readonly remaining: readonly string[];
}

export async function discoverActions(
  dirs: readonly string[],
  logger: Logger,
  options: LoadDropInsOptions = {},
): Promise<DiscoveredActions> {
  const importTimeoutMs = options.importTimeoutMs ?? DEFAULT_IMPORT_TIMEOUT_MS;
  let remaining: readonly string[] = await listDropInFiles(dirs, 'action', logger);
  const found: DiscoveredAction[] = [];
  const failures: DropInLoadFailure[] = [];
  while (remaining.length > 0) {
    const report = await discoverInThread(remaining, importTimeoutMs, logger);
    found.push(...report.found);
    failures.push(...report.failures);
    remaining = report.remaining;
  }
  const { definitions, failures: all } = collectDropIns(
    found,
    failures,
    {
      noun: 'action',
      nameOf: (metadata) => metadata.name,
      describe: (metadata) => ({
        timeoutSeconds: metadata.timeoutSeconds,
        ...(metadata.maxConcurrent === undefined ? {} : { maxConcurrent: metadata.maxConcurrent }),
        ...(metadata.ratePerSecond === undefined ? {} : { ratePerSecond: metadata.ratePerSecond }),
      }),
    },
    logger,
  );
  return { actions: definitions, failures: all };
}

/** One thread through `files` until it finishes them, or a module ends or blocks it. */
function discoverInThread(files: readonly string[], importTimeoutMs: number, logger: Logger): Promise<ThreadReport> {
  return new Promise((resolve) => {
    const found: DiscoveredAction[] = [];
    const failures: DropInLoadFailure[] = [];
    let current: string | undefined;
    let stuckTimer: NodeJS.Timeout | undefined;
    let settled = false;
    const worker: Worker = startWorker('discovery-worker', 'action-discovery', { files, importTimeoutMs });

    const finish = (blame: string | undefined): void => {
      if (settled) return;
      settled = true;
      clearTimeout(stuckTimer);
      const reported = new Set([...found.map((one) => one.file), ...failures.map((one) => one.file)]);
      if (blame !== undefined) {
        // Before the first module, the thread itself failed: the first file carries the message, so it is seen.
        const culprit = current ?? files.find((file) => !reported.has(file));
        if (culprit !== undefined) {
          failures.push({ file: culprit, error: blame });
          reported.add(culprit);
        }
      }
      void worker.terminate();
      resolve({ found, failures, remaining: files.filter((file) => !reported.has(file)) });
    };

    worker.on('message', (raw: unknown) => {
      const message = parseFromDiscovery(raw);
      if (message === undefined || settled) return;
      if (message.type === 'done') {
        current = undefined;
        finish(undefined);
        return;
      }
      if (message.type === 'stray') {
        logger.warn('an action module threw outside its import (from a timer or a promise); its stack names it', {
          error: message.error,
          stack: message.stack,
        });
        return;
      }
      if (message.type === 'importing') {
        current = message.file;
        clearTimeout(stuckTimer);
        stuckTimer = setTimeout(() => {
          finish(`import did not finish within ${importTimeoutMs} ms and blocked its thread, which was stopped`);
        }, importTimeoutMs + STUCK_MARGIN_MS);
        return;
      }
      current = undefined;
      clearTimeout(stuckTimer);
      if (message.type === 'failed') failures.push({ file: message.file, error: message.error });
      else {
        const { type: _type, file, ...metadata } = message;
        found.push({ file, definition: metadata });
      }
    });
    worker.on('error', (error: unknown) => {
      finish(`the module crashed the thread that imported it: ${toError(error).message}`);
    });
    worker.on('exit', (code: number) => {
      finish(`the module ended the thread that imported it (exit code ${code}); a module must not call process.exit`);
    });
  });
}

/** No action module could be loaded: the executor refuses to start. */
export class NoActionError extends Error {
  override readonly name = 'NoActionError';
  readonly code = 'no-action';

  constructor(dirs: readonly string[], broken: number) {
    super(
      `no action could be loaded from ${dirs.join(', ')} (${broken === 0 ? 'no action module there' : `${broken} module(s) failed to load, logged above`}); an executor needs at least one action`,
    );
  }
}
