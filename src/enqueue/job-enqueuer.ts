/**
 * How a job id enters the queue, whoever asks: a distribution's tick (through the submitter), the
 * queue reconciler, `jobctl create` and `retry`. Each job is first announced
 * as `enqueued` on the job event stream, then its entry is written to ZooKeeper, retried with back-off
 * while ZooKeeper is only unreachable.
 *
 * The announcement comes first because an executor may take an entry the moment it exists, and
 * `enqueued` must precede `taken` in every event stream (docs/contracts.md). It is only a courtesy to
 * followers: a publish that fails is logged and the entries are written all the same.
 *
 * This module knows the job API only as an event type and a publish function, and the queue only as
 * something that writes entries, so that every caller can hand it what it has (a REST client's
 * `publishEvents`, the API server's own event hub, a LockingQueue).
 */
import type { PublishedJobEvent } from '../api/job/events.js';
import type { RoutedPut } from '../recipes/queue-routes.js';
import type { Logger } from '../util/logger.js';
import { exponentialDelays, retrying } from '../util/retrying.js';
import { isZkError } from '../zk/errors.js';

/** One job to enqueue: what its entry and its `enqueued` event need. */
export interface EnqueueRequest {
  /** `job/<uuid>` */
  readonly id: string;
  /** 0-999, lower runs first. */
  readonly priority: number;
  readonly action: string;
  /** The queue it goes to (the job's `queue` field); the default queue when absent. */
  readonly queue?: string;
}

/** Where `enqueued` events go (the job API's event stream). */
export type EventPublisher = (events: readonly PublishedJobEvent[]) => Promise<void>;

/**
 * What the enqueuer needs of the queues (QueueRoutes is one): each entry written into the queue it
 * names, one batch per queue, names returned in input order. The only place jobs are routed.
 */
export interface QueueEntryWriter {
  putRouted(requests: readonly RoutedPut[]): Promise<string[]>;
}

export interface JobEnqueuerOptions {
  readonly queue: QueueEntryWriter;
  readonly logger: Logger;
  /** Where `enqueued` events are announced; none are when absent (a test's bare queue). */
  readonly publish?: EventPublisher;
  /** The clock of the events' `at` (a CLI's injectable clock). */
  readonly now?: () => number;
}

/** ZooKeeper busy or out of reach: retried from 100 ms, doubling, up to 5 s between attempts. */
const ENQUEUE_RETRY_DELAYS = exponentialDelays(100, 5000);

/**
 * A lost connection may hide a transaction that did happen: a second entry for a job is harmless (the
 * executor that takes it finds the job already running or final, and drops it), a missing one is not.
 */
function worthRetrying(error: unknown): boolean {
  return isZkError(error) && (error.retryable || isZkError(error, 'SESSION_EXPIRED', 'SESSION_LOST'));
}

interface CompiledOptions {
  readonly queue: QueueEntryWriter;
  readonly logger: Logger;
  readonly publish: EventPublisher | undefined;
  readonly now: () => number;
}

export class JobEnqueuer {
  readonly #options: CompiledOptions;

  constructor(options: JobEnqueuerOptions) {
    this.#options = Object.freeze({ queue: options.queue, logger: options.logger, publish: options.publish, now: options.now ?? Date.now });
  }

  /**
   * Announces then enqueues `jobs`; resolves with their entry names, in input order. `signal` stops
   * the retries, not the first attempt: jobs that exist get their entries whenever it is at all
   * possible. A failure rejects with ZooKeeper's own error (the last attempt's), so callers can say
   * what went wrong; what it leaves without an entry, the queue reconciler enqueues later.
   */
  async enqueue(jobs: readonly EnqueueRequest[], signal?: AbortSignal): Promise<string[]> {
    if (jobs.length === 0) return [];
    await this.#announce(jobs);
    return this.#put(
      jobs.map((job) =>
        job.queue === undefined ? { jobId: job.id, priority: job.priority } : { jobId: job.id, priority: job.priority, queue: job.queue },
      ),
      signal,
    );
  }

  async #announce(jobs: readonly EnqueueRequest[]): Promise<void> {
    const { publish, logger, now } = this.#options;
    if (publish === undefined) return;
    const at = new Date(now()).toISOString();
    const events = jobs.map((job): PublishedJobEvent => ({
      type: 'enqueued',
      at,
      job: job.id,
      action: job.action,
      state: 'QUEUED',
      priority: job.priority,
    }));
    try {
      await publish(events);
    } catch (error) {
      logger.warn('enqueued events not published (the jobs are enqueued)', { jobs: events.length, error });
    }
  }

  async #put(entries: readonly RoutedPut[], signal: AbortSignal | undefined): Promise<string[]> {
    const { queue, logger } = this.#options;
    let lastFailure: unknown;
    try {
      return await retrying(
        async () => {
          try {
            return await queue.putRouted(entries);
          } catch (error) {
            lastFailure = error;
            throw error;
          }
        },
        {
          delays: ENQUEUE_RETRY_DELAYS,
          retryIf: (error) => worthRetrying(error) && signal?.aborted !== true,
          onRetry: (error, next) => {
            logger.warn('enqueue failed, retrying', { jobs: entries.length, retryInMs: next.waitMs, error });
          },
          // An already aborted signal would stop even the first attempt: then it is left out, and
          // `retryIf` alone makes that attempt the only one.
          ...(signal === undefined || signal.aborted ? {} : { signal }),
        },
      );
    } catch (error) {
      // Aborted while waiting to retry: why the entries are missing is the last attempt's failure.
      throw signal?.aborted === true && lastFailure !== undefined ? lastFailure : error;
    }
  }
}
