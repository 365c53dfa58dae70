/**
 * Cancel, retry or delete many jobs. A selection: one request per job, four at a time; every answer is
 * counted and the first refusals are named, so a 403 or 409 is never silent. Everything a filter
 * matches: one request, the server's bulk operation (it may be far more jobs than a page shows).
 */
import { describeFailure, jobPath, request } from '../api';
import { isRecord, parseJobPage, type Abilities } from '../model';

export type BulkOperation = 'cancel' | 'retry' | 'delete';

const PARALLEL = 4;

export async function runBulk(operation: BulkOperation, ids: readonly string[]): Promise<string> {
  const failures: string[] = [];
  let done = 0;
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < ids.length) {
      const id = ids[next++];
      if (id === undefined) return;
      try {
        if (operation === 'delete') await request('DELETE', jobPath(id));
        else await request('POST', `${jobPath(id)}/${operation}`);
        done += 1;
      } catch (failure) {
        failures.push(`${id}: ${describeFailure(failure)}`);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, ids.length) }, worker));
  const verb = { cancel: 'canceled', retry: 'retried', delete: 'deleted' }[operation];
  const summary = `${String(done)} of ${String(ids.length)} ${verb}`;
  if (failures.length === 0) return summary;
  return `${summary}; ${String(failures.length)} refused: ${failures.slice(0, 3).join('; ')}${failures.length > 3 ? '; …' : ''}`;
}

export const VERBS: Readonly<Record<BulkOperation, readonly [string, string]>> = {
  cancel: ['Cancel', 'canceled'],
  retry: ['Retry', 'retried'],
  delete: ['Delete', 'deleted'],
};

/** What the server leaves out of an operation by filter, said in the confirmation. */
export const SCOPE_NOTE: Readonly<Record<BulkOperation, string>> = {
  cancel: ' (those not yet final; running actions are stopped)',
  retry: ' (the final ones, batches aside: back to QUEUED as a new attempt)',
  delete: ', for good',
};

/**
 * The filter narrowed as the server narrows it for the operation (bulk-routes.ts, job-routes.ts), so
 * the count in the confirmation is the count the operation finds. Acls narrow both the same way.
 */
export function scopedFilter(operation: BulkOperation, filter: string, abilities: Abilities): string {
  if (operation === 'cancel') return `(${filter}) and state=['QUEUED','RUNNING']`;
  if (operation === 'retry') return `(${filter}) and state=['SUCCESS','FAILED','CANCELED'] and action!='batch'`;
  return abilities.delete === 'final' ? `(${filter}) and state=['SUCCESS','FAILED','CANCELED']` : filter;
}

/** The exact count of a filter's matches (Nuvla's `last=0`). */
export async function countOf(filter: string): Promise<number> {
  return parseJobPage(await request('GET', `/api/job?${new URLSearchParams({ filter, last: '0' }).toString()}`)).count;
}

/** One request: the server cancels, retries or deletes everything the filter matches that the key may touch. */
export async function runBulkByFilter(operation: BulkOperation, filter: string): Promise<string> {
  const query = new URLSearchParams({ filter }).toString();
  try {
    const body =
      operation === 'delete'
        ? await request('DELETE', `/api/job?${query}`, { headers: { bulk: 'yes' } })
        : await request('POST', `/api/job/${operation}?${query}`, { headers: { bulk: 'yes' } });
    const message = isRecord(body) && typeof body.message === 'string' ? body.message : `${operation} done`;
    return message;
  } catch (failure) {
    return `${operation} of the matching jobs refused: ${describeFailure(failure)}`;
  }
}
