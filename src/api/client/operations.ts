/**
 * The engine's job operations (`POST /api/job/operations`): what a caller asks, how it goes on the
 * wire, and each result read back as the single call would have answered it.
 */
import { ApiError } from '../errors.js';
import type { JobDocument } from '../job/document.js';
import { isRecord } from '../../util/is-record.js';
import { errorFromResponse } from './errors.js';
import type { JobChanges } from './inputs.js';

export const OPERATIONS_PATH = '/api/job/operations';

export type JobOperationRequest =
  | {
      readonly op: 'claim';
      readonly id: string;
      readonly executor: string;
      readonly statusMessage?: string;
      /** Claim only a job of one of these actions (any other comes back unclaimed, as a conflict). */
      readonly actions?: readonly string[];
    }
  | { readonly op: 'edit'; readonly id: string; readonly changes: JobChanges; readonly ifRevision?: number | undefined };

/** A failed operation's error is the ApiError its single call would have thrown; `job` comes with a refused claim. */
export type JobOperationResult =
  | { readonly ok: true; readonly job: JobDocument }
  | { readonly ok: false; readonly error: ApiError; readonly job: JobDocument | undefined };

export function operationsBody(requests: readonly JobOperationRequest[]): { operations: Record<string, unknown>[] } {
  return {
    operations: requests.map((request) =>
      request.op === 'claim'
        ? {
            op: 'claim',
            id: request.id,
            executor: request.executor,
            ...(request.statusMessage === undefined ? {} : { 'status-message': request.statusMessage }),
            ...(request.actions === undefined ? {} : { actions: request.actions }),
          }
        : {
            op: 'edit',
            id: request.id,
            changes: request.changes,
            ...(request.ifRevision === undefined ? {} : { 'if-match': request.ifRevision }),
          },
    ),
  };
}

export function parseOperationResults(body: unknown, expected: number, parseJob: (value: unknown) => JobDocument): JobOperationResult[] {
  const results = isRecord(body) ? body.results : undefined;
  if (!Array.isArray(results) || results.length !== expected) {
    throw new ApiError(
      'internal',
      `job operations answered ${Array.isArray(results) ? `${String(results.length)} results` : 'no result list'} for ${String(expected)} operations`,
    );
  }
  return results.map((item: unknown): JobOperationResult => {
    if (!isRecord(item) || typeof item.status !== 'number') throw new ApiError('internal', 'a job operation result has no status');
    if (item.status === 200) return { ok: true, job: parseJob(item.job) };
    const job = item.job === undefined ? undefined : parseJob(item.job);
    return { ok: false, error: errorFromResponse(item.status, item, { method: 'POST', path: OPERATIONS_PATH }), job };
  });
}
