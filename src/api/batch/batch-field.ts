/**
 * A batch (docs/batches.md): a parent job of the reserved action `batch`, never enqueued, carrying a
 * `batch` field with its spec (what to run, how fast, how many at once) and its status (how far its
 * source was fed, what its tasks came to). Its tasks are plain jobs with `parent-job` = the batch and
 * `batch-index`. Everything here is free of I/O: the store, the routes and the feeder call it.
 */
import { badRequest, conflict } from '../errors.js';
import { isFinal, type JobDocument } from '../job/document.js';
import { ACTION_NAME } from '../job/parse.js';
import { QUEUE_NAME_RULE, isQueueName } from '../../recipes/queue-layout.js';
import { isRecord } from '../../util/is-record.js';

export const BATCH_ACTION = 'batch';
/** canary: the first `canary` tasks run before the rest are fed; feeding; draining: the source is exhausted. */
export const BATCH_PHASES = ['canary', 'feeding', 'draining'] as const;
export type BatchPhase = (typeof BATCH_PHASES)[number];

/** What every task of the batch gets unless its spec says otherwise. */
export interface TaskDefaults {
  readonly queue?: string;
  readonly priority?: number;
  readonly timeout?: number;
  readonly 'max-attempts'?: number;
}

export interface BatchField {
  /** The tasks' action. */
  readonly action: string;
  /** `list`: specs uploaded with the batch (stored by index); `generator`: a module of the feeder's `batches/` folder. */
  readonly source: 'list' | 'generator';
  readonly generator?: string;
  /** The generator's arguments. */
  readonly args?: Readonly<Record<string, unknown>>;
  readonly 'batch-size': number;
  readonly 'tasks-per-second'?: number;
  readonly 'max-in-flight': number;
  readonly canary?: number;
  readonly lock?: string;
  readonly defaults: TaskDefaults;
  // Status.
  readonly phase: BatchPhase;
  readonly paused: boolean;
  /** A list batch: false while its specs are being uploaded. */
  readonly sealed: boolean;
  /** Where the source resumes (the last fed task's marker); absent before the first task. */
  readonly marker?: string;
  /** Tasks created so far: the next task's index. */
  readonly sent: number;
  /** Tasks in all: exact once known, else the generator's estimate (or the specs uploaded so far). */
  readonly total?: number;
  readonly 'total-estimated': boolean;
  readonly succeeded: number;
  readonly failed: number;
  readonly canceled: number;
  /** Summed from the tasks' `counters`, as they end. */
  readonly counters: Readonly<Record<string, number>>;
  /**
   * When a retry of the failed tasks was asked: the feeder puts back the tasks that failed by then,
   * within max-in-flight and the rate, and the batch does not settle until none is left.
   */
  readonly 'retrying-since'?: string;
  /** Why the feeder cannot feed it (a generator it does not have): it waits, saying so. */
  readonly waiting?: string;
  /**
   * The rate's clock (a GCRA token bucket kept with the batch, so it holds across the feeder's ticks
   * and leaders): the time by which the tasks fed so far were due at tasks-per-second.
   */
  readonly 'paced-until'?: string;
}

export const DEFAULT_BATCH_SIZE = 100;
export const DEFAULT_MAX_IN_FLIGHT = 1000;
export const MAX_BATCH_SIZE = 1000;
/** The prefix of a live batch's idempotency key: the unique index refuses a second live batch with its lock. */
export const LOCK_KEY_PREFIX = 'batch-lock:';

/** Tasks that ended, whatever their end. */
export function processedOf(batch: BatchField): number {
  return batch.succeeded + batch.failed + batch.canceled;
}

/** Tasks created and not ended: QUEUED or RUNNING. */
export function inFlightOf(batch: BatchField): number {
  return Math.max(0, batch.sent - processedOf(batch));
}

export function batchOf(job: JobDocument): BatchField | undefined {
  return job.action === BATCH_ACTION ? job.batch : undefined;
}

/** What a live batch's lock holds in the unique idempotency index; nothing once it is final. */
export function lockKeyOf(job: JobDocument): string | undefined {
  const key = job['idempotency-key'];
  if (job.action !== BATCH_ACTION || key === undefined || !key.startsWith(LOCK_KEY_PREFIX)) return key;
  return isFinal(job.state) ? undefined : key;
}

type Fields = Record<string, unknown>;

function positiveInt(fields: Fields, key: string, max: number): number | undefined {
  const value = fields[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > max) {
    throw badRequest(`"${key}" must be an integer from 1 to ${String(max)}, got ${JSON.stringify(value)}`);
  }
  return value;
}

const SPEC_FIELDS = new Set([
  'action',
  'generator',
  'args',
  'batch-size',
  'tasks-per-second',
  'max-in-flight',
  'canary',
  'lock',
  'defaults',
  'tasks',
  'total',
  'acl',
  'tags',
]);
const DEFAULT_FIELDS = new Set(['queue', 'priority', 'timeout', 'max-attempts']);

export interface BatchCreate {
  readonly field: BatchField;
  /** Specs given with the create (a small list in one request); more may follow until sealed. */
  readonly tasks?: readonly unknown[];
  /** Given with a list: the batch is sealed at once with that many specs. */
  readonly sealed: boolean;
  readonly acl?: Readonly<Record<string, unknown>>;
  readonly tags?: readonly string[];
}

/** `POST /api/job/batch`'s body; every refusal a 400 naming the field. */
export function parseBatchCreate(body: unknown, maxTasks: number): BatchCreate {
  if (!isRecord(body)) throw badRequest('a batch must be a JSON object like {"action": "x", "tasks": [...]}');
  for (const key of Object.keys(body)) if (!SPEC_FIELDS.has(key)) throw badRequest(`batch: unknown field "${key}"`);
  const { action, generator, args, lock, tasks, defaults, acl, tags } = body;
  if (typeof action !== 'string' || !ACTION_NAME.test(action) || action === BATCH_ACTION) {
    throw badRequest(`batch: "action" must name the tasks' action (not "${BATCH_ACTION}"), got ${JSON.stringify(action)}`);
  }
  if (generator !== undefined && (typeof generator !== 'string' || !ACTION_NAME.test(generator))) {
    throw badRequest(`batch: "generator" must name a module of the feeder's batches folder, got ${JSON.stringify(generator)}`);
  }
  if (generator !== undefined && tasks !== undefined) throw badRequest('batch: give "tasks" or "generator", not both');
  if (args !== undefined && (generator === undefined || !isRecord(args))) throw badRequest('batch: "args" is an object, for a generator');
  if (tasks !== undefined && (!Array.isArray(tasks) || tasks.length > maxTasks)) {
    throw badRequest(`batch: "tasks" must be a list of at most ${String(maxTasks)} task specs (upload more with the tasks operation)`);
  }
  if (lock !== undefined && (typeof lock !== 'string' || lock === '' || lock.length > 400)) {
    throw badRequest(`batch: "lock" must be a non-empty string of at most 400 characters, got ${JSON.stringify(lock)}`);
  }
  if (acl !== undefined && !isRecord(acl)) throw badRequest('batch: "acl" must be an object');
  if (tags !== undefined && !(Array.isArray(tags) && tags.every((tag) => typeof tag === 'string'))) {
    throw badRequest('batch: "tags" must be a list of strings');
  }
  const canary = positiveInt(body, 'canary', 1_000_000);
  const tasksPerSecond = body['tasks-per-second'];
  if (tasksPerSecond !== undefined && (typeof tasksPerSecond !== 'number' || !(tasksPerSecond > 0) || tasksPerSecond > 100_000)) {
    throw badRequest(`batch: "tasks-per-second" must be a number above 0 and at most 100000, got ${JSON.stringify(tasksPerSecond)}`);
  }
  const total = body.total;
  if (total !== undefined && (typeof total !== 'number' || !Number.isSafeInteger(total) || total < 0)) {
    throw badRequest(`batch: "total" must be a count of tasks, got ${JSON.stringify(total)}`);
  }
  const field: BatchField = {
    action,
    source: generator === undefined ? 'list' : 'generator',
    ...(generator === undefined ? {} : { generator }),
    ...(isRecord(args) ? { args } : {}),
    'batch-size': positiveInt(body, 'batch-size', MAX_BATCH_SIZE) ?? DEFAULT_BATCH_SIZE,
    ...(tasksPerSecond === undefined ? {} : { 'tasks-per-second': tasksPerSecond }),
    'max-in-flight': positiveInt(body, 'max-in-flight', 1_000_000) ?? DEFAULT_MAX_IN_FLIGHT,
    ...(canary === undefined ? {} : { canary }),
    ...(lock === undefined ? {} : { lock: lock }),
    defaults: parseDefaults(defaults),
    phase: canary === undefined ? 'feeding' : 'canary',
    paused: false,
    sealed: generator !== undefined || tasks !== undefined,
    sent: 0,
    ...(tasks === undefined ? (typeof total === 'number' ? { total } : {}) : { total: tasks.length }),
    'total-estimated': tasks === undefined,
    succeeded: 0,
    failed: 0,
    canceled: 0,
    counters: {},
  };
  return {
    field,
    ...(Array.isArray(tasks) ? { tasks } : {}),
    sealed: field.sealed,
    ...(isRecord(acl) ? { acl } : {}),
    ...(Array.isArray(tags) ? { tags: tags } : {}),
  };
}

function parseDefaults(value: unknown): TaskDefaults {
  if (value === undefined) return {};
  if (!isRecord(value)) throw badRequest('batch: "defaults" must be an object like {"queue": "q", "priority": 50}');
  for (const key of Object.keys(value)) if (!DEFAULT_FIELDS.has(key)) throw badRequest(`batch: "defaults": unknown field "${key}"`);
  const { queue } = value;
  if (queue !== undefined && !isQueueName(queue)) throw badRequest(`batch: "defaults"."queue" must be a queue name (${QUEUE_NAME_RULE})`);
  const priority = value.priority;
  if (priority !== undefined && (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > 999)) {
    throw badRequest('batch: "defaults"."priority" must be an integer from 0 to 999');
  }
  const timeout = positiveInt(value, 'timeout', 31 * 24 * 3600);
  const maxAttempts = positiveInt(value, 'max-attempts', 1000);
  return {
    ...(queue === undefined ? {} : { queue: queue }),
    ...(priority === undefined ? {} : { priority: priority }),
    ...(timeout === undefined ? {} : { timeout }),
    ...(maxAttempts === undefined ? {} : { 'max-attempts': maxAttempts }),
  };
}

/** A task's spec from a list or a generator: its payload (any JSON), and per-task overrides. */
export interface TaskSpec {
  readonly payload?: unknown;
  readonly target?: string;
  readonly priority?: number;
}

/** Why a task spec is refused, or undefined: a spec is `{payload?, target?, priority?}`. */
export function taskSpecProblem(spec: unknown): string | undefined {
  if (!isRecord(spec))
    return `a task spec must be an object like {"payload": {...}}, got ${spec === null ? 'null' : Array.isArray(spec) ? 'a list' : typeof spec}`;
  for (const key of Object.keys(spec)) {
    if (key !== 'payload' && key !== 'target' && key !== 'priority') return `a task spec has payload, target, priority; not "${key}"`;
  }
  if (spec.target !== undefined && (typeof spec.target !== 'string' || spec.target === '')) return '"target" must be a non-empty string';
  const { priority } = spec;
  if (priority !== undefined && (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > 999)) {
    return '"priority" must be an integer from 0 to 999';
  }
  return undefined;
}

/** `counters` of a task result: names to finite numbers. */
export function isCounters(value: unknown): value is Record<string, number> {
  return isRecord(value) && Object.values(value).every((count) => typeof count === 'number' && Number.isFinite(count));
}

/**
 * The parent's new document after one of its tasks changed from `before` to `after`, or undefined when
 * the change moves no count (only a task that enters or leaves a final state does: it ended, or it was
 * retried). Runs in the store's transaction of the task's change, so the counts are exact.
 */
export function tallied(parent: JobDocument, before: JobDocument, after: JobDocument): JobDocument | undefined {
  const batch = batchOf(parent);
  if (batch === undefined || isFinal(before.state) === isFinal(after.state)) return undefined;
  let next = batch;
  if (isFinal(before.state)) next = counted(next, before, -1);
  if (isFinal(after.state)) next = counted(next, after, 1);
  return { ...parent, batch: next, progress: progressOf(next), revision: parent.revision + 1 };
}

/** Nuvla's `progress` of a batch: percent of its tasks processed (of the estimate while generating). */
export function progressOf(batch: BatchField): number {
  const total = Math.max(batch.total ?? 0, batch.sent);
  return total === 0 ? 0 : Math.min(100, Math.floor((processedOf(batch) * 100) / total));
}

function counted(batch: BatchField, task: JobDocument, sign: 1 | -1): BatchField {
  const key = task.state === 'SUCCESS' ? 'succeeded' : task.state === 'FAILED' ? 'failed' : 'canceled';
  const sums = new Map(Object.entries(batch.counters));
  for (const [name, count] of Object.entries(task.counters ?? {})) sums.set(name, (sums.get(name) ?? 0) + sign * count);
  // A counter back at zero (a retried task's taken back) is dropped, so that it reads as never counted.
  const counters = Object.fromEntries([...sums].filter(([, sum]) => sum !== 0));
  return { ...batch, counters, [key]: batch[key] + sign };
}

/** The id of the batch whose counts `task` feeds, if it is one of a batch's tasks. */
export function batchParentOf(task: JobDocument): string | undefined {
  return task['batch-index'] === undefined ? undefined : task['parent-job'];
}

export function requireLive(job: JobDocument): BatchField {
  const batch = batchOf(job);
  if (batch === undefined) throw conflict(`${job.id} is not a batch (its action is ${job.action})`, { job: job.id });
  if (isFinal(job.state)) throw conflict(`batch ${job.id} is ${job.state}: it cannot be changed`, { state: job.state });
  return batch;
}

export function withBatch(job: JobDocument, batch: BatchField, now: Date, changes: Partial<JobDocument> = {}): JobDocument {
  return { ...job, ...changes, batch, progress: progressOf(batch), updated: now.toISOString(), revision: job.revision + 1 };
}

export function pauseBatch(job: JobDocument, paused: boolean, now: Date): JobDocument {
  const batch = requireLive(job);
  return withBatch(job, { ...batch, paused }, now, { 'status-message': paused ? 'paused' : 'feeding' });
}

/** More specs uploaded: they extend the total; sealing fixes it. */
export function uploadedTo(job: JobDocument, from: number, count: number, seal: boolean, now: Date): JobDocument {
  const batch = requireLive(job);
  if (batch.source !== 'list') throw conflict(`batch ${job.id} feeds from generator ${batch.generator ?? ''}: it takes no uploaded tasks`);
  if (batch.sealed) throw conflict(`batch ${job.id} is sealed: it takes no more tasks`);
  const total = batch.total ?? 0;
  if (from !== total)
    throw conflict(`batch ${job.id} holds ${String(total)} task specs: the next upload starts at ${String(total)}, not ${String(from)}`, {
      total,
    });
  return withBatch(job, { ...batch, total: total + count, sealed: seal, 'total-estimated': !seal }, now);
}

/**
 * What the counts call for, or undefined when nothing: the canary's tasks all ended (the rest is fed,
 * or the batch FAILED saying why), or every task of an exhausted source ended (SUCCESS when all did).
 */
export function settled(job: JobDocument, now: Date): JobDocument | undefined {
  const batch = batchOf(job);
  // A retry of the failed tasks is under way: they are counted as ended, but they will run again.
  if (batch === undefined || isFinal(job.state) || batch['retrying-since'] !== undefined) return undefined;
  const processed = processedOf(batch);
  if (processed < batch.sent) return undefined;
  if (batch.phase === 'canary') {
    const canary = batch.canary ?? 0;
    const exhausted = batch.sealed && batch.total !== undefined && !batch['total-estimated'] && batch.sent >= batch.total;
    if (batch.sent < canary && !exhausted) return undefined;
    const bad = batch.failed + batch.canceled;
    if (bad > 0) {
      return finished(
        job,
        batch,
        'FAILED',
        `canary failed: ${String(bad)} of ${String(batch.sent)} canary tasks did not succeed; the other tasks were not fed`,
        now,
      );
    }
    return withBatch(job, { ...batch, phase: exhausted ? 'draining' : 'feeding' }, now, { 'status-message': 'canary succeeded: feeding' });
  }
  if (batch.phase !== 'draining') return undefined;
  if (batch.succeeded === batch.sent) return finished(job, batch, 'SUCCESS', `${String(batch.sent)} tasks succeeded`, now);
  return finished(
    job,
    batch,
    'FAILED',
    `${String(batch.failed)} of ${String(batch.sent)} tasks failed, ${String(batch.canceled)} canceled, ${String(batch.succeeded)} succeeded`,
    now,
  );
}

function finished(job: JobDocument, batch: BatchField, state: 'SUCCESS' | 'FAILED', message: string, now: Date): JobDocument {
  const at = now.toISOString();
  const duration = Math.max(0, Math.round((now.getTime() - Date.parse(job.started ?? job.created)) / 1000));
  return {
    ...job,
    batch,
    state,
    'return-code': state === 'SUCCESS' ? 0 : 1,
    progress: state === 'SUCCESS' ? 100 : progressOf(batch),
    'status-message': message,
    'time-of-status-change': at,
    duration,
    updated: at,
    revision: job.revision + 1,
  };
}

/** Back to RUNNING for its failed tasks' retry (a FAILED batch, or a live one with failed tasks). */
export function revived(job: JobDocument, now: Date): JobDocument {
  const batch = batchOf(job);
  if (batch === undefined) throw conflict(`${job.id} is not a batch (its action is ${job.action})`, { job: job.id });
  if (job.state === 'CANCELED' || job.state === 'SUCCESS') {
    throw conflict(`batch ${job.id} is ${job.state}: only a live or FAILED batch has failed tasks to retry`, { state: job.state });
  }
  const { 'return-code': _code, duration: _duration, ...rest } = job;
  // The feeder puts the failed tasks back within max-in-flight; a retry asked again restarts from now.
  return withBatch(rest, { ...batch, paused: false, 'retrying-since': now.toISOString() }, now, {
    state: 'RUNNING',
    'status-message': 'retrying the failed tasks',
    'time-of-status-change': now.toISOString(),
  });
}
