/**
 * The job state machine and the fields the server derives, in one place and free of I/O so every
 * store and route applies the same rules:
 *   QUEUED  -> RUNNING (claimed) | FAILED (could not start, e.g. unknown action) | CANCELED
 *   RUNNING -> SUCCESS | FAILED | CANCELED | QUEUED (handed back: graceful stop, lost executor)
 *   SUCCESS, FAILED, CANCELED are final: every edit is refused with 409.
 * Derived: `updated` always; `started` on the first move to RUNNING; `duration` on entering a final
 * state, and progress 100 on SUCCESS (a CANCELED or FAILED job keeps the progress it had reached, so
 * an operator sees where it stopped); `time-of-status-change` whenever the status message changes (which is
 * truncated to 100,000 characters); `revision` on every change; `attempt-history` whenever an attempt
 * starts or ends (attempt-history.ts); `dead-letter.at` when an executor gives a job up.
 */
import { BATCH_ACTION } from '../batch/batch-field.js';
import { randomUUID } from 'node:crypto';
import { badRequest, conflict } from '../errors.js';
import {
  DEFAULT_JOB_PRIORITY,
  JOB_SCHEMA_VERSION,
  MAX_STATUS_MESSAGE_CHARS,
  isDelayed,
  isExpired,
  isFinal,
  type JobDocument,
  type JobState,
} from './document.js';
import { DEFAULT_QUEUE_NAME } from '../../recipes/queue-layout.js';
import { IMMUTABLE_FIELDS, type JobClaim, type JobCreate, type JobEdit } from './parse.js';
import { historyBeforeRetry, nextAttemptHistory } from './attempt-history.js';

const TRANSITIONS: Readonly<Record<JobState, readonly JobState[]>> = {
  QUEUED: ['QUEUED', 'RUNNING', 'FAILED', 'CANCELED'],
  RUNNING: ['RUNNING', 'QUEUED', 'SUCCESS', 'FAILED', 'CANCELED'],
  SUCCESS: [],
  FAILED: [],
  CANCELED: [],
};

const TRUNCATION_MARK = '\n... (truncated)';

/**
 * `now` may be given as its ISO text, so that a bulk create formats its one instant once, not per job.
 * Builds the document field by field instead of rest/spread: this runs once per job of a bulk create.
 */
export function newJob(create: JobCreate, now: Date | string, id: string = newJobId()): JobDocument {
  const timestamp = typeof now === 'string' ? now : now.toISOString();
  const fields = create as unknown as Record<string, unknown>;
  const job: Record<string, unknown> = {};
  // In the order a spread of `create` without its status message would give, then the server's fields.
  for (const key in fields) if (key !== 'status-message') job[key] = fields[key];
  // A time already come is no delay: the creator enqueues the job at once, and the scheduler, which
  // looks only for QUEUED jobs carrying the field, does not enqueue it a second time.
  const notBefore = create['not-before'];
  if (notBefore !== undefined && notBefore <= timestamp) delete job['not-before'];
  job.id = id;
  job['resource-type'] = 'job';
  job.created = timestamp;
  job.updated = timestamp;
  job.state = 'QUEUED';
  job.progress = 0;
  job.priority = create.priority ?? DEFAULT_JOB_PRIORITY;
  job.queue = create.queue ?? DEFAULT_QUEUE_NAME;
  job.version = JOB_SCHEMA_VERSION;
  job.revision = 1;
  const statusMessage = create['status-message'];
  if (statusMessage !== undefined) {
    job['status-message'] = truncate(statusMessage);
    job['time-of-status-change'] = timestamp;
  }
  return job as unknown as JobDocument;
}

/**
 * `job/<uuid>` with a UUIDv7 (RFC 9562): the current millisecond then 74 random bits. Ids that grow
 * with time are appended to the primary-key indexes instead of landing on a random page each; with
 * random v4 ids that page churn was the largest single cost of a bulk create in both stores.
 */
export function newJobId(): string {
  const random = randomUUID();
  const millis = Date.now().toString(16).padStart(12, '0');
  // random is xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx: keep its variant and random bits after the version.
  return `job/${millis.slice(0, 8)}-${millis.slice(8, 12)}-7${random.slice(15)}`;
}

/** Merges an edit into the job, enforcing the state machine; throws 400/409 ApiErrors. */
export function applyEdit(current: JobDocument, edit: JobEdit, now: Date): JobDocument {
  if (current.action === BATCH_ACTION) {
    throw conflict(`job ${current.id} is a batch: it changes through its batch operations (docs/batches.md), not edits`, {
      job: current.id,
    });
  }
  if (isFinal(current.state)) {
    throw conflict(`job ${current.id} is ${current.state}, a final state: it cannot be changed`, { state: current.state });
  }
  for (const field of IMMUTABLE_FIELDS) {
    const wanted = edit.immutable[field];
    if (wanted !== undefined && JSON.stringify(wanted) !== JSON.stringify(current[field])) {
      throw badRequest(`"${field}" cannot be changed after the job is created`, { field });
    }
  }
  const {
    immutable,
    state: nextState,
    executor,
    'status-message': statusMessage,
    'dead-letter': deadLetter,
    'not-before': notBefore,
    parked,
    ...plain
  } = edit;
  const state = nextState ?? current.state;
  if (!TRANSITIONS[current.state].includes(state)) {
    throw conflict(`job ${current.id} cannot go from ${current.state} to ${state}`, { from: current.state, to: state });
  }
  if (deadLetter !== undefined && state !== 'FAILED') {
    throw badRequest(`"dead-letter" marks a job the engine gave up: it needs "state" FAILED, not ${state}`, { field: 'dead-letter' });
  }
  if (state === 'RUNNING' && current.state === 'QUEUED') assertStartable(current, now);
  let next: JobDocument = { ...current, ...plain, state };
  if (deadLetter !== undefined) {
    const attempt = deadLetter.attempt ?? current.attempt;
    next = { ...next, 'dead-letter': { reason: deadLetter.reason, at: now.toISOString(), ...(attempt === undefined ? {} : { attempt }) } };
  }
  if (executor !== undefined) next = withoutExecutor(next, executor);
  if (notBefore !== undefined) next = withNotBefore(next, notBefore);
  // A job that starts waits for nothing any more: a later hand-back to QUEUED must not leave it waiting
  // for a time long past (the scheduler would enqueue it a second time).
  else if (state === 'RUNNING' && current.state === 'QUEUED') next = withNotBefore(next, null);
  // Parked only while QUEUED: a job that starts (its id was put in the queue by other means) or ends
  // waits for no room.
  if (parked !== undefined) next = withParked(next, parked);
  if (state !== 'QUEUED') next = withParked(next, false);
  if (statusMessage !== undefined && statusMessage !== current['status-message']) {
    next = { ...next, 'status-message': truncate(statusMessage), 'time-of-status-change': now.toISOString() };
  }
  if (state === 'RUNNING' && current.state !== 'RUNNING' && edit.attempt === undefined) {
    next = { ...next, attempt: (current.attempt ?? 0) + 1 };
  }
  return stamp(current, next, now);
}

/**
 * The `claim` operation: a QUEUED job of a schema this server knows becomes RUNNING, owned by the
 * claiming executor, as its next attempt. Anything else is a 409 carrying the job as it is, so the
 * executor decides what to do (a final job, a job another executor runs) without reading it again.
 */
export function claimJob(current: JobDocument, claim: JobClaim, now: Date): JobDocument {
  const otherAction = claim.actions !== undefined && !claim.actions.includes(current.action);
  if (current.state !== 'QUEUED' || current.version > JOB_SCHEMA_VERSION || otherAction) {
    const why =
      current.state !== 'QUEUED'
        ? `it is ${current.state}`
        : otherAction
          ? `its action "${current.action}" is not one the claimant runs`
          : `its schema version ${current.version} is newer than ${JOB_SCHEMA_VERSION}`;
    throw conflict(`job ${current.id} cannot be claimed: ${why}`, { job: current });
  }
  const message = claim['status-message'];
  return applyEdit(
    current,
    {
      immutable: {},
      state: 'RUNNING',
      executor: claim.executor,
      progress: 0,
      ...(message === undefined ? {} : { 'status-message': message }),
    },
    now,
  );
}

/** The `cancel` operation: QUEUED or RUNNING to CANCELED. */
export function cancelJob(current: JobDocument, now: Date, reason = 'canceled'): JobDocument {
  if (isFinal(current.state)) {
    throw conflict(`job ${current.id} is already ${current.state}: there is nothing to cancel`, { state: current.state });
  }
  const canceled = withParked(current, false);
  return stamp(current, { ...canceled, state: 'CANCELED', 'status-message': reason, 'time-of-status-change': now.toISOString() }, now);
}

/**
 * The `retry` operation, an operator's explicit "run it again": a final job back to QUEUED, as it was
 * before its first run apart from its `attempt` (the next claim counts up from it, and the retry
 * policy counts from it: `retried-at-attempt`) and its `attempt-history`; a dead letter is cleared. The engine itself never does this (docs/contracts.md, invariant 3).
 */
export function retryJob(current: JobDocument, now: Date, reason = 'retried'): JobDocument {
  if (current.action === BATCH_ACTION)
    throw conflict(`job ${current.id} is a batch: retry its failed tasks with its retry-failed operation`);
  if (!isFinal(current.state)) {
    throw conflict(`job ${current.id} is ${current.state}: only a final job (SUCCESS, FAILED, CANCELED) can be retried`, {
      state: current.state,
    });
  }
  const {
    'return-code': _code,
    duration: _duration,
    started: _started,
    executor: _executor,
    'dead-letter': _deadLetter,
    'not-before': _notBefore,
    ...rest
  } = current;
  const timestamp = now.toISOString();
  const history = historyBeforeRetry(current);
  return {
    ...rest,
    ...(history === undefined ? {} : { 'attempt-history': history }),
    // Its retry policy and max-attempts count the attempts after this one: a whole new round.
    'retried-at-attempt': current.attempt ?? 0,
    state: 'QUEUED',
    progress: 0,
    'status-message': reason,
    'time-of-status-change': timestamp,
    updated: timestamp,
    revision: current.revision + 1,
  };
}

function stamp(current: JobDocument, next: JobDocument, now: Date): JobDocument {
  const timestamp = now.toISOString();
  let stamped: JobDocument = { ...next, updated: timestamp, revision: current.revision + 1 };
  if (stamped.state === 'RUNNING' && current.state !== 'RUNNING') {
    stamped = { ...stamped, started: current.started ?? timestamp };
  }
  const history = nextAttemptHistory(current, stamped, timestamp);
  if (history !== undefined) stamped = { ...stamped, 'attempt-history': history };
  if (stamped.state === 'QUEUED' && current.state === 'RUNNING' && stamped['return-code'] !== undefined) {
    // The failed attempt's return code is in its history record; a waiting job has none of its own.
    const { 'return-code': _code, ...waiting } = stamped;
    stamped = waiting;
  }
  if (isFinal(stamped.state)) {
    const since = Date.parse(stamped.started ?? stamped.created);
    const duration = Math.max(0, Math.round((now.getTime() - since) / 1000));
    stamped = stamped.state === 'SUCCESS' ? { ...stamped, progress: 100, duration } : { ...stamped, duration };
  }
  return stamped;
}

/**
 * A QUEUED job may start only once its `not-before` has come and before its `expiry`; otherwise 409,
 * whose message says which, so that no executor runs it (an executor ends an expired job CANCELED).
 */
function assertStartable(current: JobDocument, now: Date): void {
  const at = now.getTime();
  if (isExpired(current, at)) {
    throw conflict(`job ${current.id} expired at ${current.expiry ?? ''}: a job is not started after its expiry`, {
      reason: 'expired',
      expiry: current.expiry,
      job: current,
    });
  }
  if (isDelayed(current, at)) {
    throw conflict(`job ${current.id} is not due before ${current['not-before'] ?? ''}: it cannot start yet`, {
      reason: 'not-due',
      'not-before': current['not-before'],
      job: current,
    });
  }
}

function withNotBefore(job: JobDocument, notBefore: string | null): JobDocument {
  if (notBefore !== null) return { ...job, 'not-before': notBefore };
  if (job['not-before'] === undefined) return job;
  const { 'not-before': _dropped, ...rest } = job;
  return rest;
}

function withParked(job: JobDocument, parked: boolean): JobDocument {
  if (parked) return job.parked === true ? job : { ...job, parked: true };
  if (job.parked === undefined) return job;
  const { parked: _dropped, ...rest } = job;
  return rest;
}

function withoutExecutor(job: JobDocument, executor: string | null): JobDocument {
  if (executor !== null) return { ...job, executor };
  const { executor: _dropped, ...rest } = job;
  return rest;
}

function truncate(message: string): string {
  if (message.length <= MAX_STATUS_MESSAGE_CHARS) return message;
  return message.slice(0, MAX_STATUS_MESSAGE_CHARS - TRUNCATION_MARK.length) + TRUNCATION_MARK;
}
