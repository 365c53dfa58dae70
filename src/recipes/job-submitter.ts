/**
 * How a job enters the engine: persisted through the job API first (the system of record, where an
 * idempotency key makes a retried create return the same job), then its id enqueued in ZooKeeper with
 * the job's priority. A creator that dies between the two leaves a QUEUED job without an entry, which
 * the queue reconciler enqueues; the other order could leave an entry for a job that never existed.
 * Distributors use this, and so will anything else that creates jobs for the engine to run.
 */
import type { JobApi } from '../api/client/job-api.js';
import type { NewJob } from '../api/client/inputs.js';
import type { Created } from '../api/client/responses.js';
import type { PublishedJobEvent } from '../api/job/events.js';
import { ApiError } from '../api/errors.js';
import { DEFAULT_JOB_PRIORITY } from '../api/job/document.js';
import { isZkError } from '../zk/errors.js';
import type { Logger } from '../util/logger.js';
import { delay } from '../util/delay.js';
import type { LockingQueue } from './locking-queue.js';

export interface SubmittedJob extends Created {
  /** Whether this call enqueued it: only a job it created (one that existed was enqueued by its creator). */
  readonly enqueued: boolean;
}

/** Jobs persisted per bulk create and enqueued per transaction, so a huge tick shows progress in steps. */
const SUBMIT_CHUNK = 500;
const ENQUEUE_RETRY_MS = { first: 100, max: 5000 } as const;

/** Where `enqueued` events go (the job API's event stream); a failure to publish never fails a submit. */
export type EventPublisher = (events: readonly PublishedJobEvent[]) => Promise<void>;

export class JobSubmitter {
  readonly #api: JobApi;
  readonly #queue: LockingQueue;
  readonly #logger: Logger;
  readonly #publish: EventPublisher | undefined;

  constructor(api: JobApi, queue: LockingQueue, logger: Logger, publish?: EventPublisher) {
    this.#api = api;
    this.#queue = queue;
    this.#logger = logger;
    this.#publish = publish;
  }

  /**
   * Persists then enqueues `jobs`, results in input order. `signal` stops between steps (what was
   * persisted but not enqueued is left to the reconciler, and said so in the log).
   */
  async submit(jobs: readonly NewJob[], signal?: AbortSignal): Promise<SubmittedJob[]> {
    const submitted: SubmittedJob[] = [];
    for (let start = 0; start < jobs.length; start += SUBMIT_CHUNK) {
      signal?.throwIfAborted();
      const chunk = jobs.slice(start, start + SUBMIT_CHUNK);
      let created: Created[];
      try {
        created = await this.#api.createMany(chunk);
      } catch (error) {
        // A bulk create that failed part-way says which jobs it did create: they must still be enqueued.
        const partial = error instanceof ApiError ? createdOf(error.details) : [];
        if (partial.length > 0) await this.#enqueue(chunk, partial, signal);
        throw error;
      }
      submitted.push(...(await this.#enqueue(chunk, created, signal)));
    }
    return submitted;
  }

  async #enqueue(jobs: readonly NewJob[], created: readonly Created[], signal: AbortSignal | undefined): Promise<SubmittedJob[]> {
    const fresh = created.flatMap((result, index) => {
      const job = jobs[index];
      return result.created && job !== undefined ? [{ jobId: result.id, priority: job.priority ?? DEFAULT_JOB_PRIORITY, action: job.action }] : [];
    });
    // Published just before the entries exist: an executor may take an entry the moment it exists, and
    // `enqueued` must come before `taken` in every event stream.
    await this.#published(fresh);
    for (let wait: number = ENQUEUE_RETRY_MS.first; fresh.length > 0; wait = Math.min(wait * 2, ENQUEUE_RETRY_MS.max)) {
      try {
        await this.#queue.putMany(fresh);
        break;
      } catch (error) {
        // A lost connection may hide a transaction that did happen: a second entry for a job is harmless
        // (the executor that takes it finds the job already running or final), a missing one is not.
        const retryable = isZkError(error) && (error.retryable || isZkError(error, 'SESSION_EXPIRED', 'SESSION_LOST'));
        if (!retryable || signal?.aborted === true) {
          this.#logger.error('jobs persisted but not enqueued; the queue reconciler will enqueue them', {
            jobs: fresh.map((job) => job.jobId),
            error,
          });
          throw error;
        }
        this.#logger.warn('enqueue failed, retrying', { jobs: fresh.length, retryInMs: wait, error });
        await delay(wait, signal).catch(() => undefined);
      }
    }
    return created.map((result) => ({ ...result, enqueued: result.created }));
  }

  async #published(enqueued: readonly { jobId: string; priority: number; action: string }[]): Promise<void> {
    if (this.#publish === undefined || enqueued.length === 0) return;
    const at = new Date().toISOString();
    const events = enqueued.map((job): PublishedJobEvent => ({ type: 'enqueued', at, job: job.jobId, action: job.action, state: 'QUEUED', priority: job.priority }));
    try {
      await this.#publish(events);
    } catch (error) {
      this.#logger.warn('enqueued events not published (the jobs are enqueued)', { jobs: events.length, error });
    }
  }
}

function createdOf(details: Readonly<Record<string, unknown>> | undefined): Created[] {
  const list = details?.created;
  return Array.isArray(list) ? list.filter((item): item is Created => typeof (item as Partial<Created> | null)?.id === 'string') : [];
}
