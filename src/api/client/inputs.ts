/**
 * What callers hand the client, checked before anything is sent: job ids, search parameters, and the
 * engine's additions, which a Nuvla server would not understand (or would silently ignore, losing
 * the guarantee the caller asked for).
 */
import { ApiError } from '../errors.js';
import type { JobCreate, JobEdit } from '../job/parse.js';
import { isJobField, type JobField } from './parse-job.js';

/** A new job as POST /api/job takes it. */
export type NewJob = JobCreate;
/** A merge edit as PUT /api/job/<uuid> takes it; fields fixed at creation cannot be changed. */
export type JobChanges = Omit<JobEdit, 'immutable'>;

export interface SearchQuery {
  /** CIMI filter, e.g. `state='QUEUED' and action='x'`. */
  readonly filter?: string;
  /** e.g. `priority:asc,created:asc`. */
  readonly orderby?: string;
  /** 1-based, inclusive. */
  readonly first?: number;
  /** 1-based, inclusive; 0 asks only for the count. */
  readonly last?: number;
}

export interface SelectQuery<K extends JobField> extends SearchQuery {
  /** Only these fields (and `id`) of each job. */
  readonly select: readonly K[];
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `job/<uuid>` or `<uuid>` -> the path of the job resource. */
export function jobPath(id: string): string {
  const uuid = id.startsWith('job/') ? id.slice(4) : id;
  if (!UUID.test(uuid)) throw refused(`${JSON.stringify(id)} is not a job id: expected job/<uuid>`);
  return `/api/job/${uuid.toLowerCase()}`;
}

export function searchForm(query: SearchQuery & { readonly select?: readonly string[] }): Record<string, string> {
  const form: Record<string, string> = {};
  if (query.filter !== undefined) form.filter = nonEmpty(query.filter, 'filter');
  if (query.orderby !== undefined) form.orderby = nonEmpty(query.orderby, 'orderby');
  if (query.first !== undefined) form.first = String(integer(query.first, 'first', 1));
  if (query.last !== undefined) form.last = String(integer(query.last, 'last', 0));
  if (query.select !== undefined) {
    const unknown = query.select.filter((field) => !isJobField(field));
    if (query.select.length === 0 || unknown.length > 0) {
      throw refused(`"select" must name job fields; ${unknown.length > 0 ? `unknown: ${unknown.join(', ')}` : 'it is empty'}`);
    }
    form.select = query.select.join(',');
  }
  return form;
}

export function revisionOf(ifRevision: number): string {
  return `"${String(integer(ifRevision, 'ifRevision', 0))}"`;
}

const ENGINE_CREATE_FIELDS = [
  'idempotency-key',
  'timeout',
  'max-attempts',
  'queue',
  'not-before',
  'retry',
  'parked',
  'batch-index',
] as const;
const ENGINE_EDIT_FIELDS = [
  'executor',
  'attempt',
  'timeout',
  'max-attempts',
  'not-before',
  'retry',
  'dead-letter',
  'parked',
  'counters',
] as const;

/** The engine's additions among the fields of a create or an edit. */
export function engineFieldsOf(fields: NewJob | JobChanges, kind: 'create' | 'edit'): string[] {
  const names: readonly string[] = kind === 'create' ? ENGINE_CREATE_FIELDS : ENGINE_EDIT_FIELDS;
  return names.filter((name) => Object.hasOwn(fields, name) && Reflect.get(fields, name) !== undefined);
}

export function nuvlaRefuses(what: string): ApiError {
  return refused(
    `${what} is one of this engine's additions, which Nuvla's job API does not have (the client is in nuvla ` +
      'compatibility mode); without it the call would not do what it promises',
  );
}

export function refused(message: string): ApiError {
  return new ApiError('bad-request', message, { details: { clientSide: true, retryable: false } });
}

function nonEmpty(value: string, name: string): string {
  if (typeof value !== 'string' || value.trim() === '') throw refused(`"${name}" must be a non-empty string`);
  return value;
}

function integer(value: number, name: string, min: number): number {
  if (!Number.isSafeInteger(value) || value < min) throw refused(`"${name}" must be an integer of at least ${min}, got ${String(value)}`);
  return value;
}
