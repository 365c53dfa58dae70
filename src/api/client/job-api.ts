/**
 * What code that works with jobs needs of the job API, as an interface: JobApiClient implements it,
 * and so does the lazily loaded client an action receives (which loads the HTTP client only when the
 * action first calls it).
 */
import type { JobDocument, JobState } from '../job/document.js';
import type { PublishedJobEvent } from '../job/events.js';
import type { JobChanges, NewJob, SearchQuery, SelectQuery } from './inputs.js';
import type { JobField } from './parse-job.js';
import type { Created } from './responses.js';
import type { JobOperationRequest, JobOperationResult } from './operations.js';

/** What a batch's `requeue` did (docs/batches.md). */
export interface BatchRequeued {
  readonly batch: JobDocument;
  /** Tasks put back: how many, and those left to the caller to enqueue. */
  readonly count: number;
  readonly toEnqueue: readonly { readonly id: string; readonly priority: number }[];
}

export interface CreateOptions {
  /** The same key always yields the same job: a create with it can be retried safely. */
  readonly idempotencyKey?: string;
}

export interface EditOptions {
  /** Edit only if the job is still at this revision (If-Match), else ApiError 'precondition-failed'. */
  readonly ifRevision?: number | undefined;
}

export interface FetchedJob {
  readonly job: JobDocument;
  /** For `ifRevision`; undefined from a server that keeps no revisions (Nuvla). */
  readonly revision: number | undefined;
}

export interface SearchResult<T> {
  /** Jobs matching the filter, whatever the page. */
  readonly count: number;
  readonly jobs: T[];
}

export interface JobApi {
  create(job: NewJob, options?: CreateOptions): Promise<Created>;
  createMany(jobs: readonly NewJob[]): Promise<Created[]>;
  get(id: string): Promise<FetchedJob>;
  /** Merges `changes` into the job; returns the job as stored afterwards. */
  edit(id: string, changes: JobChanges, options?: EditOptions): Promise<JobDocument>;
  search<K extends JobField>(query: SelectQuery<K>): Promise<SearchResult<Pick<JobDocument, K | 'id'>>>;
  search(query?: SearchQuery): Promise<SearchResult<JobDocument>>;
  count(filter?: string): Promise<number>;
  countByState(filter?: string): Promise<Record<JobState, number>>;
  /** Many claims and edits of single jobs in one request (the engine's `POST /api/job/operations`). */
  operations(requests: readonly JobOperationRequest[]): Promise<JobOperationResult[]>;
  cancel(id: string): Promise<void>;
  delete(id: string): Promise<void>;
  deleteMatching(filter: string): Promise<number>;
  /**
   * Lifecycle events the API cannot see (`POST /api/job/events`): `enqueued`, and an action's
   * `stage-in`/`stage-out`. Nothing happens against Nuvla's API, which has no event stream.
   */
  publishEvents(events: readonly PublishedJobEvent[]): Promise<void>;
  /** The engine's batches (docs/batches.md): creates one, returns its id. */
  createBatch(body: Readonly<Record<string, unknown>>): Promise<string>;
  /** A batch operation (`tasks`, `pause`, `resume`, `retry-failed`, `advance`, `settle`): the batch afterwards. */
  batchOperation(id: string, operation: string, body?: Readonly<Record<string, unknown>>): Promise<JobDocument>;
  /**
   * The feeder's part of a retry of a batch's failed tasks: at most `limit` of them back to QUEUED.
   * The batch afterwards, and the tasks the API did not enqueue (it has no ZooKeeper): the caller's to enqueue.
   */
  batchRequeue(id: string, body: Readonly<Record<string, unknown>>): Promise<BatchRequeued>;
  /** A list batch's specs from index `from`, in index order. */
  batchTasks(id: string, from: number, limit: number): Promise<{ index: number; spec: unknown }[]>;
}
