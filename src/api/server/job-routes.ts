/**
 * The job collection and its resources (docs/contracts.md §4), with the engine's additions: If-Match on
 * edits (412 when the revision moved), idempotency keys and bulk create, counts per state.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError, badRequest, conflict, notFound, preconditionFailed } from '../errors.js';
import { conflictAt, idempotencyConflict } from './idempotency.js';
import { applyEdit, cancelJob, claimJob, newJob, retryJob } from '../job/lifecycle.js';
import { createdEvents } from '../job/transition-events.js';
import { BATCH_ACTION } from '../batch/batch-field.js';
import { parseJobClaim, parseJobCreate, parseJobEdit } from '../job/parse.js';
import type { JobDocument } from '../job/document.js';
import type { JobStore } from '../store/job-store.js';
import { parseFilter, parseOptionalFilter } from '../cimi/parser.js';
import { requireAnyPermission, requirePermission, type AccessControl } from './access.js';
import { checkCancel, checkCreate, checkEdit, deletesFinalOnly } from './job-access.js';
import { aclBound, audienceOf, mayView, visibleFilter } from './job-acl.js';
import { FINAL_STATES, waitingFor } from '../job/document.js';
import { parseCollectionQuery } from './search-params.js';
import { forAudience, type JobEventHub } from './event-hub.js';
import { cancelLiveTasks, updateWithEvents } from './evented-update.js';
import { collectionBody, createdBody, locationOf, operationBody, selectFields, stateAggregation, withOperations } from './nuvla-shapes.js';

export interface JobRoutesOptions {
  readonly store: JobStore;
  readonly access: AccessControl;
  readonly now: () => Date;
  /** Most jobs one bulk create may carry. */
  readonly maxBulkCreate: number;
  readonly events: JobEventHub;
  /**
   * Enqueues jobs just created (`job-api serve --zk-hosts`); true once their entries exist. Absent:
   * nothing is enqueued here, the producer or the queue reconciler does it.
   */
  readonly enqueueCreated?: (jobs: readonly JobDocument[]) => Promise<boolean>;
  /**
   * Marks `parked` the jobs about to be created that find no room in their queue's window
   * (`--zk-hosts`): the queue feeder enqueues them later. Absent: nothing is parked here.
   */
  readonly parkBeyondRoom?: (jobs: readonly JobDocument[]) => Promise<JobDocument[]>;
}

const FINAL_FILTER = [...FINAL_STATES].map((state) => `state='${state}'`).join(' or ');

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function registerJobRoutes(app: FastifyInstance, options: JobRoutesOptions): void {
  const { store, access, now, events } = options;
  // Persisted first, then enqueued (docs/contracts.md): an entry never names a job that does not exist.
  // A job waiting for its `not-before` gets its entry from the scheduler when due, a parked one from
  // the queue feeder when there is room, not here.
  const enqueue = async (created: readonly JobDocument[]): Promise<boolean> => {
    const jobs = created.filter((job) => waitingFor(job) === null);
    return options.enqueueCreated === undefined || jobs.length === 0 ? false : options.enqueueCreated(jobs);
  };
  const park = async (jobs: JobDocument[]): Promise<JobDocument[]> =>
    options.parkBeyondRoom === undefined ? jobs : options.parkBeyondRoom(jobs);

  app.post('/api/job', async (request, reply) => {
    const principal = await requirePermission(access, request, 'create');
    const createdBy = { 'created-by': principal.credentialId };
    if (isBulk(request)) {
      if (!Array.isArray(request.body)) throw badRequest('a bulk create (header bulk: yes) needs a JSON list of jobs');
      if (request.body.length > options.maxBulkCreate) {
        throw badRequest(`a bulk create carries at most ${String(options.maxBulkCreate)} jobs, got ${String(request.body.length)}`);
      }
      // One instant for the whole request: the jobs are created together, and formatting it once per
      // request instead of per job is measurable at bulk sizes.
      const timestamp = now().toISOString();
      const jobs = request.body.map((body: unknown, index) => {
        try {
          const create = parseJobCreate(body, new Date(timestamp));
          checkCreate(principal, create.action);
          return { ...newJob(create, timestamp), ...createdBy };
        } catch (error) {
          if (error instanceof ApiError && error.code === 'forbidden') {
            throw new ApiError('forbidden', `job ${String(index)}: ${error.message}`, { details: { ...error.details, index } });
          }
          throw error instanceof Error ? badRequest(`job ${String(index)}: ${error.message}`, { index }) : error;
        }
      });
      const results = await store.createMany(await park(jobs));
      const fresh = results.filter((result) => result.created).map((result) => result.job);
      for (const job of fresh) events.publish(forAudience(createdEvents(job), audienceOf(job)));
      // One enqueue for the whole request: its entries go in one transaction per few hundred jobs.
      const enqueued = await enqueue(fresh);
      // After the inserts: the jobs created here stay (a retry finds them by their keys), and the
      // request as a whole reports the squatted key instead of handing back a job of another action.
      results.forEach((result, index) => {
        const asked = jobs[index];
        const conflict = asked === undefined ? undefined : idempotencyConflict(asked, result);
        if (conflict !== undefined) throw conflictAt(conflict, index);
      });
      return reply.code(201).send({
        status: 201,
        resources: results.map((result) =>
          createdBody(result.job, result.created, enqueued && result.created && waitingFor(result.job) === null),
        ),
      });
    }
    const create = parseJobCreate(request.body, now());
    checkCreate(principal, create.action);
    const fresh = { ...newJob(create, now()), ...createdBy };
    const asked = (await park([fresh]))[0] ?? fresh;
    const result = await store.create(asked);
    if (result.created) events.publish(forAudience(createdEvents(result.job), audienceOf(result.job)));
    const conflict = idempotencyConflict(asked, result);
    if (conflict !== undefined) throw conflict;
    const enqueued = result.created && (await enqueue([result.job]));
    return reply
      .code(result.created ? 201 : 200)
      .header('location', locationOf(result.job))
      .header('etag', etagOf(result.job))
      .send(createdBody(result.job, result.created, enqueued));
  });

  const search = async (request: FastifyRequest, params: unknown): Promise<Record<string, unknown>> => {
    const principal = await requirePermission(access, request, 'read');
    const parsed = parseCollectionQuery(params);
    // The acl in the query itself: counts, pages and aggregations see only what the key may see.
    const filter = visibleFilter(access, principal, parsed.search.filter);
    const query = { ...parsed, search: { ...parsed.search, ...(filter === undefined ? {} : { filter }) } };
    const result = query.countOnly
      ? { ...(await store.search({ ...query.search, first: 1, last: 1 })), jobs: [] }
      : await store.search(query.search);
    const body = collectionBody(
      result.count,
      result.jobs.map((job) => selectFields(job, query.select)),
    );
    // With `count-limit`: more match than were counted, and `count` is the limit (a lower bound).
    if (result.countCapped === true) body['count-capped'] = true;
    if (query.countByState) body.aggregations = stateAggregation(await store.countByState(query.search.filter));
    return body;
  };
  app.get('/api/job', (request) => search(request, request.query));
  app.put('/api/job', (request) => search(request, request.body ?? {}));

  app.delete('/api/job', async (request) => {
    const principal = await requireAnyPermission(access, request, ['delete-final', 'delete']);
    if (!isBulk(request)) throw badRequest('deleting jobs by filter needs the header bulk: yes');
    const filterText = textParam(request.query, 'filter') ?? textParam(request.body, 'filter');
    // A key that may delete only final jobs gets its filter narrowed to them, rather than refused:
    // cleanup_jobs' filters already name final states, and a broader one deletes what it may.
    const filter = parseOptionalFilter(
      filterText === undefined || !deletesFinalOnly(access, principal) ? filterText : `(${filterText}) and (${FINAL_FILTER})`,
    );
    if (filter === undefined) throw badRequest('a bulk delete needs a filter (deleting every job is not done by accident)');
    // A key bound by job acls deletes only what its searches show it.
    const deleted = await store.deleteMatching(visibleFilter(access, principal, filter) ?? filter);
    return { status: 200, message: `${String(deleted)} jobs deleted`, count: deleted };
  });

  app.get('/api/job/:uuid', async (request, reply) => {
    const principal = await requirePermission(access, request, 'read');
    const job = await load(store, request);
    // Not 403: a job the key may not see is as absent to it as one that does not exist.
    if (aclBound(access, principal) && !mayView(principal, job)) throw notFound(`${job.id} not found`);
    return reply.header('etag', etagOf(job)).send(withOperations(job));
  });

  app.put('/api/job/:uuid', async (request, reply) => {
    const principal = await requireAnyPermission(access, request, ['edit', 'claim']);
    const id = jobIdOf(request);
    const expected = ifMatch(request);
    const edit = parseJobEdit(request.body, now());
    const job = await updateWithEvents(
      store,
      events,
      id,
      (current) => {
        checkEdit(access, principal, current, edit);
        return applyEdit(current, edit, now());
      },
      expected,
    );
    return reply.header('etag', etagOf(job)).send(withOperations(job));
  });

  app.delete('/api/job/:uuid', async (request) => {
    const principal = await requireAnyPermission(access, request, ['delete-final', 'delete']);
    const id = jobIdOf(request);
    if (deletesFinalOnly(access, principal)) {
      // Read, then delete only if final: a job cannot leave a final state, so nothing moves between.
      const current = await store.get(id);
      if (current === undefined) throw notFound(`${id} not found`);
      if (!FINAL_STATES.has(current.state)) {
        throw new ApiError('forbidden', `role ${principal.role} may delete only final jobs; ${id} is ${current.state}`, {
          details: { role: principal.role, state: current.state },
        });
      }
    }
    const batch = await store.get(id);
    if (batch?.action === BATCH_ACTION) {
      // A live batch's tasks are running: it is cancelled first, so nothing is deleted under an executor.
      if (!FINAL_STATES.has(batch.state))
        throw conflict(`batch ${id} is ${batch.state}: cancel it before deleting it`, { state: batch.state });
      const tasks = await store.deleteMatching(parseFilter(`parent-job='${id}'`));
      // Its stored specs go with it in the store's delete.
      if (!(await store.delete(id))) throw notFound(`${id} not found`);
      return { status: 200, message: `${id} deleted with its ${String(tasks)} tasks`, 'resource-id': id, tasks };
    }
    if (!(await store.delete(id))) throw notFound(`${id} not found`);
    return { status: 200, message: `${id} deleted`, 'resource-id': id };
  });

  // The engine's addition for executors: read, check and take a QUEUED job in one request and one
  // transaction, instead of a read and a conditional edit (one round trip per job fewer).
  app.post('/api/job/:uuid/claim', async (request, reply) => {
    await requireAnyPermission(access, request, ['claim', 'edit']);
    const id = jobIdOf(request);
    const claim = parseJobClaim(request.body);
    const job = await updateWithEvents(store, events, id, (current) => claimJob(current, claim, now()));
    return reply.header('etag', etagOf(job)).send(withOperations(job));
  });

  app.post('/api/job/:uuid/cancel', async (request, reply) => {
    const principal = await requireAnyPermission(access, request, ['edit', 'cancel-own']);
    const id = jobIdOf(request);
    const job = await updateWithEvents(
      store,
      events,
      id,
      (current) => {
        checkCancel(access, principal, current);
        return cancelJob(current, now(), `canceled by ${principal.credentialId}`);
      },
      ifMatch(request),
    );
    if (job.action === BATCH_ACTION)
      await cancelLiveTasks(store, events, job.id, `batch ${job.id} canceled by ${principal.credentialId}`, now);
    return reply.header('etag', etagOf(job)).send(operationBody(200, job, 'canceled'));
  });

  // An operator's retry of a final job: back to QUEUED. Enqueueing it is the caller's part (the API
  // does not reach ZooKeeper); the queue reconciler also enqueues it after its grace period.
  app.post('/api/job/:uuid/retry', async (request, reply) => {
    const principal = await requirePermission(access, request, 'edit');
    const id = jobIdOf(request);
    const job = await updateWithEvents(
      store,
      events,
      id,
      (current) => retryJob(current, now(), `retried by ${principal.credentialId}`),
      ifMatch(request),
    );
    return reply.header('etag', etagOf(job)).send(withOperations(job));
  });
}

function isBulk(request: FastifyRequest): boolean {
  const header = request.headers.bulk;
  return typeof header === 'string' && header.toLowerCase() === 'yes';
}

function jobIdOf(request: FastifyRequest): string {
  const uuid: unknown = typeof request.params === 'object' && request.params !== null ? Reflect.get(request.params, 'uuid') : undefined;
  if (typeof uuid !== 'string' || !UUID.test(uuid)) {
    throw notFound(`job/${typeof uuid === 'string' ? uuid : ''} not found: job ids are job/<uuid>`);
  }
  return `job/${uuid}`;
}

async function load(store: JobStore, request: FastifyRequest): Promise<JobDocument> {
  const id = jobIdOf(request);
  const job = await store.get(id);
  if (job === undefined) throw notFound(`${id} not found`);
  return job;
}

export function etagOf(job: JobDocument): string {
  return `"${String(job.revision)}"`;
}

/** `If-Match: "7"` (or W/"7", or 7) -> 7; `*` or absent -> no condition. */
function ifMatch(request: FastifyRequest): number | undefined {
  const header = request.headers['if-match'];
  if (header === undefined || header === '*') return undefined;
  const match = /^(?:W\/)?"?(\d+)"?$/.exec(header.trim());
  if (match?.[1] === undefined) {
    throw preconditionFailed(`If-Match must carry a job revision as sent in ETag, e.g. "3"; got ${header}`);
  }
  return Number(match[1]);
}

function textParam(source: unknown, key: string): string | undefined {
  if (typeof source !== 'object' || source === null) return undefined;
  const value: unknown = Reflect.get(source, key);
  return typeof value === 'string' ? value : undefined;
}
