/**
 * The queue reconciler: brings the job API (the system of record) and the ZooKeeper queue back in
 * line, so that no job is stranded (docs/contracts.md, invariant 1).
 *
 * The queue is every queue: the default one and each named queue under `<root>/queues`, and a job is
 * enqueued into the queue its `queue` field names.
 *
 * - A QUEUED job whose id is in no queue entry was persisted by a creator that died before enqueueing
 *   it, created by a third party through the REST API, or lost with ZooKeeper's data: it is enqueued.
 *   Not a delayed job whose `not-before` is still to come (or came within the grace): the scheduler
 *   enqueues those (src/distributor/job-scheduler.ts).
 * - A RUNNING job whose owner is not a live executor and whose id is in no entry lost its entry while
 *   its executor died: it is set back to QUEUED (only if nobody changed it meanwhile) and enqueued.
 *
 * A job is in an entry while it waits and while it runs (the executor consumes the entry only once the
 * job is final), so "in no entry" is the mark of a stranded job. Jobs younger than a grace period are
 * left alone: their creator may be between persisting and enqueueing. A job enqueued twice by a race
 * is harmless: the executor taking the second entry finds it running or final and drops the entry.
 */
import type { JobApi } from '../api/client/job-api.js';
import { ApiError } from '../api/errors.js';
import { DEFAULT_JOB_PRIORITY } from '../api/job/document.js';
import { DEFAULT_QUEUE_NAME } from '../recipes/queue-layout.js';
import type { Logger } from '../util/logger.js';
import type { QueueAccess } from '../sdk/distribution.js';

export interface ReconcileOptions {
  /** Jobs changed more recently than this (created, unparked, handed back, RUNNING updated) are not touched. */
  readonly graceMs: number;
  readonly signal?: AbortSignal;
}

export interface ReconcileReport {
  readonly queuedChecked: number;
  readonly runningChecked: number;
  /** QUEUED jobs that had no entry and were enqueued. */
  readonly enqueued: readonly string[];
  /** RUNNING jobs of dead owners without an entry, set back to QUEUED and enqueued. */
  readonly requeued: readonly string[];
}

const PAGE = 5000;
/** How many stranded ids a log line lists before it only counts. */
const LOGGED_IDS = 20;

type Found = {
  readonly id: string;
  readonly action?: string;
  readonly priority?: number;
  readonly executor?: string;
  readonly revision?: number;
  readonly updated?: string;
  readonly queue?: string;
};

/** Every job matching `filter`, a page at a time in id order (a job that changes state meanwhile skips no other). */
async function* jobsMatching(api: JobApi, filter: string, signal: AbortSignal | undefined): AsyncGenerator<Found> {
  let after: string | undefined;
  for (;;) {
    signal?.throwIfAborted();
    const page = await api.search({
      filter: after === undefined ? filter : `(${filter}) and id>'${after}'`,
      orderby: 'id:asc',
      last: PAGE,
      select: ['action', 'priority', 'executor', 'revision', 'updated', 'queue'],
    });
    for (const job of page.jobs) yield job;
    const last = page.jobs.at(-1);
    if (page.jobs.length < PAGE || last === undefined) return;
    after = last.id;
  }
}

/**
 * One reconciliation pass (the `queue_reconciler` distribution runs it on its elected leader; two passes
 * at once would only enqueue some jobs twice, which is harmless, see above). Exported from the package
 * entry as a maintenance routine: it works through the job API and QueueAccess alone (both in every
 * DistributionContext), so the bundled distribution reaches it by the package's name like any outside
 * module, and an operator can run it on another schedule or grace from a distribution of their own.
 */
export async function reconcileQueue(api: JobApi, queue: QueueAccess, log: Logger, options: ReconcileOptions): Promise<ReconcileReport> {
  const { signal } = options;
  const cutoff = new Date(Date.now() - options.graceMs).toISOString();
  // The API first, then the queue: a job enqueued between the two reads is then seen in the queue.
  const queued: Found[] = [];
  // A job waiting (`waiting`, an indexed column) has no entry on purpose: a parked one is the queue
  // feeder's, a delayed one the scheduler's once due. Only a delayed job whose time came more than the
  // grace ago without an entry was missed, and is enqueued here; two indexed reads, so that a million
  // waiting jobs cost a pass nothing.
  // `updated`, not `created`: a job the feeder has just unparked is between its API write and its entry.
  for await (const job of jobsMatching(api, `state='QUEUED' and waiting=null and updated<'${cutoff}'`, signal)) queued.push(job);
  for await (const job of jobsMatching(api, `state='QUEUED' and waiting='time' and not-before<'${cutoff}'`, signal)) queued.push(job);
  const running: Found[] = [];
  for await (const job of jobsMatching(api, `state='RUNNING' and action!='batch' and updated<'${cutoff}'`, signal)) running.push(job);
  if (queued.length === 0 && running.length === 0) return { queuedChecked: 0, runningChecked: 0, enqueued: [], requeued: [] };
  const inQueue = await queue.jobIds();

  const stranded = await withinRoom(
    await stillQueued(
      api,
      queued.filter((job) => !inQueue.has(job.id)),
    ),
    queue,
    log,
  );
  signal?.throwIfAborted();
  await queue.enqueue(stranded.map(enqueueable));
  const enqueued = stranded.map((job) => job.id);

  const requeued: Found[] = [];
  const liveness = new Map<string, Promise<boolean>>();
  for (const job of running) {
    if (inQueue.has(job.id)) continue;
    const owner = job.executor;
    if (owner !== undefined) {
      let alive = liveness.get(owner);
      if (alive === undefined) liveness.set(owner, (alive = queue.isExecutorAlive(owner)));
      if (await alive) continue;
    }
    signal?.throwIfAborted();
    if (await requeue(api, job, owner, log)) requeued.push(job);
  }
  await queue.enqueue(requeued.map(enqueueable));

  const report = { queuedChecked: queued.length, runningChecked: running.length, enqueued, requeued: requeued.map((job) => job.id) };
  if (enqueued.length > 0 || requeued.length > 0) {
    log.warn('stranded jobs put back in the queue', {
      enqueued: enqueued.length,
      requeued: report.requeued.length,
      jobs: [...enqueued, ...report.requeued].slice(0, LOGGED_IDS),
    });
  }
  return report;
}

/** Ids per re-read: well under the filter's limits (5,000 values, 64 KiB). */
const RECHECK_CHUNK = 500;

/**
 * The candidates that are still QUEUED, read again after the queue was: a job that ran and ended
 * between the two reads has no entry any more, and is not stranded. Without this, a busy queue hands
 * the reconciler a few such jobs every pass, each enqueued again for nothing (and past the window).
 */
async function stillQueued(api: JobApi, candidates: readonly Found[]): Promise<Found[]> {
  const kept: Found[] = [];
  for (let start = 0; start < candidates.length; start += RECHECK_CHUNK) {
    const chunk = candidates.slice(start, start + RECHECK_CHUNK);
    const ids = chunk.map((job) => `'${job.id}'`).join(',');
    const page = await api.search({ filter: `state='QUEUED' and id=[${ids}]`, last: chunk.length, select: ['state'] });
    const queuedNow = new Set(page.jobs.map((job) => job.id));
    kept.push(...chunk.filter((job) => queuedNow.has(job.id)));
  }
  return kept;
}

/**
 * The stranded jobs that fit their queue's room, best priority first: a queue's window holds whatever
 * a pass finds (jobs created over REST by a producer that does not enqueue), and the rest wait for a
 * later pass, as room comes back.
 */
async function withinRoom(stranded: readonly Found[], queue: QueueAccess, log: Logger): Promise<Found[]> {
  const byQueue = new Map<string, Found[]>();
  for (const job of stranded) {
    const name = job.queue ?? DEFAULT_QUEUE_NAME;
    const list = byQueue.get(name);
    if (list === undefined) byQueue.set(name, [job]);
    else list.push(job);
  }
  const fit: Found[] = [];
  for (const [name, jobs] of byQueue) {
    const room = await queue.room(name);
    jobs.sort((a, b) => (a.priority ?? DEFAULT_JOB_PRIORITY) - (b.priority ?? DEFAULT_JOB_PRIORITY));
    fit.push(...jobs.slice(0, room));
    if (jobs.length > room)
      log.info('stranded jobs left for a later pass: their queue is full', { queue: name, jobs: jobs.length - room, room });
  }
  return fit;
}

/** Into the job's own queue: a job without the field (older, or Nuvla's) is the default queue's. */
function enqueueable(job: Found): { id: string; priority: number; action: string; queue?: string } {
  return {
    id: job.id,
    priority: job.priority ?? DEFAULT_JOB_PRIORITY,
    action: job.action ?? 'unknown',
    ...(job.queue === undefined ? {} : { queue: job.queue }),
  };
}

/** RUNNING -> QUEUED, only at the revision seen (false when the job moved on meanwhile). */
async function requeue(api: JobApi, job: Found, owner: string | undefined, log: Logger): Promise<boolean> {
  try {
    await api.edit(
      job.id,
      {
        // `executor` is left as it was (and overwritten by the next claim): Nuvla's API has no such field.
        state: 'QUEUED',
        'status-message': `requeued by the queue reconciler: its executor ${owner ?? '(none recorded)'} is gone and its queue entry was lost`,
      },
      { ifRevision: job.revision },
    );
    return true;
  } catch (error) {
    if (error instanceof ApiError && (error.code === 'precondition-failed' || error.code === 'not-found' || error.code === 'conflict')) {
      log.info('stranded job changed meanwhile; left alone', { job: job.id, reason: error.message });
      return false;
    }
    throw error;
  }
}
