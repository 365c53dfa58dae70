/**
 * The job document: Nuvla's job resource, schema version 2 (docs/contracts.md §3), kebab-case as on the wire,
 * plus the engine's additions (revision, executor, attempt, timeout, max-attempts, queue, idempotency-key, not-before),
 * which a Nuvla client ignores.
 */

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
  /** Nuvla's too: the API key that created the job (`credential/<uuid>`), set by the API. */
  readonly 'created-by'?: string;
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
