/**
 * Cancel, retry or delete many jobs, one request each (the API has no bulk form of these), four at a
 * time; every answer is counted and the first refusals are named, so a 403 or 409 is never silent.
 */
import { describeFailure, jobPath, request } from '../api';

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
