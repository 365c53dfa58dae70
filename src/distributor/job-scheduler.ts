/**
 * The job scheduler: enqueues delayed jobs (a `not-before` instant, docs/contracts.md) when they are
 * due, and ends CANCELED those whose `expiry` came first. Runs on the elected leader of the
 * `job_scheduler` distribution, as one long task that lasts as long as its leadership.
 *
 * Nothing of a delayed job is in ZooKeeper until it is due: the job API is asked, through the partial
 * (state, not_before) index, for the QUEUED jobs due within a short look-ahead, by `not-before`, a
 * bounded page at a time; the scheduler sleeps until the earliest of them (never longer than `pollMs`,
 * so a job created meanwhile with a near time is seen), enqueues those due into their own queues, then
 * clears their `not-before` (the mark "enqueued"), each edit conditional on the revision it read.
 *
 * Crash safety: enqueue first, mark second. A leader that dies between the two leaves jobs enqueued but
 * still marked due, and the next leader would enqueue them again; to make that second entry rare, a
 * leader's first pass skips due jobs that already have an entry (one listing of the queues, at takeover
 * only) and just marks them. What remains is two leaders at once (a session expiry not yet noticed):
 * then a job may get two entries, which executors tolerate (the second finds it RUNNING or final and
 * is consumed; test/executor-duplicate-entries.test.ts). The other order could lose a job until the
 * queue reconciler's next pass. A job whose mark failed because it changed meanwhile (it was claimed,
 * cancelled, edited) is left alone: it is no longer QUEUED and due, or it is found again next pass.
 *
 * Due jobs that find their queue's window full (src/recipes/queue-window.ts) are not enqueued but
 * marked parked with the same edit that clears their `not-before`: the queue feeder enqueues them
 * as room comes back, best priority first, so a burst of due jobs cannot flood ZooKeeper either.
 */
import type { JobApi } from '../api/client/job-api.js';
import type { JobOperationRequest } from '../api/client/operations.js';
import { isExpired } from '../api/job/document.js';
import { DEFAULT_JOB_PRIORITY } from '../api/job/document.js';
import { DEFAULT_QUEUE_NAME } from '../recipes/queue-layout.js';
import { splitByRoom } from '../recipes/queue-window.js';
import type { QueueAccess } from '../sdk/distribution.js';
import { delay } from '../util/delay.js';
import type { Logger } from '../util/logger.js';
import { exponentialDelays } from '../util/retrying.js';

export interface SchedulerOptions {
  readonly signal: AbortSignal;
  /** Longest sleep between looks at the job API: bounds the delay of a job created due within it. Default 1000. */
  readonly pollMs?: number;
  /** Shortest sleep: jobs due this close together are enqueued together. Default 50. */
  readonly granularityMs?: number;
  /** Jobs per look, per enqueue and per marking request. Default 500 (the API's operations limit is 1,000 by default). */
  readonly batch?: number;
  /** Told after each batch enqueued, with how late each job was (ms after its not-before, by this clock). */
  readonly onEnqueued?: (jobs: readonly { readonly id: string; readonly latenessMs: number }[]) => void;
}

interface Compiled {
  readonly signal: AbortSignal;
  readonly pollMs: number;
  readonly granularityMs: number;
  readonly batch: number;
  /** Whole seconds ahead of now the API is asked for: past the next look, so nothing due before it is missed. */
  readonly lookaheadSeconds: number;
  readonly onEnqueued: SchedulerOptions['onEnqueued'];
}

type DueJob = {
  readonly id: string;
  readonly priority?: number;
  readonly action?: string;
  readonly queue?: string;
  readonly 'not-before'?: string;
  readonly expiry?: string;
  readonly revision?: number;
};

const SELECT = ['priority', 'action', 'queue', 'not-before', 'expiry', 'revision'] as const;
/** While the API or ZooKeeper fails: from 1 s, doubling, up to 30 s between passes. */
const FAILURE_DELAYS = exponentialDelays(1000, 30_000);

function compile(options: SchedulerOptions): Compiled {
  const pollMs = options.pollMs ?? 1000;
  const granularityMs = options.granularityMs ?? 50;
  const batch = options.batch ?? 500;
  if (!Number.isFinite(pollMs) || pollMs < 10) throw new Error(`the scheduler's pollMs must be at least 10, got ${String(pollMs)}`);
  if (!Number.isFinite(granularityMs) || granularityMs < 0 || granularityMs > pollMs) {
    throw new Error(`the scheduler's granularityMs must be from 0 to pollMs (${String(pollMs)}), got ${String(granularityMs)}`);
  }
  if (!Number.isSafeInteger(batch) || batch < 1 || batch > 1000)
    throw new Error(`the scheduler's batch must be 1-1000, got ${String(batch)}`);
  return Object.freeze({
    signal: options.signal,
    pollMs,
    granularityMs,
    batch,
    lookaheadSeconds: Math.ceil(pollMs / 1000) + 1,
    onEnqueued: options.onEnqueued,
  });
}

/**
 * Schedules until `options.signal` aborts (leadership lost, or the distributor stopping); failures of
 * the API or ZooKeeper are logged and retried with back-off, never thrown. Exported from the package
 * entry, like reconcileQueue: the bundled `job_scheduler` distribution reaches it by the package name.
 */
export async function runScheduler(api: JobApi, queue: QueueAccess, log: Logger, options: SchedulerOptions): Promise<void> {
  const compiled = compile(options);
  const { signal } = compiled;
  let takeover = true;
  let failures = 0;
  while (!signal.aborted) {
    let sleepMs: number;
    try {
      sleepMs = await pass(api, queue, log, compiled, takeover);
      takeover = false;
      failures = 0;
    } catch (error) {
      if (isAborted(signal)) break;
      failures += 1;
      sleepMs = FAILURE_DELAYS(failures);
      log.warn('scheduler pass failed; retrying', { error, retryInMs: sleepMs });
    }
    if (sleepMs > 0) await delay(sleepMs, signal, { keepProcessAlive: true }).catch(() => undefined);
  }
}

// A function, because TypeScript keeps `signal.aborted` narrowed to false across awaits.
function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

/** One look and what is due in it; returns how long to sleep before the next. */
async function pass(api: JobApi, queue: QueueAccess, log: Logger, options: Compiled, takeover: boolean): Promise<number> {
  const page = await api.search({
    filter: `state='QUEUED' and not-before<='now+${String(options.lookaheadSeconds)}s'`,
    orderby: 'not-before:asc',
    last: options.batch,
    select: SELECT,
  });
  const now = Date.now();
  const due: DueJob[] = [];
  let next: number | undefined;
  for (const job of page.jobs) {
    const at = Date.parse(job['not-before'] ?? '');
    if (at <= now) due.push(job);
    else {
      next = at;
      break;
    }
  }
  if (due.length > 0) await release(api, queue, log, options, due, now, takeover);
  // A full page all due: more may be waiting behind it.
  if (due.length === options.batch) return 0;
  const until = next === undefined ? options.pollMs : next - Date.now();
  return Math.min(options.pollMs, Math.max(options.granularityMs, until));
}

async function release(
  api: JobApi,
  queue: QueueAccess,
  log: Logger,
  options: Compiled,
  due: readonly DueJob[],
  now: number,
  takeover: boolean,
): Promise<void> {
  const expired = due.filter((job) => isExpired(job, now));
  let runnable = due.filter((job) => !isExpired(job, now));
  let alreadyIn = 0;
  if (takeover && runnable.length > 0) {
    // The previous leader may have enqueued some and died before marking them.
    const inQueue = await queue.jobIds();
    const before = runnable.length;
    runnable = runnable.filter((job) => !inQueue.has(job.id));
    alreadyIn = before - runnable.length;
  }
  // Due jobs beyond their queue's room wait for it parked, as any producer's do: the queue feeder
  // enqueues them best priority first, and ZooKeeper never holds more than the window.
  const { fit, parked } = await splitByRoom(runnable, (name) => queue.room(name), DEFAULT_QUEUE_NAME);
  const parkedIds: ReadonlySet<string> = new Set(parked.map((job) => job.id));
  runnable = fit;
  options.signal.throwIfAborted();
  await queue.enqueue(
    runnable.map((job) => ({
      id: job.id,
      priority: job.priority ?? DEFAULT_JOB_PRIORITY,
      action: job.action ?? 'unknown',
      ...(job.queue === undefined ? {} : { queue: job.queue }),
    })),
  );
  options.onEnqueued?.(runnable.map((job) => ({ id: job.id, latenessMs: now - Date.parse(job['not-before'] ?? '') })));
  const marks: JobOperationRequest[] = due.map((job) =>
    isExpired(job, now)
      ? {
          op: 'edit',
          id: job.id,
          ifRevision: job.revision,
          changes: {
            state: 'CANCELED',
            'not-before': null,
            'status-message': `expired: not started before its expiry ${job.expiry ?? ''} (it was delayed until ${job['not-before'] ?? ''})`,
          },
        }
      : parkedIds.has(job.id)
        ? { op: 'edit', id: job.id, ifRevision: job.revision, changes: { 'not-before': null, parked: true } }
        : { op: 'edit', id: job.id, ifRevision: job.revision, changes: { 'not-before': null } },
  );
  const results = await api.operations(marks);
  const unmarked = results.filter((result) => !result.ok).length;
  log.debug('due jobs released', {
    enqueued: runnable.length,
    parked: parked.length,
    expired: expired.length,
    alreadyEnqueued: alreadyIn,
    changedMeanwhile: unmarked,
  });
  if (expired.length > 0)
    log.info('delayed jobs expired before they were due: CANCELED', { jobs: expired.map((job) => job.id).slice(0, 20) });
}
