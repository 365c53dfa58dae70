/**
 * An idempotency key names one job: the same action on the same target. A create that finds the key
 * taken by a job of another action or target is not a retry but a collision, or a squat (a writer
 * pre-creating a future tick's key to silence a distribution): it is refused with 409, instead of
 * answering with a job the caller did not ask for.
 */
import type { ApiError } from '../errors.js';
import { conflict } from '../errors.js';
import type { JobDocument } from '../job/document.js';

function describeTarget(job: JobDocument): string {
  const href = job['target-resource']?.href;
  return href === undefined ? '(none)' : JSON.stringify(href);
}

/** The 409 when `existing` (found by `asked`'s key, not created) is of another action or target. */
export function idempotencyConflict(
  asked: JobDocument,
  result: { readonly job: JobDocument; readonly created: boolean },
): ApiError | undefined {
  if (result.created) return undefined;
  const existing = result.job;
  const key = JSON.stringify(existing['idempotency-key'] ?? '');
  const details = { 'resource-id': existing.id, 'idempotency-key': existing['idempotency-key'] };
  if (existing.action !== asked.action) {
    return conflict(
      `idempotency key ${key} belongs to ${existing.id}, of action ${JSON.stringify(existing.action)}, not ${JSON.stringify(asked.action)}`,
      details,
    );
  }
  if (existing['target-resource']?.href !== asked['target-resource']?.href) {
    return conflict(
      `idempotency key ${key} belongs to ${existing.id}, for target ${describeTarget(existing)}, not ${describeTarget(asked)}`,
      details,
    );
  }
  return undefined;
}

/** The same conflict as one job of a bulk create, named by its index. */
export function conflictAt(error: ApiError, index: number): ApiError {
  return conflict(`job ${String(index)}: ${error.message}`, { ...error.details, index });
}
