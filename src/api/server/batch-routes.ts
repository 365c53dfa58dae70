/**
 * Batches (docs/batches.md): `POST /api/job/batch` creates one (a parent job of action `batch`,
 * RUNNING at once, never enqueued), and `POST /api/job/<uuid>/batch/<operation>` controls it:
 * `tasks` uploads more specs of a list batch, `pause`, `resume`, `retry-failed` for its creator or
 * an operator; `advance`, `requeue` (a retry's failed tasks, within
 * max-in-flight), `wait` and `settle` for the batch feeder, with `GET .../batch/tasks` its read of a
 * list batch's specs. Cancel and delete are the job's own operations, cascading (batch-cascade.ts).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError, badRequest, conflict, notFound } from '../errors.js';
import {
  BATCH_ACTION,
  LOCK_KEY_PREFIX,
  batchOf,
  parseBatchCreate,
  pauseBatch,
  revived,
  settled,
  taskSpecProblem,
  uploadedTo,
} from '../batch/batch-field.js';
import { advanced, heldBack, parseAdvance, parseRequeue, requeued } from '../batch/batch-feeding.js';
import { newJob, retryJob } from '../job/lifecycle.js';
import { createdEvents, changeEvents } from '../job/transition-events.js';
import { waitingFor, type JobDocument } from '../job/document.js';
import type { PublishedJobEvent } from '../job/events.js';
import { parseFilter } from '../cimi/parser.js';
import type { JobStore } from '../store/job-store.js';
import { isRecord } from '../../util/is-record.js';
import { requireAnyPermission, requirePermission, type AccessControl } from './access.js';
import { checkCancel, checkCreate } from './job-access.js';
import { audienceOf } from './job-acl.js';
import { forAudience, type JobEventHub } from './event-hub.js';
import { updateWithEvents } from './evented-update.js';
import { createdBody, locationOf, withOperations } from './nuvla-shapes.js';

export interface BatchRoutesOptions {
  readonly store: JobStore;
  readonly access: AccessControl;
  readonly now: () => Date;
  readonly events: JobEventHub;
  /** Most specs per upload (and per feeder read). */
  readonly maxTasks: number;
  /** Enqueues retried tasks (`--zk-hosts`); absent: the queue reconciler does. */
  readonly enqueue?: (jobs: readonly JobDocument[]) => Promise<boolean>;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function registerBatchRoutes(app: FastifyInstance, options: BatchRoutesOptions): void {
  const { store, access, now, events } = options;
  const publish = (job: JobDocument, list: readonly PublishedJobEvent[]): void => {
    if (list.length > 0) events.publish(forAudience(list, audienceOf(job)));
  };

  app.post('/api/job/batch', async (request, reply) => {
    const principal = await requirePermission(access, request, 'create');
    const create = parseBatchCreate(request.body, options.maxTasks);
    checkCreate(principal, BATCH_ACTION);
    checkCreate(principal, create.field.action);
    const specs = checkedSpecs(create.tasks ?? [], 0);
    const at = now();
    const lock = create.field.lock;
    const base = newJob(
      {
        action: BATCH_ACTION,
        ...(create.acl === undefined ? {} : { acl: create.acl }),
        ...(create.tags === undefined ? {} : { tags: create.tags }),
        ...(lock === undefined ? {} : { 'idempotency-key': `${LOCK_KEY_PREFIX}${lock}` }),
      },
      at,
    );
    const parent: JobDocument = {
      ...base,
      state: 'RUNNING',
      started: base.created,
      batch: create.field,
      'status-message': create.field.phase === 'canary' ? `canary: ${String(create.field.canary ?? 0)} tasks first` : 'feeding',
      'time-of-status-change': base.created,
      'created-by': principal.credentialId,
    };
    const result = await store.create(parent);
    if (!result.created) {
      throw conflict(`lock ${JSON.stringify(lock)} is held by the live batch ${result.job.id}`, { lock, holder: result.job.id });
    }
    if (specs.length > 0) await store.putBatchSpecs(parent.id, 0, specs);
    publish(parent, createdEvents(parent));
    return reply
      .code(201)
      .header('location', locationOf(parent))
      .send(createdBody(parent, true, false));
  });

  app.post('/api/job/:uuid/batch/tasks', async (request) => {
    const principal = await requireAnyPermission(access, request, ['edit', 'cancel-own']);
    const id = jobIdOf(request);
    const body = isRecord(request.body) ? request.body : {};
    const { from, tasks, seal } = body;
    if (typeof from !== 'number' || !Number.isSafeInteger(from) || from < 0)
      throw badRequest('"from" must be the index of the first task sent');
    if (!Array.isArray(tasks) || tasks.length > options.maxTasks) {
      throw badRequest(`"tasks" must be a list of at most ${String(options.maxTasks)} task specs`);
    }
    if (seal !== undefined && typeof seal !== 'boolean') throw badRequest('"seal" must be true or false');
    const specs = checkedSpecs(tasks, from);
    const current = await loadBatch(store, id);
    checkCancel(access, principal, current);
    // Specs first, then the count: a retried upload replaces the same indexes, and only a counted spec is fed.
    await store.putBatchSpecs(id, from, specs);
    const job = await store.update(id, (latest) => uploadedTo(latest, from, specs.length, seal === true, now()));
    return withOperations(job);
  });

  app.get('/api/job/:uuid/batch/tasks', async (request) => {
    await requireAnyPermission(access, request, ['claim', 'edit']);
    const id = jobIdOf(request);
    const query = isRecord(request.query) ? request.query : {};
    const from = Number(query.from ?? 0);
    const limit = Number(query.limit ?? 100);
    if (!Number.isSafeInteger(from) || from < 0) throw badRequest('"from" must be a task index');
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > options.maxTasks) {
      throw badRequest(`"limit" must be from 1 to ${String(options.maxTasks)}`);
    }
    const found = await store.batchSpecs(id, from, limit);
    return { status: 200, tasks: found.map(({ index, spec }) => ({ index, spec: JSON.parse(spec) as unknown })) };
  });

  app.post('/api/job/:uuid/batch/:operation', async (request) => {
    const id = jobIdOf(request);
    const operation = paramOf(request, 'operation');
    const at = now();
    switch (operation) {
      case 'advance': {
        await requireAnyPermission(access, request, ['claim', 'edit']);
        const advance = parseAdvance(request.body);
        return withOperations(await updateWithEvents(store, events, id, (current) => advanced(current, advance, at)));
      }
      case 'requeue': {
        await requireAnyPermission(access, request, ['claim', 'edit']);
        const requeue = parseRequeue(request.body);
        const current = await loadBatch(store, id);
        const since = current.batch?.['retrying-since'];
        const done =
          since === undefined
            ? { count: 0, ready: [], enqueued: true }
            : await requeueFailed(id, since, requeue.limit, 'retry of the failed tasks');
        const job = await updateWithEvents(store, events, id, (latest) => requeued(latest, requeue, done.count, at));
        return {
          ...withOperations(job),
          requeued: done.count,
          ready: done.ready.map((task) => ({ id: task.id, priority: task.priority })),
          enqueued: done.enqueued,
        };
      }
      case 'wait': {
        await requireAnyPermission(access, request, ['claim', 'edit']);
        const body = isRecord(request.body) ? request.body : {};
        const { reason } = body;
        if (typeof reason !== 'string' || reason === '' || reason.length > 1000)
          throw badRequest('"reason" must say, in at most 1000 characters, why the batch is not fed');
        const current = await loadBatch(store, id);
        if (heldBack(current, reason, at) === undefined) return withOperations(current);
        return withOperations(await store.update(id, (latest) => heldBack(latest, reason, at) ?? latest));
      }
      case 'settle': {
        await requireAnyPermission(access, request, ['claim', 'edit']);
        const current = await loadBatch(store, id);
        if (settled(current, at) === undefined) return withOperations(current);
        const job = await updateWithEvents(store, events, id, (latest) => {
          const next = settled(latest, at);
          if (next === undefined) throw conflict(`batch ${id} changed meanwhile: nothing to settle`);
          return next;
        });
        return withOperations(job);
      }
      case 'pause':
      case 'resume': {
        const principal = await requireAnyPermission(access, request, ['edit', 'cancel-own']);
        const job = await store.update(id, (current) => {
          checkCancel(access, principal, current);
          return pauseBatch(current, operation === 'pause', at);
        });
        publish(job, [eventOf(operation === 'pause' ? 'paused' : 'resumed', job)]);
        return withOperations(job);
      }
      case 'retry-failed': {
        const principal = await requireAnyPermission(access, request, ['edit', 'cancel-own']);
        const job = await updateWithEvents(store, events, id, (current) => {
          checkCancel(access, principal, current);
          return revived(current, at);
        });
        // The feeder puts them back (requeue) within max-in-flight: here only the batch's word is given.
        return { ...withOperations(job), failed: job.batch?.failed ?? 0 };
      }
      default:
        throw notFound(
          `batch operation ${JSON.stringify(operation)} not found: tasks, pause, resume, retry-failed, advance, requeue, wait, settle`,
        );
    }
  });

  /**
   * At most `limit` of the tasks that were FAILED when the retry was asked back to QUEUED, in one
   * transaction, and enqueued; without ZooKeeper here, the answer leaves them to the feeder.
   */
  const requeueFailed = async (
    id: string,
    since: string,
    limit: number,
    reason: string,
  ): Promise<{ count: number; ready: readonly JobDocument[]; enqueued: boolean }> => {
    const filter = parseFilter(`parent-job='${id}' and state='FAILED' and updated<='${since}'`);
    const page = await store.updateFirst({ filter, orderBy: [{ attribute: ['id'], direction: 'asc' }] }, limit, (task) =>
      retryJob(task, now(), reason),
    );
    for (const task of page) publish(task, changeEvents({ ...task, state: 'FAILED' }, task));
    const ready = page.filter((task) => waitingFor(task) === null);
    const enqueued = options.enqueue !== undefined && ready.length > 0 ? await options.enqueue(ready) : ready.length === 0;
    return { count: page.length, ready, enqueued };
  };
}

function eventOf(type: 'paused' | 'resumed', job: JobDocument): PublishedJobEvent {
  return { type, at: job.updated, job: job.id, action: job.action, state: job.state, priority: job.priority };
}

/** JSON text of each spec, or a 400 naming the first bad one by its index in the batch. */
function checkedSpecs(tasks: readonly unknown[], from: number): string[] {
  return tasks.map((spec, offset) => {
    const problem = taskSpecProblem(spec);
    if (problem !== undefined) throw badRequest(`task ${String(from + offset)}: ${problem}`, { index: from + offset });
    return JSON.stringify(spec);
  });
}

async function loadBatch(store: JobStore, id: string): Promise<JobDocument> {
  const job = await store.get(id);
  if (job === undefined) throw notFound(`${id} not found`);
  if (batchOf(job) === undefined) throw new ApiError('conflict', `${id} is not a batch (its action is ${job.action})`);
  return job;
}

function paramOf(request: FastifyRequest, name: string): string {
  const value: unknown = isRecord(request.params) ? request.params[name] : undefined;
  return typeof value === 'string' ? value : '';
}

function jobIdOf(request: FastifyRequest): string {
  const uuid = paramOf(request, 'uuid');
  if (!UUID.test(uuid)) throw notFound(`job/${uuid} not found: job ids are job/<uuid>`);
  return `job/${uuid}`;
}
