/**
 * The queue feeder: keeps each queue's entries in ZooKeeper near its window (src/recipes/queue-window.ts)
 * by enqueueing the jobs parked in the job API as room comes back, best priority first, then oldest.
 * Producers enqueue directly while a queue has room and park what does not fit, so ZooKeeper holds
 * only the jobs about to run, however many wait: every listing an executor makes stays small, and a
 * million waiting jobs cost ZooKeeper nothing.
 *
 * Each pass reads every queue's room (one `exists` each) and asks the job API to unpark that many of
 * the queue's parked jobs (one indexed page, no count), then enqueues them. A pass that fed nothing
 * waits a little before the next; one that fed something goes on at once, so a draining queue is
 * topped up as fast as the executors empty it. The API unparks before the entries are written, so
 * two feeders (a deposed leader and the new one) never feed a job twice, and one that dies in between
 * leaves QUEUED jobs without an entry, which the queue reconciler enqueues.
 */
import { delay } from '../util/delay.js';
import type { Logger } from '../util/logger.js';
import type { QueueAccess } from '../sdk/distribution.js';

export interface FeedOptions {
  readonly signal: AbortSignal;
  /** Feeds until then (the distribution's next tick), then returns. */
  readonly until: Date;
  /** Most jobs unparked per request (default 1,000). */
  readonly batch?: number;
  /** The wait after a pass that fed nothing (default 200 ms): how soon room or a parked job is noticed. */
  readonly idleMs?: number;
}

export interface FeedReport {
  readonly passes: number;
  /** Jobs enqueued, per queue. */
  readonly fed: Readonly<Record<string, number>>;
}

const DEFAULT_BATCH = 1000;
const DEFAULT_IDLE_MS = 200;

/** Feeds every queue until `until` or the signal; resolves with what it fed. */
export async function feedQueues(queue: QueueAccess, log: Logger, options: FeedOptions): Promise<FeedReport> {
  const batch = options.batch ?? DEFAULT_BATCH;
  const idleMs = options.idleMs ?? DEFAULT_IDLE_MS;
  const fed: Record<string, number> = {};
  let passes = 0;
  while (!options.signal.aborted && Date.now() < options.until.getTime()) {
    passes += 1;
    let fedThisPass = 0;
    for (const name of await queue.names()) {
      const room = await queue.room(name);
      if (room <= 0) continue;
      const count = await queue.feedParked(name, Math.min(room, batch));
      if (count > 0) {
        fed[name] = (fed[name] ?? 0) + count;
        fedThisPass += count;
        log.debug('parked jobs enqueued', { queue: name, jobs: count, room });
      }
    }
    if (fedThisPass === 0) {
      const left = options.until.getTime() - Date.now();
      if (left <= 0) break;
      await delay(Math.min(idleMs, left), options.signal).catch(() => undefined);
    }
  }
  return { passes, fed };
}
