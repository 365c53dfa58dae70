/**
 * The batch feeder (docs/batches.md): on the elected leader of `batch_feeder`, feeds every live,
 * unpaused batch from its source. Each pass reads the live batches (one indexed search), and for each:
 * room = min(batch-size, max-in-flight − tasks in flight, the tokens of its tasks-per-second, its
 * queue's window room); takes that many next specs from its source (a list's stored specs from index
 * `sent`, or a generator resumed from the batch's marker); creates them as tasks in one bulk create,
 * each with the idempotency key `<batch uuid>:<index>`; enqueues those the API did not; then records
 * how far it got with `advance`, a compare-and-set on `sent`.
 *
 * Crash safety: tasks first, the record second. A leader that dies between the two leaves tasks the
 * next leader creates again from the same marker and indexes: the keys return the existing jobs, so
 * every index exists once. In flight is `sent` minus the tasks that ended, both on the batch and
 * kept exact by the API, so nothing here grows with the batch: a pass holds at most one group.
 */
import type { JobApi } from '../api/client/job-api.js';
import type { NewJob } from '../api/client/inputs.js';
import { ApiError } from '../api/errors.js';
import { inFlightOf, processedOf, taskSpecProblem, type BatchField, type TaskSpec } from '../api/batch/batch-field.js';
import { jobUuid, type JobDocument } from '../api/job/document.js';
import { DEFAULT_QUEUE_NAME } from '../recipes/queue-layout.js';
import type { QueueAccess } from '../sdk/distribution.js';
import { delay } from '../util/delay.js';
import { toError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { BatchSources, SourceNotLoaded } from './batch-sources.js';

export interface BatchFeedOptions {
  readonly signal: AbortSignal;
  /** Feeds until then (the distribution's next tick), then returns. */
  readonly until: Date;
  readonly batchesDirs: readonly string[];
  /** The wait after a pass that fed nothing (default 200 ms): how soon a pause, a new batch or room is seen. */
  readonly idleMs?: number;
}

export interface BatchFeedReport {
  readonly passes: number;
  /** Tasks created, per batch. */
  readonly fed: Readonly<Record<string, number>>;
}

type LiveBatch = Pick<JobDocument, 'id' | 'batch' | 'acl'>;

const DEFAULT_IDLE_MS = 200;
/** Live batches read per pass: more are fed in later passes, oldest first. */
const MAX_LIVE = 200;

/**
 * The batch's tasks-per-second as a token bucket of one group at most, kept as GCRA's one time
 * (`paced-until`, recorded with each advance): the bucket survives the feeder's ticks and a new
 * leader, so the rate does not drift by a refilled burst per tick. Undefined rate: no limit.
 */
interface Pace {
  readonly available: number;
  /** `paced-until` after `count` more tasks. */
  readonly after: (count: number) => string | undefined;
}

function paceOf(batch: BatchField, now: number): Pace {
  const rate = batch['tasks-per-second'];
  if (rate === undefined) return { available: Number.POSITIVE_INFINITY, after: () => undefined };
  const capacity = Math.max(1, Math.min(batch['batch-size'], Math.ceil(rate)));
  const recorded = Date.parse(batch['paced-until'] ?? '');
  const due = Number.isNaN(recorded) ? now : Math.max(now, recorded);
  // A tiny epsilon: 50/s over 20 ms is one whole token, not 0.9999.
  const available = Math.floor(capacity - ((due - now) / 1000) * rate + 1e-9);
  return { available, after: (count) => new Date(Math.ceil(due + (count / rate) * 1000)).toISOString() };
}

export async function feedBatches(api: JobApi, queue: QueueAccess, log: Logger, options: BatchFeedOptions): Promise<BatchFeedReport> {
  const idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
  const sources = new BatchSources(api, options.batchesDirs, log);
  const fed: Record<string, number> = {};
  let passes = 0;
  try {
    while (!options.signal.aborted && Date.now() < options.until.getTime()) {
      passes += 1;
      const { jobs } = await api.search({
        filter: "action='batch' and state='RUNNING'",
        orderby: 'created:asc',
        last: MAX_LIVE,
        select: ['batch', 'acl'],
      });
      const live = new Set(jobs.map((job) => job.id));
      sources.keepOnly(live);
      let fedThisPass = 0;
      for (const job of jobs) {
        try {
          const count = await feedOne(api, queue, job, sources, log);
          if (count > 0) {
            fed[job.id] = (fed[job.id] ?? 0) + count;
            fedThisPass += count;
          }
        } catch (error) {
          // One batch's trouble (a 409 from another feeder, a generator that throws) must not stop the others.
          sources.forget(job.id);
          if (error instanceof SourceNotLoaded) await holdBack(api, job, error.message, log);
          else if (error instanceof ApiError && error.code === 'conflict')
            log.info('batch moved on meanwhile', { batch: job.id, reason: error.message });
          else log.error('batch not fed', { batch: job.id, error: toError(error).message });
        }
      }
      if (fedThisPass === 0) {
        const left = options.until.getTime() - Date.now();
        if (left <= 0) break;
        await delay(Math.min(idleMs, left), options.signal).catch(() => undefined);
      }
    }
  } finally {
    await sources.close();
  }
  return { passes, fed };
}

async function feedOne(api: JobApi, queue: QueueAccess, job: LiveBatch, sources: BatchSources, log: Logger): Promise<number> {
  let batch = job.batch;
  if (batch === undefined) return 0;
  // Every task sent ended: the canary decides, or the batch ends.
  if (settles(batch)) {
    const after = await api.batchOperation(job.id, 'settle');
    if (after.state !== 'RUNNING' || after.batch === undefined) {
      log.info('batch ended', { batch: job.id, state: after.state, message: after['status-message'] });
      return 0;
    }
    batch = after.batch;
  }
  const retrying = batch['retrying-since'] !== undefined;
  if (batch.paused || (batch.phase === 'draining' && !retrying)) return 0;
  const queueName = batch.defaults.queue ?? DEFAULT_QUEUE_NAME;
  let room = Math.min(batch['batch-size'], batch['max-in-flight'] - inFlightOf(batch));
  if (batch.phase === 'canary' && !retrying) room = Math.min(room, (batch.canary ?? 0) - batch.sent);
  const pace = paceOf(batch, Date.now());
  room = Math.min(room, pace.available);
  if (room > 0) room = Math.min(room, await queue.room(queueName));
  if (room <= 0) return 0;
  if (retrying) return requeue(api, queue, job.id, batch, room, pace);
  const next = await sources.next(job.id, batch, room);
  if (next.specs.length === 0 && !next.exhausted) return 0;
  const tasks = next.specs.map((spec, offset) => taskOf(job, batch, spec, batch.sent + offset));
  if (tasks.length > 0) {
    const created = await api.createMany(tasks);
    const toEnqueue = created.flatMap((result, offset) => {
      const task = tasks[offset];
      if (!result.created || result.enqueuedByApi === true || result.parked === true || task === undefined) return [];
      return [{ id: result.id, priority: task.priority ?? 999, action: task.action, queue: queueName }];
    });
    if (toEnqueue.length > 0) await queue.enqueue(toEnqueue);
  }
  const pacedUntil = tasks.length > 0 ? pace.after(tasks.length) : undefined;
  await api.batchOperation(job.id, 'advance', {
    from: batch.sent,
    sent: batch.sent + tasks.length,
    exhausted: next.exhausted,
    ...(next.marker === undefined ? {} : { marker: next.marker }),
    ...(next.total === undefined ? {} : { total: next.total }),
    ...(pacedUntil === undefined ? {} : { 'paced-until': pacedUntil }),
  });
  sources.advanced(job.id, next.marker);
  return tasks.length;
}

/**
 * A retry of the failed tasks goes through here as new tasks would: at most `room` of them back to
 * QUEUED at once (the API enqueues them, or the queue reconciler does), so max-in-flight, the rate
 * and a pause hold for a retry too. Returns how many went back.
 */
async function requeue(api: JobApi, queue: QueueAccess, id: string, batch: BatchField, room: number, pace: Pace): Promise<number> {
  const pacedUntil = pace.after(room);
  const done = await api.batchRequeue(id, { limit: room, ...(pacedUntil === undefined ? {} : { 'paced-until': pacedUntil }) });
  const queueName = batch.defaults.queue ?? DEFAULT_QUEUE_NAME;
  // Left unenqueued by a crash here, they are QUEUED without an entry: the queue reconciler's.
  if (done.toEnqueue.length > 0) {
    await queue.enqueue(done.toEnqueue.map((task) => ({ id: task.id, priority: task.priority, action: batch.action, queue: queueName })));
  }
  return done.count;
}

/** Logged and noted on the batch once per reason: the batch's own `waiting` remembers it across ticks and feeders. */
async function holdBack(api: JobApi, job: LiveBatch, reason: string, log: Logger): Promise<void> {
  if (job.batch?.waiting === reason) return;
  log.error('batch not fed: it waits', { batch: job.id, reason });
  // Not recorded (the batch ended meanwhile, the API is away): the next pass tries again.
  await api.batchOperation(job.id, 'wait', { reason }).catch((error: unknown) => {
    log.warn('batch wait not recorded', { batch: job.id, error: toError(error).message });
  });
}

function settles(batch: BatchField): boolean {
  if (batch['retrying-since'] !== undefined) return false;
  if (processedOf(batch) < batch.sent) return false;
  if (batch.phase === 'draining') return true;
  if (batch.phase !== 'canary') return false;
  const known = batch.total !== undefined && !batch['total-estimated'];
  return batch.sent >= (batch.canary ?? 0) || (known && batch.sent >= (batch.total ?? 0));
}

function taskOf(job: LiveBatch, batch: BatchField, spec: TaskSpec, index: number): NewJob {
  const problem = taskSpecProblem(spec);
  if (problem !== undefined) throw new Error(`task ${String(index)} of batch ${job.id}: ${problem}`);
  const { defaults } = batch;
  const priority = spec.priority ?? defaults.priority;
  return {
    action: batch.action,
    'parent-job': job.id,
    'batch-index': index,
    'idempotency-key': `${jobUuid(job.id)}:${String(index)}`,
    ...(spec.payload === undefined ? {} : { payload: JSON.stringify(spec.payload) }),
    ...(spec.target === undefined ? {} : { 'target-resource': { href: spec.target } }),
    ...(priority === undefined ? {} : { priority }),
    ...(defaults.queue === undefined ? {} : { queue: defaults.queue }),
    ...(defaults.timeout === undefined ? {} : { timeout: defaults.timeout }),
    ...(defaults['max-attempts'] === undefined ? {} : { 'max-attempts': defaults['max-attempts'] }),
    ...(job.acl === undefined ? {} : { acl: job.acl }),
  };
}
