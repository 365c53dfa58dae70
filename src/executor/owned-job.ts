/**
 * A job this executor owns, and the only way its document is written: every edit is conditional on
 * the revision this executor last saw (If-Match), so once anyone else has moved the job on (a cancel,
 * another executor that re-ran it after this one's session expired) our late writes are refused
 * instead of overwriting theirs: the fencing of docs/contracts.md, invariant 2.
 *
 * Writes are serialised (progress and the final write never race each other's revision), retried
 * with back-off while the API is unreachable, and stop as soon as the ZooKeeper session that holds
 * the job's entry is lost.
 */
import { ApiError } from '../api/errors.js';
import { isRetryable } from '../api/client/errors.js';
import type { JobApiClient } from '../api/client/index.js';
import type { JobChanges } from '../api/client/inputs.js';
import type { JobDocument } from '../api/job/document.js';
import { toError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { retrying } from '../util/retrying.js';
import type { ApiGate } from './api-gate.js';
import { reportingUnreachable, untilReachable } from './api-retry.js';
import type { JobWrites } from './job-writes.js';

/** Retries of a write the server failed with 500. */
const INTERNAL_RETRIES = 3;

/** How the API refuses a conditional write once someone else has moved the job on. */
const REFUSALS: ReadonlySet<string> = new Set(['precondition-failed', 'conflict', 'not-found']);

function isRefusal(error: unknown): boolean {
  return error instanceof ApiError && REFUSALS.has(error.code);
}

/**
 * A refused write of a job that is still ours: only someone's unrelated edit moved its revision on.
 * Never leaves OwnedJob: the write is made again at once, with the revision the job has now.
 */
class RevisionMoved extends Error {
  override readonly name = 'RevisionMoved';

  constructor(jobId: string) {
    super(`the revision of job ${jobId} moved on while it is still ours`);
  }
}

export type LostReason = 'canceled' | 'taken-over' | 'gone' | 'session-lost';

/** The job is no longer this executor's to write. */
export class OwnershipLostError extends Error {
  override readonly name = 'OwnershipLostError';
  readonly code = 'ownership-lost';
  readonly reason: LostReason;
  readonly job: JobDocument | undefined;

  constructor(reason: LostReason, message: string, job?: JobDocument) {
    super(message);
    this.reason = reason;
    this.job = job;
  }
}

export interface OwnedJobContext {
  /** For reading the job back after a refused write. */
  readonly api: JobApiClient;
  readonly writes: JobWrites;
  readonly gate: ApiGate;
  readonly logger: Logger;
  /** Aborted when the ZooKeeper session holding the job's entry is lost. */
  readonly lost: AbortSignal;
}

export class OwnedJob {
  readonly id: string;
  readonly owner: string;
  readonly attempt: number;
  readonly #context: OwnedJobContext;
  #revision: number | undefined;
  #tail: Promise<unknown> = Promise.resolve();

  /** `revision` is the one the claim is conditional on; the job is ours once `write` of the claim succeeded. */
  constructor(job: JobDocument, revision: number | undefined, owner: string, attempt: number, context: OwnedJobContext) {
    this.id = job.id;
    this.owner = owner;
    this.attempt = attempt;
    this.#revision = revision;
    this.#context = context;
  }

  /**
   * Applies `changes` if the job is still ours; retries while the API is unreachable until `give`
   * aborts. Rejects with OwnershipLostError when it is not ours any more.
   */
  write(changes: JobChanges, give: AbortSignal): Promise<JobDocument> {
    const result = this.#tail.then(() => this.#write(changes, give));
    this.#tail = result.catch(() => undefined);
    return result;
  }

  async #write(changes: JobChanges, give: AbortSignal): Promise<JobDocument> {
    // Numbered over the whole write, re-writes after #settle included: the back-off and the limit on
    // retried 500s are per write, not per revision.
    const edits = { count: 0 };
    return retrying(() => this.#writeAtRevision(changes, give, edits), {
      // No wait and no signal: the job is still ours, and the next edit checks the session itself.
      delays: () => 0,
      retryIf: (error) => error instanceof RevisionMoved,
    });
  }

  /** The edit at the revision last seen, retried while it may pass; a refusal is settled (#settle). */
  async #writeAtRevision(changes: JobChanges, give: AbortSignal, edits: { count: number }): Promise<JobDocument> {
    const { api, writes, gate, lost, logger } = this.#context;
    const edit = async (): Promise<JobDocument> => {
      edits.count += 1;
      if (lost.aborted) throw new OwnershipLostError('session-lost', `the ZooKeeper session holding ${this.id} was lost`);
      const job = await writes.edit(this.id, changes, this.#revision);
      this.#revision = api.compatibility === 'nuvla' ? undefined : job.revision;
      return job;
    };
    try {
      return await retrying(reportingUnreachable(gate, edit), {
        delays: () => gate.retryDelayMs(edits.count),
        signal: AbortSignal.any([lost, give]),
        abortOnlyCutsWaits: true,
        // A 500 may be a passing database fault; retrying a conditional write is safe, but not forever.
        retryIf: (error) =>
          isRetryable(error) || (error instanceof ApiError && error.code === 'internal' && edits.count <= INTERNAL_RETRIES),
        onRetry: (error) => {
          logger.debug('job write failed, retrying', { error: toError(error), retry: edits.count });
        },
      });
    } catch (error) {
      if (!isRefusal(error)) throw error;
      const settled = await this.#settle(changes, give);
      if (settled === undefined) throw new RevisionMoved(this.id);
      return settled;
    }
  }

  /**
   * After a refused write: the job as it is now. Returns it when our write did land (a retry of a
   * write whose reply was lost); updates the revision and returns undefined to try again when the
   * job is still ours and only someone's unrelated edit moved the revision; throws when it is not ours.
   */
  async #settle(changes: JobChanges, give: AbortSignal): Promise<JobDocument | undefined> {
    const { api, gate, lost } = this.#context;
    let job: JobDocument;
    try {
      job = (await untilReachable(gate, () => api.get(this.id), AbortSignal.any([lost, give]))).job;
    } catch (error) {
      if (error instanceof ApiError && error.code === 'not-found') {
        throw new OwnershipLostError('gone', `job ${this.id} was deleted while it ran`);
      }
      throw error;
    }
    const ours = job.executor === this.owner && (job.attempt ?? 0) === this.attempt;
    if (ours && changes.state !== undefined && job.state === changes.state) {
      this.#revision = job.revision;
      return job;
    }
    // Our hand-back (a retry, a requeue) clears the owner, so it reads as landed by its state and attempt.
    const handedBack =
      changes.state === 'QUEUED' && changes.executor === null && job.executor === undefined && (job.attempt ?? 0) === this.attempt;
    if (handedBack && job.state === 'QUEUED') {
      this.#revision = job.revision;
      return job;
    }
    if (ours && job.state === 'RUNNING') {
      this.#revision = job.revision;
      return undefined;
    }
    if (job.state === 'CANCELED') throw new OwnershipLostError('canceled', `job ${this.id} was canceled`, job);
    throw new OwnershipLostError(
      'taken-over',
      `job ${this.id} is no longer this executor's: it is ${job.state}` +
        (job.executor === undefined ? '' : ` on ${job.executor}`) +
        (job.attempt === undefined ? '' : `, attempt ${job.attempt}`),
      job,
    );
  }
}
