/**
 * Entry point of an action worker thread: runs the actions the executor sends, one at a time, and
 * reports progress, log records and the outcome. A thread, not the executor's event loop, so that an
 * action that never yields can still be stopped (Worker#terminate) and its stack read (stack-dump.ts).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorJsonReplacer } from '../util/errors.js';
import type { Logger, LogLevel } from '../util/logger.js';
import { actionServices, clampPercent, invokeAction } from './action-invocation.js';
import { bindSignalToLease } from './lease-signal.js';
import { parseToWorker, parseWorkerSettings, type FromWorker, type RunRequest } from './worker-protocol.js';

const port = parentPort;
if (port === null) throw new Error('action-worker must run in a worker thread');
const settings = parseWorkerSettings(workerData);

const services = actionServices(settings);
const running = new Map<number, AbortController>();

const post = (message: FromWorker): void => {
  port.postMessage(message);
};

function jobLogger(runId: number): Logger {
  const send =
    (level: LogLevel) =>
    (message: string, meta?: Record<string, unknown>): void => {
      let safeMeta: Record<string, unknown> | undefined;
      try {
        // Structured clone refuses functions and the like; an action's odd log field must not fail its job.
        safeMeta = meta === undefined ? undefined : (JSON.parse(JSON.stringify(meta, errorJsonReplacer)) as Record<string, unknown>);
      } catch {
        safeMeta = { meta: 'unserialisable log fields' };
      }
      post({
        type: 'log',
        runId,
        level,
        message: typeof message === 'string' ? message : JSON.stringify(message),
        ...(safeMeta === undefined ? {} : { meta: safeMeta }),
      });
    };
  return { error: send('error'), warn: send('warn'), info: send('info'), debug: send('debug') };
}

function progressReporter(runId: number): (percent: number, message?: string) => void {
  let lastSent = 0;
  let pending: { percent: number; message?: string } | undefined;
  let timer: NodeJS.Timeout | undefined;
  const flush = (): void => {
    timer = undefined;
    if (pending === undefined || !running.has(runId)) return;
    lastSent = Date.now();
    post({ type: 'progress', runId, ...pending });
    pending = undefined;
  };
  return (percent, message) => {
    const clamped = clampPercent(percent);
    if (clamped === undefined) return;
    pending = { percent: clamped, ...(typeof message === 'string' ? { message } : {}) };
    const wait = lastSent + settings.progressIntervalMs - Date.now();
    if (wait <= 0) flush();
    else timer ??= setTimeout(flush, wait);
  };
}

async function run(request: RunRequest): Promise<void> {
  const controller = new AbortController();
  running.set(request.runId, controller);
  const stopLeaseCheck = bindSignalToLease(controller, request.leaseDeadline, (overdueMs) => {
    jobLogger(request.runId).warn('aborting the action in its thread: its lease ran out', { overdueMs });
  });
  try {
    const outcome = await invokeAction(services, request.file, request.job, {
      signal: controller.signal,
      log: jobLogger(request.runId),
      progress: progressReporter(request.runId),
    });
    post({ type: 'done', runId: request.runId, outcome });
  } finally {
    stopLeaseCheck();
    running.delete(request.runId);
  }
}

port.on('message', (raw: unknown) => {
  const message = parseToWorker(raw);
  if (message === undefined) return;
  if (message.type === 'run') void run(message);
  else running.get(message.runId)?.abort(new Error(message.reason));
});
