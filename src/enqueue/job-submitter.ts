/**
 * How a job enters the engine: persisted through the job API first (the system of record, where an
 * idempotency key makes a retried create return the same job), then its id enqueued in ZooKeeper with
 * the job's priority, by the JobEnqueuer. A creator that dies between the two leaves a QUEUED job
 * without an entry, which the queue reconciler enqueues; the other order could leave an entry for a
 * job that never existed. A job the API server says it enqueued itself (`job-api serve --zk-hosts`)
 * is not enqueued again. Distributions' ticks and `jobctl create` use this.
 *
 * Given the queues' room (queue-window.ts), jobs that find none are created `parked` instead: they wait
 * in the job API, where the queue feeder finds them best first, and ZooKeeper holds no more than its
 * window whatever the backlog.
 */
import type { JobApi } from '../api/client/job-api.js';
import type { NewJob } from '../api/client/inputs.js';
import type { Created } from '../api/client/responses.js';
import { ApiError } from '../api/errors.js';
import { DEFAULT_JOB_PRIORITY } from '../api/job/document.js';
import { DEFAULT_QUEUE_NAME } from '../recipes/queue-layout.js';
import { splitByRoom } from '../recipes/queue-window.js';
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
  readonly #room: ((queue: string) => Promise<number>) | undefined;

  /** `room`: how many more entries a queue may take now; without it nothing is parked. */
  constructor(api: Pick<JobApi, 'createMany'>, enqueuer: JobEnqueuer, logger: Logger, room?: (queue: string) => Promise<number>) {
    this.#api = api;
    this.#enqueuer = enqueuer;
    this.#logger = logger;
    this.#room = room;
  }

  /**
   * Persists then enqueues `jobs`, results in input order. `signal` stops between steps (what was
   * persisted but not enqueued is left to the reconciler, and said so in the log).
   */
  async submit(jobs: readonly NewJob[], signal?: AbortSignal): Promise<SubmittedJob[]> {
    const submitted: SubmittedJob[] = [];
    for (let start = 0; start < jobs.length; start += SUBMIT_CHUNK) {
      signal?.throwIfAborted();
      const chunk = await this.#parkBeyondRoom(jobs.slice(start, start + SUBMIT_CHUNK));
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

  /** The chunk with the jobs that find no room marked `parked` (a delayed job waits for its time, not for room). */
  async #parkBeyondRoom(chunk: readonly NewJob[]): Promise<NewJob[]> {
    const room = this.#room;
    if (room === undefined) return [...chunk];
    const candidates = chunk.filter((job) => job['not-before'] === undefined && job.parked !== true);
    const { parked } = await splitByRoom(candidates, room, DEFAULT_QUEUE_NAME);
    if (parked.length === 0) return [...chunk];
    const parkedSet: ReadonlySet<NewJob> = new Set(parked);
    return chunk.map((job) => (parkedSet.has(job) ? { ...job, parked: true } : job));
  }

  async #enqueue(jobs: readonly NewJob[], created: readonly Created[], signal: AbortSignal | undefined): Promise<SubmittedJob[]> {
    const fresh = created.flatMap((result, index): EnqueueRequest[] => {
      const job = jobs[index];
      // An API server with --zk-hosts has enqueued it already: a second entry would only be dropped.
      return result.created && result.enqueuedByApi !== true && !waits(result) && job !== undefined
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
    return created.map((result) => ({ ...result, enqueued: result.created && !waits(result) }));
  }
}

/** A delayed job is the scheduler's to enqueue when due, a parked one the queue feeder's when there is room. */
function waits(result: Created): boolean {
  return result.notBefore !== undefined || result.parked === true;
}

function createdOf(details: Readonly<Record<string, unknown>> | undefined): Created[] {
  const list = details?.created;
  return Array.isArray(list) ? list.filter((item): item is Created => typeof (item as Partial<Created> | null)?.id === 'string') : [];
}
