/**
 * `POST /api/job/operations`: many claims and edits of single jobs in one request, the engine's
 * addition for executors. Each operation is exactly the call it stands for (`POST /api/job/<uuid>/claim`,
 * `PUT /api/job/<uuid>` with If-Match): it succeeds or fails on its own, and its result carries the
 * status and body that call would have answered. Under load an executor sends the writes of all its
 * slots together, so one HTTP exchange carries many jobs' writes instead of one each.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError, badRequest } from '../errors.js';
import { applyEdit, claimJob } from '../job/lifecycle.js';
import { parseJobClaim, parseJobEdit, type JobClaim, type JobEdit } from '../job/parse.js';
import type { JobDocument } from '../job/document.js';
import type { JobStore } from '../store/job-store.js';
import { requireAnyPermission, type AccessControl, type Principal } from './access.js';
import { checkEdit } from './job-access.js';
import type { JobEventHub } from './event-hub.js';
import { updateWithEvents } from './evented-update.js';
import { isRecord } from '../../util/is-record.js';

export type JobOperation =
  | { readonly op: 'claim'; readonly id: string; readonly claim: JobClaim }
  | { readonly op: 'edit'; readonly id: string; readonly ifRevision: number | undefined; readonly edit: JobEdit };

export interface JobOperationsOptions {
  readonly store: JobStore;
  readonly access: AccessControl;
  readonly now: () => Date;
  /** Most operations one request may carry. */
  readonly maxOperations: number;
  readonly events: JobEventHub;
}

const JOB_ID = /^job\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function parseOperation(value: unknown, index: number): JobOperation {
  const where = `operation ${String(index)}`;
  if (!isRecord(value)) throw badRequest(`${where} must be an object like {"op": "claim", "id": "job/<uuid>", ...}`, { index });
  const { op, id } = value;
  if (typeof id !== 'string' || !JOB_ID.test(id)) throw badRequest(`${where}: "id" must be a job id, job/<uuid>`, { index });
  try {
    if (op === 'claim') {
      const { op: _op, id: _id, ...claim } = value;
      return { op, id, claim: parseJobClaim(claim) };
    }
    if (op === 'edit') {
      const revision = value['if-match'];
      if (revision !== undefined && (typeof revision !== 'number' || !Number.isSafeInteger(revision) || revision < 0)) {
        throw badRequest('"if-match" must be a job revision (a non-negative integer)');
      }
      return { op, id, ifRevision: revision, edit: parseJobEdit(value.changes) };
    }
  } catch (error) {
    throw error instanceof ApiError ? badRequest(`${where}: ${error.message}`, { index }) : error;
  }
  throw badRequest(`${where}: "op" must be "claim" or "edit"`, { index });
}

/** The body of the request: `{"operations": [...]}`. */
export function parseJobOperations(body: unknown, maxOperations: number): JobOperation[] {
  if (!isRecord(body) || !Array.isArray(body.operations)) throw badRequest('job operations need a body like {"operations": [...]}');
  const list: unknown[] = body.operations;
  if (list.length > maxOperations) throw badRequest(`at most ${String(maxOperations)} operations per request, got ${String(list.length)}`);
  return list.map(parseOperation);
}

interface Caller {
  readonly access: AccessControl;
  readonly principal: Principal;
}

function run(store: JobStore, events: JobEventHub, operation: JobOperation, now: () => Date, caller: Caller): Promise<JobDocument> {
  if (operation.op === 'claim')
    return updateWithEvents(store, events, operation.id, (current) => claimJob(current, operation.claim, now()));
  const { edit } = operation;
  return updateWithEvents(
    store,
    events,
    operation.id,
    (current) => {
      checkEdit(caller.access, caller.principal, current, edit);
      return applyEdit(current, edit, now());
    },
    operation.ifRevision,
  );
}

export function registerJobOperationRoutes(app: FastifyInstance, options: JobOperationsOptions): void {
  const { store, access, now, events } = options;
  app.post('/api/job/operations', async (request) => {
    const principal = await requireAnyPermission(access, request, ['claim', 'edit']);
    const operations = parseJobOperations(request.body, options.maxOperations);
    const results: Record<string, unknown>[] = [];
    // One after another, in the order given: two operations on one job apply in that order.
    for (const operation of operations) {
      try {
        results.push({ status: 200, job: await run(store, events, operation, now, { access, principal }) });
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        results.push({ status: error.status, code: error.code, message: error.message, ...error.details });
      }
    }
    return { status: 200, results };
  });
}
