/**
 * The job document: Nuvla's job resource, schema version 2 (docs/contracts.md §3), kebab-case as on the wire,
 * plus the engine's additions (revision, executor, attempt, timeout, max-attempts, queue, idempotency-key, not-before,
 * retry, attempt-history, dead-letter, retried-at-attempt), which a Nuvla client ignores.
 */

import type { BatchField } from '../batch/batch-field.js';
import type { JobRetryField } from './retry-policy.js';

export const JOB_STATES = ['QUEUED', 'RUNNING', 'SUCCESS', 'FAILED', 'CANCELED'] as const;
export type JobState = (typeof JOB_STATES)[number];

export const FINAL_STATES: ReadonlySet<JobState> = new Set<JobState>(['SUCCESS', 'FAILED', 'CANCELED']);

export const EXECUTION_MODES = ['push', 'pull', 'mixed'] as const;
export type ExecutionMode = (typeof EXECUTION_MODES)[number];

/** The schema version this engine writes and understands. */
export const JOB_SCHEMA_VERSION = 2;
/** Nuvla's API server gives jobs without a priority this one. */
export const DEFAULT_JOB_PRIORITY = 999;
export const MAX_STATUS_MESSAGE_CHARS = 100_000;
/** The return code of a job stopped by its timeout, as timeout(1) reports it: how a timed-out job is told. */
export const TIMED_OUT_RETURN_CODE = 124;
/** The largest `max-attempts` a job (or an action, or an executor) may give. */
export const MAX_ATTEMPTS_LIMIT = 1000;

/** The most attempts `attempt-history` keeps: the oldest are dropped beyond it. */
export const MAX_ATTEMPT_HISTORY = 20;
/** An attempt's status message is kept up to this many characters in the history. */
export const MAX_ATTEMPT_MESSAGE_CHARS = 1000;

/** One attempt of a job, as the job API records it in `attempt-history`. */
export interface AttemptRecord {
  readonly attempt: number;
  /** When it was claimed. */
  readonly started: string;
  /** When it ended; absent while it runs. */
  readonly ended?: string;
  /** The state the job went to when the attempt ended (QUEUED: retried or handed back; RUNNING: taken over). */
  readonly state?: JobState;
  readonly 'return-code'?: number;
  /** The status message when it ended, truncated to MAX_ATTEMPT_MESSAGE_CHARS. */
  readonly 'status-message'?: string;
  /** Its owner, `<executor name>@<session id>`. */
  readonly executor?: string;
}

/** Why the engine gave a job up: FAILED after the last attempt its retry policy (or max-attempts) allowed. */
export interface DeadLetter {
  readonly reason: string;
  /** Set by the server. */
  readonly at: string;
  /** The attempt that was the last. */
  readonly attempt?: number;
}

export interface ResourceLink {
  readonly href: string;
}

export interface JobDocument {
  readonly id: string;
  readonly 'resource-type': 'job';
  readonly created: string;
  readonly updated: string;
  readonly state: JobState;
  readonly action: string;
  readonly 'target-resource'?: ResourceLink;
  readonly 'affected-resources'?: readonly ResourceLink[];
  readonly progress: number;
  readonly 'status-message'?: string;
  readonly 'time-of-status-change'?: string;
  readonly 'return-code'?: number;
  readonly priority: number;
  readonly 'execution-mode'?: ExecutionMode;
  readonly version: number;
  readonly started?: string;
  /** Seconds from `started` (or `created`) to the final state. */
  readonly duration?: number;
  readonly expiry?: string;
  /** JSON text of the action's arguments. */
  readonly payload?: string;
  readonly 'parent-job'?: string;
  readonly 'nested-jobs'?: readonly string[];
  readonly tags?: readonly string[];
  readonly acl?: Readonly<Record<string, unknown>>;
  /** Ours: bumped by every change; conditional updates (If-Match) compare it. */
  readonly revision: number;
  /** Ours: the executor that owns the job while it runs. */
  readonly executor?: string;
  /** Ours: how many times the job was started. */
  readonly attempt?: number;
  /** Ours: seconds the action may run before it is stopped. */
  readonly timeout?: number;
  /**
   * Ours: how many attempts may end without a result (their executor died) before the job is
   * FAILED instead of started again; else the action's `maxAttempts`, else the executor's `--max-attempts`.
   */
  readonly 'max-attempts'?: number;
  /**
   * Ours: the named queue it is routed to (`<queue root>/queues/<name>`; `default` is the root). Set
   * on every job created here; absent from older jobs and from Nuvla's, which are the default queue's.
   */
  readonly queue?: string;
  /**
   * Ours: the job is not started before this instant. A QUEUED job whose time is still to come has no
   * queue entry: the scheduler (the `job_scheduler` distribution) enqueues it when due and clears the field.
   */
  readonly 'not-before'?: string;
  /**
   * Ours: true while the job waits in the job API for room in its queue (the queue's window, see
   * docs/contracts.md §2): it has no entry, and the queue feeder (the `queue_feeder` distribution)
   * enqueues it when there is room, best priority first, then oldest, and removes the field.
   */
  readonly parked?: true;
  /** Ours: a second create with the same key returns this job and creates nothing. */
  readonly 'idempotency-key'?: string;
  /** Ours: the job's retry policy, field by field over its action's (retry-policy.ts). */
  readonly retry?: JobRetryField;
  /** Ours, kept by the server: the job's last MAX_ATTEMPT_HISTORY attempts, oldest first. */
  readonly 'attempt-history'?: readonly AttemptRecord[];
  /** Ours: set when the engine gave the job up (it is FAILED); cleared by an operator's retry. */
  readonly 'dead-letter'?: DeadLetter;
  /**
   * Ours, kept by the server: `attempt` when an operator last retried the job. Its retry policy and
   * max-attempts count only the attempts after it, so a retried job gets a whole new round.
   */
  readonly 'retried-at-attempt'?: number;
  /** Nuvla's too: the API key that created the job (`credential/<uuid>`), set by the API. */
  readonly 'created-by'?: string;
  /** Ours: a batch's spec and status (action `batch` only; docs/batches.md), kept by the server. */
  readonly batch?: BatchField;
  /** Ours: a batch task's index in its batch (`parent-job`), from 0. */
  readonly 'batch-index'?: number;
  /** Ours: what the action counted (`{ movedBytes: 10 }`), summed on its batch when it ends. */
  readonly counters?: Readonly<Record<string, number>>;
}

/**
 * Whether the job waits for its `not-before` at `now`: then nobody enqueues it but the scheduler, and a
 * claim is refused. A job whose time has come is due, whoever enqueues it.
 */
export function isDelayed(job: Pick<JobDocument, 'not-before'>, now: number): boolean {
  const notBefore = job['not-before'];
  return notBefore !== undefined && Date.parse(notBefore) > now;
}

/** Whether a job not yet started has passed its `expiry` at `now` (Nuvla's field): it must not run. */
export function isExpired(job: Pick<JobDocument, 'expiry'>, now: number): boolean {
  const expiry = job.expiry;
  return expiry !== undefined && Date.parse(expiry) <= now;
}

/**
 * Why a QUEUED job has no queue entry on purpose, as the stores index it (the `waiting` column): `time`
 * until its `not-before`, `room` while parked; null for a job that has (or should have) an entry, and
 * for every job that is not QUEUED.
 */
export type WaitingFor = 'time' | 'room';

export function waitingFor(job: Pick<JobDocument, 'state' | 'not-before' | 'parked'>): WaitingFor | null {
  if (job.state !== 'QUEUED') return null;
  if (job['not-before'] !== undefined) return 'time';
  return job.parked === true ? 'room' : null;
}

export function isFinal(state: JobState): boolean {
  return FINAL_STATES.has(state);
}

/** `job/<uuid>` <-> `<uuid>` */
export function jobUuid(id: string): string {
  return id.startsWith('job/') ? id.slice(4) : id;
}
