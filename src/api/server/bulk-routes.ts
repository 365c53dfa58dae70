/**
 * `POST /api/job/cancel` and `POST /api/job/retry` with the header `bulk: yes` and a `filter` (query
 * or form, as `DELETE /api/job`): the cancel or retry of every job the filter matches, for operators
 * and the dashboard's "everything matching". Each job goes through the same lifecycle step as its own
 * `POST /api/job/<uuid>/cancel|retry`, PAGE jobs per transaction, and publishes the same events.
 *
 * What a key may do narrows the filter rather than failing half-way: a key bound by job acls touches
 * only the jobs its searches see, a `cancel-own` key only the jobs it created, a cancel only jobs not
 * yet final, a retry only final jobs that are not batches (a batch retries its failed tasks itself).
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { BATCH_ACTION } from '../batch/batch-field.js';
import type { FilterNode } from '../cimi/ast.js';
import { parseFilter } from '../cimi/parser.js';
import { badRequest } from '../errors.js';
import { cancelJob, retryJob } from '../job/lifecycle.js';
import type { JobStore } from '../store/job-store.js';
import { requireAnyPermission, requirePermission, type AccessControl } from './access.js';
import type { JobEventHub } from './event-hub.js';
import { cancelLiveTasks, updateMatching } from './evented-update.js';
import { visibleFilter } from './job-acl.js';

export interface BulkRoutesOptions {
  readonly store: JobStore;
  readonly access: AccessControl;
  readonly now: () => Date;
  readonly events: JobEventHub;
}

const LIVE = parseFilter("state=['QUEUED','RUNNING']");
const FINAL_NOT_BATCH = parseFilter(`state=['SUCCESS','FAILED','CANCELED'] and action!='${BATCH_ACTION}'`);

const and = (left: FilterNode, right: FilterNode): FilterNode => ({ kind: 'and', left, right });

export function registerBulkRoutes(app: FastifyInstance, options: BulkRoutesOptions): void {
  const { store, access, now, events } = options;

  app.post('/api/job/cancel', async (request) => {
    const principal = await requireAnyPermission(access, request, ['edit', 'cancel-own']);
    let filter = and(bulkFilter(request, 'cancel'), LIVE);
    if (!access.allows(principal, 'edit')) filter = and(filter, parseFilter(`created-by='${principal.credentialId.replace(/'/g, "\\'")}'`));
    filter = visibleFilter(access, principal, filter) ?? filter;
    const reason = `canceled by ${principal.credentialId} (bulk)`;
    const canceled = await updateMatching(
      store,
      events,
      filter,
      (job) => ({ ...job, state: 'RUNNING' }),
      (job) => cancelJob(job, now(), reason),
    );
    // A batch's cancel cascades to its live tasks, as its own cancel does.
    let tasks = 0;
    for (const batch of canceled.batches) tasks += await cancelLiveTasks(store, events, batch, `batch ${batch} ${reason}`, now);
    const { count } = canceled;
    return {
      status: 200,
      message: `${String(count)} jobs canceled${tasks === 0 ? '' : ` (and ${String(tasks)} tasks of their batches)`}`,
      count,
      tasks,
    };
  });

  // Back to QUEUED, as the single retry: the queue reconciler enqueues them after its grace period.
  app.post('/api/job/retry', async (request) => {
    const principal = await requirePermission(access, request, 'edit');
    const base = and(bulkFilter(request, 'retry'), FINAL_NOT_BATCH);
    const filter = visibleFilter(access, principal, base) ?? base;
    const reason = `retried by ${principal.credentialId} (bulk)`;
    const retried = await updateMatching(
      store,
      events,
      filter,
      (job) => ({ ...job, state: 'FAILED' }),
      (job) => retryJob(job, now(), reason),
    );
    const { count } = retried;
    return { status: 200, message: `${String(count)} jobs retried`, count };
  });
}

function bulkFilter(request: FastifyRequest, verb: string): FilterNode {
  const header = request.headers.bulk;
  if (typeof header !== 'string' || header.toLowerCase() !== 'yes') {
    throw badRequest(`${verb} by filter needs the header bulk: yes (one job: POST /api/job/<uuid>/${verb})`);
  }
  const text = textParam(request.query, 'filter') ?? textParam(request.body, 'filter');
  if (text === undefined || text.trim() === '') throw badRequest(`a bulk ${verb} needs a filter (every job is not done by accident)`);
  return parseFilter(text);
}

function textParam(source: unknown, key: string): string | undefined {
  if (typeof source !== 'object' || source === null) return undefined;
  const value: unknown = Reflect.get(source, key);
  return typeof value === 'string' ? value : undefined;
}
