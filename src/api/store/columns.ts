/**
 * The columns both stores keep next to the whole document: what filters and orderings use most, so
 * they hit an index instead of parsing JSON. The document stays the source of truth; these are copies
 * written from it on every insert and update, here and nowhere else.
 */
import type { ColumnSpec } from '../cimi/sql.js';
import { JOB_STATES, waitingFor, type JobDocument } from '../job/document.js';
import { DEFAULT_QUEUE_NAME } from '../../recipes/queue-layout.js';
import { lockKeyOf } from '../batch/batch-field.js';

export const JOBS_TABLE = 'jobs';
/** The whole document as JSON (TEXT in SQLite, jsonb in PostgreSQL). */
export const DOCUMENT_COLUMN = 'doc';

export type ColumnValue = string | number | null;

export interface IndexedColumn extends ColumnSpec {
  /** The CIMI attribute path joined by '/', as filters name it. */
  readonly attribute: string;
  readonly valueOf: (job: JobDocument) => ColumnValue;
}

const orNull = <T>(value: T | undefined): T | null => value ?? null;

/** In the order of the INSERT column list; `id` first. */
export const INDEXED_COLUMNS: readonly IndexedColumn[] = [
  { attribute: 'id', column: 'id', type: 'text', valueOf: (job) => job.id },
  { attribute: 'state', column: 'state', type: 'text', valueOf: (job) => job.state },
  { attribute: 'action', column: 'action', type: 'text', valueOf: (job) => job.action },
  { attribute: 'priority', column: 'priority', type: 'number', valueOf: (job) => job.priority },
  { attribute: 'created', column: 'created', type: 'date', valueOf: (job) => job.created },
  { attribute: 'updated', column: 'updated', type: 'date', valueOf: (job) => job.updated },
  { attribute: 'started', column: 'started', type: 'date', valueOf: (job) => orNull(job.started) },
  { attribute: 'expiry', column: 'expiry', type: 'date', valueOf: (job) => orNull(job.expiry) },
  {
    attribute: 'target-resource/href',
    column: 'target_href',
    type: 'text',
    valueOf: (job) => orNull(job['target-resource']?.href),
  },
  { attribute: 'parent-job', column: 'parent_job', type: 'text', valueOf: (job) => orNull(job['parent-job']) },
  {
    attribute: 'execution-mode',
    column: 'execution_mode',
    type: 'text',
    valueOf: (job) => orNull(job['execution-mode']),
  },
  { attribute: 'return-code', column: 'return_code', type: 'number', valueOf: (job) => orNull(job['return-code']) },
  { attribute: 'progress', column: 'progress', type: 'number', valueOf: (job) => job.progress },
  { attribute: 'executor', column: 'executor', type: 'text', valueOf: (job) => orNull(job.executor) },
  {
    attribute: 'idempotency-key',
    column: 'idempotency_key',
    type: 'text',
    // A live batch's lock is its key (`batch-lock:<lock>`), released when the batch ends (batch-field.ts).
    valueOf: (job) => orNull(lockKeyOf(job)),
  },
  { attribute: 'revision', column: 'revision', type: 'number', valueOf: (job) => job.revision },
  // Added by schema version 2 of both stores; indexed (with state) for the scheduler's "QUEUED jobs due by now".
  { attribute: 'not-before', column: 'not_before', type: 'date', valueOf: (job) => orNull(job['not-before']) },
  // Schema version 3: not a field of the document but what its fields say (document.ts, waitingFor):
  // why a QUEUED job has no queue entry on purpose. Filters name it `waiting` ('time', 'room' or null),
  // so that the feeder reads parked jobs best first and the reconciler skips every waiting job, each
  // through an index, however many jobs wait.
  { attribute: 'waiting', column: 'waiting', type: 'text', valueOf: (job) => waitingFor(job) },
  // Schema version 3 too, with the default filled in: a job without the field (older, or Nuvla's) is
  // the default queue's, and `queue='default'` finds it.
  { attribute: 'queue', column: 'queue', type: 'text', valueOf: (job) => job.queue ?? DEFAULT_QUEUE_NAME },
];

/** Columns every job has a value for (NOT NULL in both schemas). */
const NOT_NULL: ReadonlySet<string> = new Set(['id', 'state', 'action', 'priority', 'created', 'updated', 'progress', 'revision']);

/** What the filter compiler reads from columns; any other attribute it reads from the document. */
export const FILTER_COLUMNS: Readonly<Record<string, ColumnSpec>> = Object.freeze(
  Object.fromEntries(INDEXED_COLUMNS.map(({ attribute, column, type }) => [attribute, { column, type, nullable: !NOT_NULL.has(column) }])),
);

/** Indexed columns then the document, in the order both stores list their columns. */
export const ALL_COLUMNS: readonly string[] = [...INDEXED_COLUMNS.map(({ column }) => column), DOCUMENT_COLUMN];

/** What an update writes: every column but the key. */
export const UPDATED_COLUMNS: readonly string[] = ALL_COLUMNS.filter((column) => column !== 'id');

/** Values for ALL_COLUMNS. */
export function rowValues(job: JobDocument): ColumnValue[] {
  return appendRowValues(job, []);
}

/**
 * Appends the values for ALL_COLUMNS to `values` and returns it: a multi-row INSERT binds one flat
 * list, and building it in place saves an array per row on the bulk path.
 */
export function appendRowValues(job: JobDocument, values: ColumnValue[]): ColumnValue[] {
  for (const column of INDEXED_COLUMNS) values.push(column.valueOf(job));
  values.push(JSON.stringify(job));
  return values;
}

/** Values for UPDATED_COLUMNS. */
export function updatedValues(job: JobDocument): ColumnValue[] {
  const values: ColumnValue[] = [];
  for (const column of INDEXED_COLUMNS) if (column.column !== 'id') values.push(column.valueOf(job));
  values.push(JSON.stringify(job));
  return values;
}

/**
 * A stored document (JSON text from SQLite, an object from PostgreSQL's jsonb) back as a JobDocument.
 * Only what the stores and the API rely on is checked: the documents were validated on the way in.
 */
export function parseStoredDocument(stored: unknown): JobDocument {
  const value: unknown = typeof stored === 'string' ? JSON.parse(stored) : stored;
  if (!isJobDocument(value)) {
    const preview = JSON.stringify(value).slice(0, 200);
    throw new Error(`the job store holds a document that is not a job: ${preview}`);
  }
  return value;
}

function isJobDocument(value: unknown): value is JobDocument {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const fields = value as Record<string, unknown>;
  const state = fields['state'];
  return (
    typeof fields['id'] === 'string' &&
    fields['resource-type'] === 'job' &&
    typeof fields['action'] === 'string' &&
    typeof fields['created'] === 'string' &&
    typeof fields['updated'] === 'string' &&
    typeof state === 'string' &&
    (JOB_STATES as readonly string[]).includes(state) &&
    typeof fields['priority'] === 'number' &&
    typeof fields['progress'] === 'number' &&
    Number.isSafeInteger(fields['revision'])
  );
}
