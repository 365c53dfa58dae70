/**
 * How a job enters the engine: persisted through the job API first (the system of record, where an
 * idempotency key makes a retried create return the same job), then its id enqueued in ZooKeeper with
 * the job's priority, by the JobEnqueuer. A creator that dies between the two leaves a QUEUED job
 * without an entry, which the queue reconciler enqueues; the other order could leave an entry for a
 * job that never existed. A job the API server says it enqueued itself (`job-api serve --zk-hosts`)
 * is not enqueued again. Distributions' ticks and `jobctl create` use this.
 */
import type { JobApi } from '../api/client/job-api.js';
import type { NewJob } from '../api/client/inputs.js';
import type { Created } from '../api/client/responses.js';
import { ApiError } from '../api/errors.js';
import { DEFAULT_JOB_PRIORITY } from '../api/job/document.js';
import type { Logger } from '../util/logger.js';
import type { EnqueueRequest, JobEnqueuer } from './job-enqueuer.js';

export interface SubmittedJob extends Created {
  /** Whether this call enqueued it: only a job it created (one that existed was enqueued by its creator). */
  readonly enqueued: boolean;
}

/** Jobs persisted per bulk create and enqueued per call, so a huge tick shows progress in steps. */
const SUBMIT_CHUNK = 500;

export class JobSubmitter {
  readonly #api: Pick<JobApi, 'createMany'>;
  readonly #enqueuer: JobEnqueuer;
  readonly #logger: Logger;

  constructor(api: Pick<JobApi, 'createMany'>, enqueuer: JobEnqueuer, logger: Logger) {
    this.#api = api;
    this.#enqueuer = enqueuer;
    this.#logger = logger;
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
    const fresh = created.flatMap((result, index): EnqueueRequest[] => {
      const job = jobs[index];
      // An API server with --zk-hosts has enqueued it already: a second entry would only be dropped. A
      // delayed job is the scheduler's to enqueue, when due.
      return result.created && result.enqueuedByApi !== true && result.notBefore === undefined && job !== undefined
        ? [
            {
              id: result.id,
              priority: job.priority ?? DEFAULT_JOB_PRIORITY,
              action: job.action,
              ...(job.queue === undefined ? {} : { queue: job.queue }),
            },
          ]
        : [];
    });
    try {
      await this.#enqueuer.enqueue(fresh, signal);
    } catch (error) {
      // Rethrown as it is: a caller tells ZooKeeper's failures (persisted, not enqueued) from the API's.
      this.#logger.error('jobs persisted but not enqueued; the queue reconciler will enqueue them', {
        jobs: fresh.map((job) => job.id),
        error,
      });
      throw error;
    }
    return created.map((result) => ({ ...result, enqueued: result.created && result.notBefore === undefined }));
  }
}

function createdOf(details: Readonly<Record<string, unknown>> | undefined): Created[] {
  const list = details?.created;
  return Array.isArray(list) ? list.filter((item): item is Created => typeof (item as Partial<Created> | null)?.id === 'string') : [];
}
