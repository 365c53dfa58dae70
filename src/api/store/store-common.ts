/** What the SQLite and PostgreSQL stores decide the same way: paging, ordering, revisions, row shapes. */
import type { OrderBy } from '../cimi/ast.js';
import type { CompileOptions } from '../cimi/sql.js';
import { ApiError, badRequest, preconditionFailed } from '../errors.js';
import { JOB_STATES, isFinal, type JobDocument, type JobState } from '../job/document.js';
import { batchParentOf, tallied } from '../batch/batch-field.js';
import { DOCUMENT_COLUMN, FILTER_COLUMNS, parseStoredDocument } from './columns.js';
import type { JobMutation, JobSearch } from './job-store.js';

/** Nuvla lists the newest first when no order is asked for. */
export const DEFAULT_ORDER: readonly OrderBy[] = [{ attribute: ['created'], direction: 'desc' }];
/** Nuvla's default page: `last` = `first` + 9,999. */
export const DEFAULT_PAGE_SIZE = 10_000;

export interface Page {
  readonly limit: number;
  readonly offset: number;
}

/** Nuvla's 1-based inclusive `first`/`last` as LIMIT/OFFSET; `last` before `first` is an empty page. */
export function pageOf(search: JobSearch): Page {
  const first = search.first ?? 1;
  if (!Number.isSafeInteger(first) || first < 1) throw badRequest(`"first" must be an integer >= 1, got ${first}`);
  const last = search.last ?? first + DEFAULT_PAGE_SIZE - 1;
  if (!Number.isSafeInteger(last) || last < 0) throw badRequest(`"last" must be an integer >= 0, got ${last}`);
  return { offset: first - 1, limit: Math.max(0, last - first + 1) };
}

export function orderOf(search: JobSearch): readonly OrderBy[] {
  return search.orderBy !== undefined && search.orderBy.length > 0 ? search.orderBy : DEFAULT_ORDER;
}

/** Per statement, so that `now-7d` in a filter means now. */
export function compileOptions(dialect: CompileOptions['dialect']): CompileOptions {
  return { dialect, columns: FILTER_COLUMNS, documentColumn: DOCUMENT_COLUMN, now: new Date() };
}

/**
 * The checks of a conditional update around the caller's mutation, the same in both stores, run
 * inside their transaction with `current` read under the write lock.
 */
export function applyMutation(current: JobDocument, mutate: JobMutation, expectedRevision: number | undefined): JobDocument {
  if (expectedRevision !== undefined && current.revision !== expectedRevision) {
    throw preconditionFailed(`${current.id} is at revision ${current.revision}, not at the expected revision ${expectedRevision}`, {
      id: current.id,
      expectedRevision,
      actualRevision: current.revision,
    });
  }
  const next = mutate(current);
  // Either would corrupt the store quietly: a changed id would overwrite the wrong row's columns,
  // and a revision that does not move would let two If-Match writers both succeed.
  if (next.id !== current.id) {
    throw new ApiError('internal', `an update of ${current.id} returned a document with id ${next.id}`);
  }
  if (next.revision !== current.revision + 1) {
    throw new ApiError(
      'internal',
      `an update of ${current.id} must move its revision from ${current.revision} to ${current.revision + 1}, not to ${next.revision}`,
    );
  }
  return next;
}

/** The batch whose counts a task's change from `current` to `next` moves, if any (its parent, read in the same transaction). */
export function tallyTarget(current: JobDocument, next: JobDocument): string | undefined {
  if (isFinal(current.state) === isFinal(next.state)) return undefined;
  return batchParentOf(next);
}

/** The parent after one of its tasks changed, or undefined when it is no batch (or gone). */
export function talliedParent(parent: JobDocument | undefined, current: JobDocument, next: JobDocument): JobDocument | undefined {
  return parent === undefined ? undefined : tallied(parent, current, next);
}

export const BATCH_SPECS_TABLE = 'batch_tasks';

export function emptyStateCounts(): Record<JobState, number> {
  return { QUEUED: 0, RUNNING: 0, SUCCESS: 0, FAILED: 0, CANCELED: 0 };
}

/** Rows of `SELECT state, count(*) AS n ... GROUP BY state`. */
export function stateCountsOf(rows: readonly unknown[]): Record<JobState, number> {
  const counts = emptyStateCounts();
  for (const row of rows) {
    const state = field(row, 'state');
    if (typeof state !== 'string' || !(JOB_STATES as readonly string[]).includes(state)) {
      throw new Error(`the job store holds a job in an unknown state: ${JSON.stringify(state)}`);
    }
    counts[state as JobState] += countOf(field(row, 'n'));
  }
  return counts;
}

export function documentOfRow(row: unknown): JobDocument {
  return parseStoredDocument(field(row, DOCUMENT_COLUMN));
}

/** SQLite gives counts as numbers; PostgreSQL's bigint arrives as a string. */
export function countOf(value: unknown): number {
  const count = typeof value === 'string' ? Number(value) : value;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
    throw new Error(`expected a row count from the database, got ${JSON.stringify(value)}`);
  }
  return count;
}

export function field(row: unknown, name: string): unknown {
  if (typeof row !== 'object' || row === null || !(name in row)) {
    throw new Error(`expected a database row with column "${name}", got ${JSON.stringify(row)}`);
  }
  return (row as Record<string, unknown>)[name];
}

/**
 * The statement counting a filter's matches, at most `limit` + 1 of them when a limit is given (one
 * more than the limit tells "more than" from "exactly"), and what its answer means.
 */
export function countStatement(table: string, where: string, limit: number | undefined): string {
  return limit === undefined
    ? `SELECT count(*) AS n FROM ${table}${where}`
    : `SELECT count(*) AS n FROM (SELECT 1 FROM ${table}${where} LIMIT ${String(limit + 1)}) AS capped`;
}

export function countedResult(counted: number, limit: number | undefined): { count: number; countCapped?: true } {
  return limit !== undefined && counted > limit ? { count: limit, countCapped: true } : { count: counted };
}
