/**
 * Where job documents live. Two implementations share this contract and one test suite: SQLite (a
 * file, the default: one command runs the API with nothing else installed) and PostgreSQL (several
 * API replicas on one database). Documents go in and come out whole; the store indexes the fields
 * filters and orderings use most, and reaches the others inside the stored JSON.
 */
import type { JobDocument, JobState } from '../job/document.js';
import type { FilterNode, OrderBy } from '../cimi/ast.js';

export interface JobSearch {
  /** Parsed CIMI filter; the store compiles it to parameterised SQL for its dialect. */
  readonly filter?: FilterNode;
  readonly orderBy?: readonly OrderBy[];
  /** 1-based first result, as Nuvla's `first` (default 1). */
  readonly first?: number;
  /** 1-based last result, inclusive, as Nuvla's `last` (default first + 9,999). */
  readonly last?: number;
  /**
   * Count at most this many matches: the count of a filter matching a million jobs reads a million
   * index entries, the page only its rows. Absent: the exact count (Nuvla's contract).
   */
  readonly countLimit?: number;
}

export interface SearchResult {
  /** Matches of the filter, whatever the range; `countLimit` when there are more (see countCapped). */
  readonly count: number;
  /** True when more than `countLimit` jobs match: `count` is then a lower bound. */
  readonly countCapped?: boolean;
  readonly jobs: readonly JobDocument[];
}

export interface BatchSpec {
  readonly index: number;
  /** JSON text. */
  readonly spec: string;
}

export interface CreateResult {
  readonly job: JobDocument;
  /** False when a job with the same idempotency key already existed and was returned instead. */
  readonly created: boolean;
}

/**
 * The store's side of a conditional update: given the current document, returns the new one (or
 * throws an ApiError, which aborts the update). Runs inside the store's transaction.
 */
export type JobMutation = (current: JobDocument) => JobDocument;

export interface JobStore {
  readonly kind: 'sqlite' | 'postgres';
  /** Inserts the job; with an idempotency key already present, returns that job and inserts nothing. */
  create(job: JobDocument): Promise<CreateResult>;
  /** Many creates in one transaction, results in input order. */
  createMany(jobs: readonly JobDocument[]): Promise<CreateResult[]>;
  get(id: string): Promise<JobDocument | undefined>;
  /**
   * Read-modify-write in one transaction. A batch task that enters or leaves a final state moves its
   * batch's counts in the same transaction (batch-field.ts, tallied). `expectedRevision`, when given, must equal the stored
   * revision or ApiError 'precondition-failed' is thrown; a missing job throws 'not-found'.
   * The mutation must return the document with its revision already incremented.
   */
  update(id: string, mutate: JobMutation, expectedRevision?: number): Promise<JobDocument>;
  /**
   * The first `limit` jobs the filter matches in the search's order, each rewritten by `mutate`, in one
   * transaction; returns them as stored afterwards. No count is made: a page through an index costs
   * the page, not the matches (the queue feeder's read of parked jobs, best first, however many wait).
   * Rows another transaction holds are skipped (PostgreSQL), not waited for.
   */
  updateFirst(
    search: { readonly filter: FilterNode; readonly orderBy?: readonly OrderBy[] },
    limit: number,
    mutate: JobMutation,
  ): Promise<JobDocument[]>;
  search(search: JobSearch): Promise<SearchResult>;
  /** Deletes what the filter matches (all when absent); returns how many. */
  deleteMatching(filter: FilterNode | undefined): Promise<number>;
  delete(id: string): Promise<boolean>;
  /**
   * A list batch's task specs (JSON text) from index `from` on, replacing any at those indexes (a
   * retried upload), stored next to the jobs and read back a page at a time by the batch feeder.
   */
  putBatchSpecs(batch: string, from: number, specs: readonly string[]): Promise<void>;
  /** Up to `limit` specs of the batch from index `from`, in index order (a keyset page). */
  batchSpecs(batch: string, from: number, limit: number): Promise<BatchSpec[]>;
  deleteBatchSpecs(batch: string): Promise<number>;
  /** Jobs per state among those the filter matches; every state present, zero when none. */
  countByState(filter?: FilterNode): Promise<Record<JobState, number>>;
  close(): Promise<void>;
}
