/**
 * The messages between the executor and the worker threads that run actions. Each side parses what
 * it receives as `unknown`: an action can post to its parent port too, and a malformed message must
 * be reported, never trusted.
 */
import { isCounters } from '../api/batch/batch-field.js';
import type { JobDocument } from '../api/job/document.js';
import type { ApiCredentials, Compatibility } from '../api/client/options.js';
import { LOG_LEVELS, type LogLevel } from '../util/logger.js';
import { isRecord } from '../util/is-record.js';
import type { StageSettings } from './stage-policy.js';

/** What a worker needs to build its own API client for the action's `api`. */
export interface WorkerApiSettings {
  /** The job API's replicas (`--api-url`). */
  readonly baseUrls: readonly string[];
  readonly credentials: ApiCredentials | undefined;
  readonly compatibility: Compatibility;
  readonly timeoutMs: number;
  /** PEM certificates trusted for an https:// API (--api-ca-file). */
  readonly ca?: string;
}

export interface WorkerSettings {
  readonly api: WorkerApiSettings;
  /** Minimum interval between two progress messages for one run; the executor throttles writes again. */
  readonly progressIntervalMs: number;
  /** `--command-allow`: the only programs actions may start; empty or absent: any. */
  readonly commandAllow?: readonly string[];
  /** `--command-stage-dir` and its kin; absent: nothing may be staged. */
  readonly commandStage?: StageSettings;
}

export interface RunRequest {
  readonly type: 'run';
  readonly runId: number;
  /** The action module's absolute path, as the loader found it. */
  readonly file: string;
  readonly job: JobDocument;
  /**
   * One float64: the end of the job's ZooKeeper session lease in hrtimeMs(), which the executor moves
   * on while the lease is renewed. Shared memory, so a stalled executor cannot extend it.
   */
  readonly leaseDeadline?: SharedArrayBuffer;
}

export interface AbortRequest {
  readonly type: 'abort';
  readonly runId: number;
  readonly reason: string;
}

export type ToWorker = RunRequest | AbortRequest;

export type RunOutcome =
  | {
      readonly kind: 'returned';
      readonly returnCode: number;
      readonly message?: string;
      /** Summed on the job's batch (docs/batches.md). */
      readonly counters?: Readonly<Record<string, number>>;
    }
  | { readonly kind: 'threw'; readonly message: string; readonly stack?: string; readonly payload: boolean };

export type FromWorker =
  | { readonly type: 'progress'; readonly runId: number; readonly percent: number; readonly message?: string }
  | {
      readonly type: 'log';
      readonly runId: number;
      readonly level: LogLevel;
      readonly message: string;
      readonly meta?: Record<string, unknown>;
    }
  | { readonly type: 'done'; readonly runId: number; readonly outcome: RunOutcome };

/**
 * Milliseconds on the process's monotonic clock (uv_hrtime), the same in every thread of the process,
 * unlike performance.now(), whose origin is each thread's start.
 */
export function hrtimeMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

const optionalString = (value: unknown): value is string | undefined => value === undefined || typeof value === 'string';

function outcomeOf(value: unknown): RunOutcome | undefined {
  if (!isRecord(value)) return undefined;
  const { kind, returnCode, message, stack, payload, counters } = value;
  if (kind === 'returned' && Number.isInteger(returnCode) && optionalString(message) && (counters === undefined || isCounters(counters))) {
    return {
      kind,
      returnCode: returnCode as number,
      ...(message === undefined ? {} : { message }),
      ...(counters === undefined ? {} : { counters }),
    };
  }
  if (kind === 'threw' && typeof message === 'string' && optionalString(stack) && typeof payload === 'boolean') {
    return { kind, message, payload, ...(stack === undefined ? {} : { stack }) };
  }
  return undefined;
}

/** A worker's message, or undefined when it is not one of the protocol's. */
export function parseFromWorker(value: unknown): FromWorker | undefined {
  if (!isRecord(value) || !Number.isInteger(value.runId)) return undefined;
  const runId = value.runId as number;
  const { type, message } = value;
  if (type === 'progress' && typeof value.percent === 'number' && optionalString(message)) {
    return { type, runId, percent: value.percent, ...(message === undefined ? {} : { message }) };
  }
  if (type === 'log' && typeof message === 'string' && (LOG_LEVELS as readonly unknown[]).includes(value.level)) {
    const meta = isRecord(value.meta) ? value.meta : undefined;
    return { type, runId, level: value.level as LogLevel, message, ...(meta === undefined ? {} : { meta }) };
  }
  if (type === 'done') {
    const outcome = outcomeOf(value.outcome);
    if (outcome !== undefined) return { type, runId, outcome };
  }
  return undefined;
}

/** The executor's message, or undefined when it is not one of the protocol's. */
export function parseToWorker(value: unknown): ToWorker | undefined {
  if (!isRecord(value) || !Number.isInteger(value.runId)) return undefined;
  const runId = value.runId as number;
  if (value.type === 'run' && typeof value.file === 'string' && isRecord(value.job) && typeof value.job.id === 'string') {
    // The job was parsed by the executor's API client before it was sent; structured clone keeps it intact.
    const leaseDeadline = value.leaseDeadline instanceof SharedArrayBuffer ? value.leaseDeadline : undefined;
    return {
      type: 'run',
      runId,
      file: value.file,
      job: value.job as unknown as JobDocument,
      ...(leaseDeadline === undefined ? {} : { leaseDeadline }),
    };
  }
  if (value.type === 'abort' && typeof value.reason === 'string') return { type: 'abort', runId, reason: value.reason };
  return undefined;
}

export function parseWorkerSettings(value: unknown): WorkerSettings {
  if (!isRecord(value) || !isRecord(value.api) || typeof value.progressIntervalMs !== 'number') {
    throw new TypeError('action worker started without its settings (workerData)');
  }
  const { baseUrls, credentials, compatibility, timeoutMs, ca } = value.api;
  if (
    !Array.isArray(baseUrls) ||
    !baseUrls.every((url): url is string => typeof url === 'string') ||
    typeof compatibility !== 'string' ||
    typeof timeoutMs !== 'number'
  ) {
    throw new TypeError('action worker settings: api.baseUrls, api.compatibility and api.timeoutMs are required');
  }
  let parsedCredentials: ApiCredentials | undefined;
  if (isRecord(credentials) && typeof credentials.key === 'string' && typeof credentials.secret === 'string') {
    parsedCredentials = { key: credentials.key, secret: credentials.secret };
  }
  return {
    api: {
      baseUrls,
      credentials: parsedCredentials,
      compatibility: compatibility as Compatibility,
      timeoutMs,
      ...(typeof ca === 'string' ? { ca } : {}),
    },
    progressIntervalMs: value.progressIntervalMs,
    commandAllow: Array.isArray(value.commandAllow) ? value.commandAllow.filter((item): item is string => typeof item === 'string') : [],
    ...(isRecord(value.commandStage) ? { commandStage: parseStageSettings(value.commandStage) } : {}),
  };
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

function parseStageSettings(value: Record<string, unknown>): StageSettings {
  const { workRoot, maxInputBytes, fetchTimeoutMs } = value;
  if (typeof workRoot !== 'string' || typeof maxInputBytes !== 'number' || typeof fetchTimeoutMs !== 'number') {
    throw new TypeError('action worker settings: commandStage needs workRoot, maxInputBytes and fetchTimeoutMs');
  }
  return { workRoot, dirs: strings(value.dirs), fetchFrom: strings(value.fetchFrom), maxInputBytes, fetchTimeoutMs };
}
