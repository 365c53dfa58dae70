/**
 * How the executor's slots write jobs: claims and edits. With this engine's API they are sent
 * together: every write asked for while the previous requests are under way leaves in one
 * `POST /api/job/operations`, so under load one HTTP exchange carries the writes of many jobs (the
 * executor's largest cost per job was its HTTP requests), while a lone write leaves at once. Each
 * write still succeeds or fails on its own, with the error its single call would give. With Nuvla's
 * API (or before the API's flavour is known), each write is its own request.
 */
import type { ClaimResult, JobApiClient, JobChanges, JobOperationRequest, JobOperationResult } from '../api/client/index.js';
import type { JobDocument } from '../api/job/document.js';

export interface JobWrites {
  /** The `claim` operation (of a job of one of `actions` only, when given); only with this engine's API. */
  claim(id: string, executor: string, statusMessage: string, actions?: readonly string[]): Promise<ClaimResult>;
  /** A merge edit, conditional on `ifRevision` when given. */
  edit(id: string, changes: JobChanges, ifRevision: number | undefined): Promise<JobDocument>;
}

interface Pending {
  readonly request: JobOperationRequest;
  readonly resolve: (result: JobOperationResult) => void;
  readonly reject: (error: unknown) => void;
}

export interface BatchedJobWritesOptions {
  /** Operations per request (the server accepts as many as it accepts jobs in a bulk create). */
  readonly maxBatch?: number;
  /** Requests under way at once; writes asked for meanwhile wait for the next one. */
  readonly maxInFlight?: number;
}

export class BatchedJobWrites implements JobWrites {
  readonly #api: JobApiClient;
  readonly #maxBatch: number;
  readonly #maxInFlight: number;
  #queue: Pending[] = [];
  #inFlight = 0;
  #scheduled = false;

  constructor(api: JobApiClient, options: BatchedJobWritesOptions = {}) {
    this.#api = api;
    this.#maxBatch = options.maxBatch ?? 200;
    this.#maxInFlight = options.maxInFlight ?? 2;
  }

  async claim(id: string, executor: string, statusMessage: string, actions?: readonly string[]): Promise<ClaimResult> {
    const only = actions === undefined ? {} : { actions };
    if (this.#api.compatibility !== 'engine') return this.#api.claim(id, executor, statusMessage, only);
    const result = await this.#enqueue({ op: 'claim', id, executor, statusMessage, ...only });
    if (result.ok) return { claimed: true, job: result.job };
    if (result.error.code === 'conflict' && result.job !== undefined) return { claimed: false, job: result.job };
    throw result.error;
  }

  async edit(id: string, changes: JobChanges, ifRevision: number | undefined): Promise<JobDocument> {
    if (this.#api.compatibility !== 'engine') return this.#api.edit(id, changes, { ifRevision });
    const result = await this.#enqueue({ op: 'edit', id, changes, ifRevision });
    if (result.ok) return result.job;
    throw result.error;
  }

  #enqueue(request: JobOperationRequest): Promise<JobOperationResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ request, resolve, reject });
      if (this.#scheduled) return;
      this.#scheduled = true;
      // After the I/O callbacks of this turn of the event loop: writes that answers arriving together
      // cause leave together.
      setImmediate(() => {
        this.#scheduled = false;
        this.#flush();
      });
    });
  }

  #flush(): void {
    while (this.#queue.length > 0 && this.#inFlight < this.#maxInFlight) {
      const batch = this.#queue.splice(0, this.#maxBatch);
      this.#inFlight += 1;
      void this.#api
        .operations(batch.map((pending) => pending.request))
        .then(
          (results) => {
            batch.forEach((pending, index) => {
              const result = results[index];
              if (result === undefined) pending.reject(new Error('job operations answered fewer results than asked'));
              else pending.resolve(result);
            });
          },
          (error: unknown) => {
            for (const pending of batch) pending.reject(error);
          },
        )
        .finally(() => {
          this.#inFlight -= 1;
          this.#flush();
        });
    }
  }
}
