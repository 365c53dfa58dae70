/**
 * The client every part of the engine uses to reach the job API (ours, or Nuvla's in compatibility
 * mode): typed calls, shared keep-alive connections, time limits, retries where they are safe,
 * session login and re-login, and ApiError for every failure (see errors.ts for `retryable` and
 * `maybeApplied`).
 */
import { ApiError } from '../errors.js';
import type { JobDocument, JobState } from '../job/document.js';
import type { Logger } from '../../util/logger.js';
import { parseBatchTasks, parseRequeued } from './batch-answers.js';
import { bulkChunks, halves } from './bulk.js';
import { FlavourDetector, PROBE_PATH } from './compat.js';
import { isRecord } from '../../util/is-record.js';
import { errorFromResponse } from './errors.js';
import { HttpTransport } from './http.js';
import {
  engineFieldsOf,
  jobPath,
  nuvlaRefuses,
  refused,
  revisionOf,
  searchForm,
  type JobChanges,
  type NewJob,
  type SearchQuery,
  type SelectQuery,
} from './inputs.js';
import { OPERATIONS_PATH, operationsBody, parseOperationResults, type JobOperationRequest, type JobOperationResult } from './operations.js';
import type { BatchRequeued, CreateOptions, EditOptions, FetchedJob, JobApi, SearchResult } from './job-api.js';
import { resolveOptions, type JobApiClientOptions, type ResolvedOptions, type ServerFlavour } from './options.js';
import { EVENTS_PATH, followEvents, type EventStreamOptions } from './event-stream.js';
import type { JobEvent, PublishedJobEvent } from '../job/events.js';
import { parseJob, parseSelectedJob, type JobField } from './parse-job.js';
import { ReplicaSet } from './replicas.js';
import { FEED_PATH, parseFedJobs, type FedJob } from './fed-jobs.js';
import { Requester, type Call, type CallResult } from './requester.js';
import { parseBulkCreated, parseCollection, parseCreated, parseDeletedCount, parseStateCounts, type Created } from './responses.js';

const BATCH_PATH = '/api/job/batch';

/** What `claim` found: the job is now this executor's, or the job as it is (it was not QUEUED). */
export type ClaimResult = { readonly claimed: true; readonly job: JobDocument } | { readonly claimed: false; readonly job: JobDocument };

export class JobApiClient implements JobApi {
  readonly #http: HttpTransport;
  readonly #replicas: ReplicaSet;
  readonly #detector: FlavourDetector;
  readonly #requester: Requester;
  readonly #logger: Logger;
  readonly #options: ResolvedOptions;

  private constructor(
    http: HttpTransport,
    replicas: ReplicaSet,
    detector: FlavourDetector,
    requester: Requester,
    options: ResolvedOptions,
  ) {
    this.#http = http;
    this.#replicas = replicas;
    this.#detector = detector;
    this.#requester = requester;
    this.#logger = options.logger;
    this.#options = options;
  }

  /** Checks the options (rejects with ClientOptionsError); contacts the server only when a call needs it. */
  static create(options: JobApiClientOptions): Promise<JobApiClient> {
    try {
      const resolved = resolveOptions(options);
      const http = new HttpTransport({
        baseUrl: resolved.baseUrl,
        timeoutMs: resolved.timeoutMs,
        maxSockets: resolved.maxSockets,
        ca: resolved.ca,
      });
      const replicas = new ReplicaSet(resolved.baseUrls);
      const detector = new FlavourDetector(resolved.compatibility, replicas.describe(), resolved.logger);
      const requester = new Requester(http, replicas, detector, resolved.credentials, resolved.retry, resolved.logger);
      return Promise.resolve(new JobApiClient(http, replicas, detector, requester, resolved));
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
  }

  /** 'engine' or 'nuvla' once told or detected; undefined while 'auto' has not found out yet. */
  get compatibility(): ServerFlavour | undefined {
    return this.#detector.flavour;
  }

  /** Finds out now which API this is (one probe request at most, ever). */
  detectCompatibility(): Promise<ServerFlavour> {
    return this.#detector.resolve(
      async () => (await this.#call({ method: 'GET', path: PROBE_PATH, idempotent: true, retryOn500: true })).response,
    );
  }

  /** Logs in with the client's API key now; calls also log in by themselves when they need to. */
  login(): Promise<void> {
    return this.#requester.login();
  }

  async create(job: NewJob, options: CreateOptions = {}): Promise<Created> {
    const body = await this.#createBody(job, options);
    const key = body['idempotency-key'];
    const result = await this.#call({ method: 'POST', path: '/api/job', body: { json: body }, idempotent: key !== undefined });
    return parseCreated(ok(result, 'POST', '/api/job', [200, 201]), 'a job create');
  }

  /**
   * Creates the jobs, results in input order: bulk requests (see bulk.ts for their size) with the
   * engine, one create after another with Nuvla. A failure part-way says in `details.created` which were.
   */
  async createMany(jobs: readonly NewJob[]): Promise<Created[]> {
    if (jobs.length === 0) return [];
    const created: Created[] = [];
    try {
      if ((await this.detectCompatibility()) === 'nuvla') {
        for (const job of jobs) created.push(await this.create(job));
        return created;
      }
      const pending = bulkChunks(jobs);
      for (let chunk = pending.shift(); chunk !== undefined; chunk = pending.shift()) {
        // Idempotent only when every job carries a key: a replay creates no job twice.
        const idempotent = chunk.every((job) => job['idempotency-key'] !== undefined);
        const result = await this.#call({ method: 'POST', path: '/api/job', headers: { bulk: 'yes' }, body: { json: chunk }, idempotent });
        if (result.response.status === 413 && chunk.length > 1) {
          pending.unshift(...halves(chunk));
          continue;
        }
        created.push(...parseBulkCreated(ok(result, 'POST', '/api/job', [200, 201]), chunk.length));
      }
      return created;
    } catch (error) {
      if (!(error instanceof ApiError) || created.length === 0) throw error;
      throw new ApiError(error.code, `createMany stopped after creating ${created.length} of ${jobs.length} jobs: ${error.message}`, {
        cause: error,
        details: { ...error.details, created },
      });
    }
  }

  async get(id: string): Promise<FetchedJob> {
    const path = jobPath(id);
    const result = await this.#call({ method: 'GET', path, idempotent: true, retryOn500: true });
    const job = this.#parseJob(ok(result, 'GET', path, [200]).body);
    return { job, revision: this.compatibility === 'nuvla' ? undefined : job.revision };
  }

  /** Merges `changes` into the job; returns the job as stored afterwards. */
  async edit(id: string, changes: JobChanges, options: EditOptions = {}): Promise<JobDocument> {
    const path = jobPath(id);
    const { ifRevision } = options;
    const engineFields = engineFieldsOf(changes, 'edit');
    if (ifRevision !== undefined || engineFields.length > 0) {
      if ((await this.detectCompatibility()) === 'nuvla') {
        throw nuvlaRefuses(ifRevision !== undefined ? 'ifRevision (If-Match)' : `the field(s) ${engineFields.join(', ')}`);
      }
    }
    const headers = ifRevision === undefined ? undefined : { 'if-match': revisionOf(ifRevision) };
    const result = await this.#call({
      method: 'PUT',
      path,
      body: { json: changes },
      idempotent: ifRevision === undefined,
      ...(headers === undefined ? {} : { headers }),
    });
    if (result.response.status === 409 && result.afterAmbiguousAttempt) {
      // The replay of an edit whose reply was lost: 409 if that edit made the job final. If the job
      // now holds exactly what was asked, the edit did happen.
      const { job } = await this.get(id);
      if (holds(job, changes)) {
        this.#logger.info('job edit answered 409 on a retry, but the first attempt had applied it', { id, state: job.state });
        return job;
      }
    }
    return this.#parseJob(ok(result, 'PUT', path, [200]).body);
  }

  search<K extends JobField>(query: SelectQuery<K>): Promise<SearchResult<Pick<JobDocument, K | 'id'>>>;
  search(query?: SearchQuery): Promise<SearchResult<JobDocument>>;
  async search<K extends JobField>(
    query: SearchQuery | SelectQuery<K> = {},
  ): Promise<SearchResult<JobDocument | Pick<JobDocument, K | 'id'>>> {
    const result = await this.#search(searchForm(query));
    const { count, resources } = parseCollection(result);
    const select = 'select' in query ? query.select : undefined;
    const jobs = resources.map((resource) => (select === undefined ? this.#parseJob(resource) : parseSelectedJob(resource, select)));
    return { count, jobs };
  }

  /** Jobs matching the filter (all jobs without one). */
  async count(filter?: string): Promise<number> {
    return parseCollection(await this.#search({ ...searchForm(filter === undefined ? {} : { filter }), last: '0' })).count;
  }

  /** Jobs per state among those matching the filter; every state is present. */
  async countByState(filter?: string): Promise<Record<JobState, number>> {
    const form = { ...searchForm(filter === undefined ? {} : { filter }), last: '0', aggregation: 'terms:state' };
    return parseStateCounts(await this.#search(form));
  }

  /**
   * The engine's `claim` operation: a QUEUED job becomes RUNNING, owned by `executor`, in one request.
   * A job in any other state, or with `actions` one of another action, is not claimed and comes back
   * as it is. Not available from Nuvla's API.
   */
  async claim(
    id: string,
    executor: string,
    statusMessage?: string,
    options: { readonly actions?: readonly string[] } = {},
  ): Promise<ClaimResult> {
    const path = `${jobPath(id)}/claim`;
    if ((await this.detectCompatibility()) === 'nuvla') throw nuvlaRefuses('the claim operation');
    const body = {
      executor,
      ...(statusMessage === undefined ? {} : { 'status-message': statusMessage }),
      ...(options.actions === undefined ? {} : { actions: options.actions }),
    };
    const result = await this.#call({ method: 'POST', path, body: { json: body }, idempotent: false });
    const { response } = result;
    if (response.status === 409 && isRecord(response.body) && response.body.job !== undefined) {
      const job = this.#parseJob(response.body.job);
      // The replay of a claim whose reply was lost finds the job claimed by this same executor.
      const ours = result.afterAmbiguousAttempt && job.state === 'RUNNING' && job.executor === executor;
      return { claimed: ours, job };
    }
    return { claimed: true, job: this.#parseJob(ok(result, 'POST', path, [200]).body) };
  }

  /**
   * Many claims and edits of single jobs in one request (the engine's `POST /api/job/operations`);
   * each result is what its single call would have answered. Not available from Nuvla's API.
   */
  async operations(requests: readonly JobOperationRequest[]): Promise<JobOperationResult[]> {
    if ((await this.detectCompatibility()) === 'nuvla') throw nuvlaRefuses('job operations');
    const result = await this.#call({ method: 'POST', path: OPERATIONS_PATH, body: { json: operationsBody(requests) }, idempotent: false });
    return parseOperationResults(ok(result, 'POST', OPERATIONS_PATH, [200]).body, requests.length, (value) => this.#parseJob(value));
  }

  /**
   * The engine's feed (`POST /api/job/feed`): unparks the first `limit` jobs parked for queue `queue`,
   * best priority first, then oldest, and returns them for the caller to enqueue at once. Not
   * replayed after a lost answer: jobs unparked then are enqueued by the queue reconciler.
   */
  async unparkFirst(queue: string, limit: number): Promise<FedJob[]> {
    if ((await this.detectCompatibility()) === 'nuvla') throw nuvlaRefuses('the queue feed');
    const result = await this.#call({ method: 'POST', path: FEED_PATH, body: { json: { queue, limit } }, idempotent: false });
    return parseFedJobs(ok(result, 'POST', FEED_PATH, [200]).body);
  }

  /**
   * The engine's batches (docs/batches.md): creates one (`POST /api/job/batch`, the body as it takes
   * it) and returns the parent job's id. Not replayed after a lost answer: a batch has no key.
   */
  async createBatch(body: Readonly<Record<string, unknown>>): Promise<string> {
    if ((await this.detectCompatibility()) === 'nuvla') throw nuvlaRefuses('a batch');
    const result = await this.#call({ method: 'POST', path: BATCH_PATH, body: { json: body }, idempotent: false });
    return parseCreated(ok(result, 'POST', BATCH_PATH, [201]), 'a batch create').id;
  }

  /**
   * A batch operation (`tasks`, `pause`, `resume`, `retry-failed`, `advance`, `settle`): the batch
   * afterwards. Each may be replayed: `tasks` and `advance` carry where they start, and a replay that
   * finds its own work done is a 409 the caller reads again.
   */
  async batchOperation(id: string, operation: string, body: Readonly<Record<string, unknown>> = {}): Promise<JobDocument> {
    const path = `${jobPath(id)}/batch/${operation}`;
    const result = await this.#call({ method: 'POST', path, body: { json: body }, idempotent: false });
    return this.#parseJob(ok(result, 'POST', path, [200]).body);
  }

  /** A retry's next failed tasks back to QUEUED (`requeue`, the feeder's): the batch, and what is left to enqueue. */
  async batchRequeue(id: string, body: Readonly<Record<string, unknown>>): Promise<BatchRequeued> {
    const path = `${jobPath(id)}/batch/requeue`;
    const result = await this.#call({ method: 'POST', path, body: { json: body }, idempotent: false });
    return parseRequeued(ok(result, 'POST', path, [200]).body, path, (body) => this.#parseJob(body));
  }

  /** A list batch's specs from index `from` (the feeder's read): `[{index, spec}]` in index order. */
  async batchTasks(id: string, from: number, limit: number): Promise<{ index: number; spec: unknown }[]> {
    const path = `${jobPath(id)}/batch/tasks?from=${String(from)}&limit=${String(limit)}`;
    const result = await this.#call({ method: 'GET', path, idempotent: true, retryOn500: true });
    return parseBatchTasks(ok(result, 'GET', path, [200]).body, path);
  }

  /** Nuvla's `cancel` operation: QUEUED or RUNNING to CANCELED; ApiError 'conflict' when already final. */
  async cancel(id: string): Promise<void> {
    const path = `${jobPath(id)}/cancel`;
    ok(await this.#call({ method: 'POST', path, idempotent: false }), 'POST', path, [200, 201, 202]);
  }

  /**
   * The engine's `retry` operation: a final job back to QUEUED (its attempt counts on at the next
   * claim). It is not enqueued by this: whoever retries enqueues it (or the queue reconciler does).
   * ApiError 'conflict' when the job is not final. Not available from Nuvla's API.
   */
  async retry(id: string): Promise<JobDocument> {
    const path = `${jobPath(id)}/retry`;
    if ((await this.detectCompatibility()) === 'nuvla') throw nuvlaRefuses('the retry operation');
    const result = await this.#call({ method: 'POST', path, idempotent: false });
    return this.#parseJob(ok(result, 'POST', path, [200]).body);
  }

  /** Lifecycle events the API cannot see (`enqueued`), for its event stream; nothing to do with Nuvla's API, which has none. */
  async publishEvents(events: readonly PublishedJobEvent[]): Promise<void> {
    if (events.length === 0 || (await this.detectCompatibility()) === 'nuvla') return;
    ok(await this.#call({ method: 'POST', path: EVENTS_PATH, body: { json: { events } }, idempotent: false }), 'POST', EVENTS_PATH, [200]);
  }

  /**
   * The live lifecycle events (from the moment the stream opens), until `signal` aborts; reconnects
   * without losing events after a short break. Subscribe before reading a job's state to miss nothing.
   */
  events(options: EventStreamOptions = {}): AsyncGenerator<JobEvent> {
    return followEvents(this.#http, this.#replicas, this.#options.credentials, this.#options.retry, this.#logger, options);
  }

  async delete(id: string): Promise<void> {
    const path = jobPath(id);
    const result = await this.#call({ method: 'DELETE', path, idempotent: true });
    // After an attempt whose reply was lost, a 404 most likely says that attempt deleted it.
    if (result.response.status === 404 && result.afterAmbiguousAttempt) return;
    ok(result, 'DELETE', path, [200, 204]);
  }

  /** Deletes every job the (mandatory) filter matches; returns how many. */
  async deleteMatching(filter: string): Promise<number> {
    if (typeof filter !== 'string' || filter.trim() === '') throw refused('deleteMatching needs a non-empty filter');
    const result = await this.#call({
      method: 'DELETE',
      path: '/api/job',
      headers: { bulk: 'yes' },
      body: { form: { filter } },
      idempotent: true,
    });
    return parseDeletedCount(ok(result, 'DELETE', '/api/job', [200]));
  }

  /** Ends pending calls (they fail with 'unavailable', not retryable) and closes kept-alive connections. */
  close(): Promise<void> {
    this.#http.close();
    return Promise.resolve();
  }

  #call(call: Call): Promise<CallResult> {
    if (this.#http.closed)
      return Promise.reject(
        new ApiError('unavailable', `${call.method} ${call.path}: the job API client is closed`, { details: { retryable: false } }),
      );
    return this.#requester.call(call);
  }

  async #search(form: Record<string, string>): Promise<CallResult['response']> {
    // PUT with a form, as Nuvla's clients search: filters can be longer than a URL may be.
    const result = await this.#call({ method: 'PUT', path: '/api/job', body: { form }, idempotent: true, retryOn500: true });
    return ok(result, 'PUT', '/api/job', [200]);
  }

  #parseJob(body: unknown): JobDocument {
    return parseJob(body, { revision: this.compatibility === 'nuvla' ? 'optional' : 'required' });
  }

  async #createBody(job: NewJob, options: CreateOptions): Promise<NewJob> {
    const given = job['idempotency-key'];
    const key = options.idempotencyKey;
    if (key !== undefined && (typeof key !== 'string' || key === '')) throw refused('"idempotencyKey" must be a non-empty string');
    if (key !== undefined && given !== undefined && given !== key) {
      throw refused(`the job's "idempotency-key" (${given}) and the option idempotencyKey (${key}) differ`);
    }
    const body: NewJob = key === undefined ? job : { ...job, 'idempotency-key': key };
    const engineFields = engineFieldsOf(body, 'create');
    if (engineFields.length > 0 && (await this.detectCompatibility()) === 'nuvla') {
      throw nuvlaRefuses(engineFields.includes('idempotency-key') ? 'an idempotency key' : `the field(s) ${engineFields.join(', ')}`);
    }
    return body;
  }
}

/** The answer when its status is one of `expected`; else the ApiError it stands for. */
function ok(result: CallResult, method: string, path: string, expected: readonly number[]): CallResult['response'] {
  const { response, attempts } = result;
  if (expected.includes(response.status)) return response;
  throw errorFromResponse(response.status, response.body, { method, path, attempts });
}

/** Whether the job holds every value the edit asked for (a null executor: none). */
function holds(job: JobDocument, changes: JobChanges): boolean {
  return Object.entries(changes).every(([field, value]) => {
    const wanted: unknown = value;
    const actual: unknown = Reflect.get(job, field);
    if (wanted === undefined) return true;
    if (field === 'executor' && wanted === null) return actual === undefined;
    return JSON.stringify(actual) === JSON.stringify(wanted);
  });
}
