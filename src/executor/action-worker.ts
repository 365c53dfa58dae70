/**
 * Entry point of an action worker thread: runs the actions the executor sends, one at a time, and
 * reports progress, log records and the outcome. A thread, not the executor's event loop, so that an
 * action that never yields can still be stopped (Worker#terminate) and its stack read (stack-dump.ts).
 */
import { tmpdir } from 'node:os';
import { isCounters } from '../api/batch/batch-field.js';
import { parentPort, workerData } from 'node:worker_threads';
import { LazyJobApi } from '../api/client/lazy-job-api.js';
import { errorJsonReplacer, toError } from '../util/errors.js';
import type { Logger, LogLevel } from '../util/logger.js';
import type { ActionContext, ActionDefinition, ActionOutcome } from '../sdk/action.js';
import { ActionPayloadError, parseJobPayload } from '../sdk/action-payload.js';
import { loadActionModule } from './action-loader.js';
import { programAllowlist } from './program-allowlist.js';
import { stagePolicy } from './stage-policy.js';
import { bindSignalToLease } from './lease-signal.js';
import { parseToWorker, parseWorkerSettings, type FromWorker, type RunOutcome, type RunRequest } from './worker-protocol.js';

const port = parentPort;
if (port === null) throw new Error('action-worker must run in a worker thread');
const settings = parseWorkerSettings(workerData);

const programs = programAllowlist(settings.commandAllow ?? []);
const staging = stagePolicy(
  settings.commandStage ?? { workRoot: tmpdir(), dirs: [], fetchFrom: [], maxInputBytes: 0, fetchTimeoutMs: 1000 },
);
const definitions = new Map<string, Promise<ActionDefinition>>();
const running = new Map<number, AbortController>();

const post = (message: FromWorker): void => {
  port.postMessage(message);
};

function definitionOf(file: string): Promise<ActionDefinition> {
  let definition = definitions.get(file);
  if (definition === undefined) {
    definition = loadActionModule(file);
    // A module that failed once may be fixed on disk; the next job tries again.
    definition.catch(() => definitions.delete(file));
    definitions.set(file, definition);
  }
  return definition;
}

// One per thread, shared by its jobs; the HTTP client behind it is loaded when an action first calls it.
const api = new LazyJobApi(async () => {
  const { JobApiClient } = await import('../api/client/job-api-client.js');
  return JobApiClient.create({
    baseUrl: settings.api.baseUrls,
    compatibility: settings.api.compatibility,
    timeoutMs: settings.api.timeoutMs,
    ...(settings.api.credentials === undefined ? {} : { credentials: settings.api.credentials }),
    ...(settings.api.ca === undefined ? {} : { ca: settings.api.ca }),
  });
});

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
    if (typeof percent !== 'number' || !Number.isFinite(percent)) return;
    const clamped = Math.min(100, Math.max(0, Math.round(percent)));
    pending = { percent: clamped, ...(typeof message === 'string' ? { message } : {}) };
    const wait = lastSent + settings.progressIntervalMs - Date.now();
    if (wait <= 0) flush();
    else timer ??= setTimeout(flush, wait);
  };
}

/** What `run` returned, checked: plain-JS actions can return anything. */
/** The job document keeps return codes as 32-bit signed integers. */
const isReturnCode = (value: unknown): value is number =>
  Number.isInteger(value) && (value as number) >= -2_147_483_648 && (value as number) <= 2_147_483_647;

export function outcomeOfResult(value: unknown): RunOutcome {
  if (value === undefined || value === null) return { kind: 'returned', returnCode: 0 };
  if (typeof value === 'number') {
    if (isReturnCode(value)) return { kind: 'returned', returnCode: value };
    return { kind: 'threw', message: `the action returned ${String(value)}, which is not a 32-bit integer return code`, payload: false };
  }
  if (typeof value === 'object' && !Array.isArray(value)) {
    const { returnCode = 0, message, counters } = value as Record<string, unknown>;
    if (!isReturnCode(returnCode)) {
      return {
        kind: 'threw',
        message: `the action returned a returnCode of ${JSON.stringify(returnCode)}, which is not a 32-bit integer`,
        payload: false,
      };
    }
    if (counters !== undefined && !isCounters(counters)) {
      return {
        kind: 'threw',
        message: `the action returned counters ${JSON.stringify(counters)}; expected names to finite numbers`,
        payload: false,
      };
    }
    if (message === undefined || typeof message === 'string') {
      return {
        kind: 'returned',
        returnCode,
        ...(message === undefined ? {} : { message }),
        ...(counters === undefined ? {} : { counters: { ...counters } }),
      };
    }
  }
  return {
    kind: 'threw',
    message: `the action returned ${JSON.stringify(value)}; expected a return code, nothing, or { returnCode?, message?, counters? }`,
    payload: false,
  };
}

async function run(request: RunRequest): Promise<void> {
  const controller = new AbortController();
  running.set(request.runId, controller);
  const stopLeaseCheck = bindSignalToLease(controller, request.leaseDeadline, (overdueMs) => {
    jobLogger(request.runId).warn('aborting the action in its thread: its lease ran out', { overdueMs });
  });
  let outcome: RunOutcome;
  try {
    // An action never starts on a lease already over (the executor was stalled after posting the run).
    controller.signal.throwIfAborted();
    const definition = await definitionOf(request.file);
    const payload = parseJobPayload(definition, request.job);
    const context: ActionContext = {
      job: request.job,
      payload,
      signal: controller.signal,
      log: jobLogger(request.runId),
      progress: progressReporter(request.runId),
      api,
      programs,
      staging,
    };
    const result: ActionOutcome | Promise<ActionOutcome> = definition.run(context);
    outcome = outcomeOfResult(await result);
  } catch (error) {
    const failure = toError(error);
    outcome = {
      kind: 'threw',
      message: failure.message,
      payload: failure instanceof ActionPayloadError,
      ...(failure.stack === undefined ? {} : { stack: failure.stack }),
    };
  } finally {
    stopLeaseCheck();
    running.delete(request.runId);
  }
  post({ type: 'done', runId: request.runId, outcome });
}

port.on('message', (raw: unknown) => {
  const message = parseToWorker(raw);
  if (message === undefined) return;
  if (message.type === 'run') void run(message);
  else running.get(message.runId)?.abort(new Error(message.reason));
});
