/**
 * Job documents from the wire (`unknown` JSON) into JobDocument: required fields must be there,
 * every field present must have its type, and only the document's own fields are kept (Nuvla's
 * `operations`, and fields of newer servers, are dropped). An answer that fails is the server's
 * fault: ApiError 'internal', naming the field.
 */
import { ApiError } from '../errors.js';
import { EXECUTION_MODES, JOB_STATES, type AttemptRecord, type DeadLetter, type JobDocument, type ResourceLink } from '../job/document.js';
import { checkRetrySpec, toJobRetryField, type JobRetryField } from '../job/retry-policy.js';
import { isRecord } from '../../util/is-record.js';
import { isCounters } from '../batch/batch-field.js';
import { parseBatchField } from '../batch/batch-wire.js';

const batchField = parseBatchField;

export type JobField = keyof JobDocument;

export interface ParseJobOptions {
  /**
   * Nuvla's documents have no `revision`: with 'optional' its absence reads as 0, a revision our
   * server never gives (it starts at 1).
   */
  readonly revision: 'required' | 'optional';
}

/** What `revision` is when the server does not keep revisions (Nuvla). */
export const NO_REVISION = 0;

type Check<T> = (value: unknown) => T | undefined;

const text: Check<string> = (value) => (typeof value === 'string' ? value : undefined);
const date: Check<string> = (value) => (typeof value === 'string' && !Number.isNaN(Date.parse(value)) ? value : undefined);
const int =
  (min: number, max: number): Check<number> =>
  (value) =>
    typeof value === 'number' && Number.isInteger(value) && value >= min && value <= max ? value : undefined;
const nonNegative: Check<number> = (value) => (typeof value === 'number' && Number.isFinite(value) && value >= 0 ? value : undefined);
const oneOf =
  <T extends string>(allowed: readonly T[]): Check<T> =>
  (value) =>
    typeof value === 'string' && (allowed as readonly string[]).includes(value) ? (value as T) : undefined;
const link: Check<ResourceLink> = (value) => (isRecord(value) && typeof value.href === 'string' ? { href: value.href } : undefined);
const links: Check<ResourceLink[]> = (value) => {
  if (!Array.isArray(value)) return undefined;
  const parsed = value.map((item: unknown) => link(item));
  return parsed.every((item): item is ResourceLink => item !== undefined) ? parsed : undefined;
};
const strings: Check<string[]> = (value) =>
  Array.isArray(value) && value.every((item): item is string => typeof item === 'string') ? [...value] : undefined;
const object: Check<Record<string, unknown>> = (value) => (isRecord(value) ? { ...value } : undefined);

const retry: Check<JobRetryField> = (value) => {
  const checked = checkRetrySpec(value, 'kebab', 'retry');
  return 'spec' in checked ? toJobRetryField(checked.spec) : undefined;
};
const attemptRecord: Check<AttemptRecord> = (value) => {
  if (!isRecord(value)) return undefined;
  const attempt = int(0, Number.MAX_SAFE_INTEGER)(value.attempt);
  const started = date(value.started);
  if (attempt === undefined || started === undefined) return undefined;
  const ended = date(value.ended);
  const state = oneOf(JOB_STATES)(value.state);
  const code = int(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER)(value['return-code']);
  const message = text(value['status-message']);
  const executor = text(value.executor);
  return {
    attempt,
    started,
    ...(ended === undefined ? {} : { ended }),
    ...(state === undefined ? {} : { state }),
    ...(code === undefined ? {} : { 'return-code': code }),
    ...(message === undefined ? {} : { 'status-message': message }),
    ...(executor === undefined ? {} : { executor }),
  };
};
const attemptHistory: Check<AttemptRecord[]> = (value) => {
  if (!Array.isArray(value)) return undefined;
  const parsed = value.map((item: unknown) => attemptRecord(item));
  return parsed.every((item): item is AttemptRecord => item !== undefined) ? parsed : undefined;
};
const deadLetter: Check<DeadLetter> = (value) => {
  if (!isRecord(value)) return undefined;
  const reason = text(value.reason);
  const at = date(value.at);
  if (reason === undefined || at === undefined) return undefined;
  const attempt = int(0, Number.MAX_SAFE_INTEGER)(value.attempt);
  return { reason, at, ...(attempt === undefined ? {} : { attempt }) };
};

interface FieldRule<T> {
  readonly check: Check<T>;
  readonly expected: string;
  readonly required?: boolean;
}

/** One rule per field of JobDocument: the mapped type makes a missing or mistyped rule a compile error. */
const RULES: { readonly [K in JobField]-?: FieldRule<Exclude<JobDocument[K], undefined>> } = {
  id: {
    check: (value) => (typeof value === 'string' && /^job\/\S+$/.test(value) ? value : undefined),
    expected: 'a job id job/<uuid>',
    required: true,
  },
  'resource-type': { check: (value) => (value === 'job' ? value : undefined), expected: '"job"', required: true },
  created: { check: date, expected: 'an ISO-8601 date', required: true },
  updated: { check: date, expected: 'an ISO-8601 date', required: true },
  state: { check: oneOf(JOB_STATES), expected: `one of ${JOB_STATES.join(', ')}`, required: true },
  action: { check: text, expected: 'a string', required: true },
  'target-resource': { check: link, expected: 'an object {"href": "..."}' },
  'affected-resources': { check: links, expected: 'a list of {"href": "..."}' },
  progress: { check: int(0, 100), expected: 'an integer from 0 to 100', required: true },
  'status-message': { check: text, expected: 'a string' },
  'time-of-status-change': { check: date, expected: 'an ISO-8601 date' },
  'return-code': { check: int(Number.MIN_SAFE_INTEGER, Number.MAX_SAFE_INTEGER), expected: 'an integer' },
  priority: { check: int(0, 999), expected: 'an integer from 0 to 999', required: true },
  'execution-mode': { check: oneOf(EXECUTION_MODES), expected: `one of ${EXECUTION_MODES.join(', ')}` },
  version: { check: int(0, Number.MAX_SAFE_INTEGER), expected: 'an integer', required: true },
  started: { check: date, expected: 'an ISO-8601 date' },
  duration: { check: nonNegative, expected: 'a number of seconds' },
  expiry: { check: date, expected: 'an ISO-8601 date' },
  payload: { check: text, expected: 'a string (JSON text)' },
  'parent-job': { check: text, expected: 'a string' },
  'nested-jobs': { check: strings, expected: 'a list of strings' },
  tags: { check: strings, expected: 'a list of strings' },
  acl: { check: object, expected: 'an object' },
  revision: { check: int(0, Number.MAX_SAFE_INTEGER), expected: 'a non-negative integer', required: true },
  executor: { check: text, expected: 'a string' },
  attempt: { check: int(0, Number.MAX_SAFE_INTEGER), expected: 'a non-negative integer' },
  timeout: { check: int(1, Number.MAX_SAFE_INTEGER), expected: 'a positive integer' },
  'max-attempts': { check: int(1, Number.MAX_SAFE_INTEGER), expected: 'a positive integer' },
  queue: { check: text, expected: 'a string' },
  'not-before': { check: date, expected: 'an ISO-8601 date' },
  parked: { check: (value) => (value === true ? value : undefined), expected: 'true' },
  'idempotency-key': { check: text, expected: 'a string' },
  'created-by': { check: text, expected: 'a string' },
  retry: { check: retry, expected: 'a retry policy object' },
  'attempt-history': { check: attemptHistory, expected: 'a list of attempts {attempt, started, ...}' },
  'dead-letter': { check: deadLetter, expected: 'an object {reason, at}' },
  'retried-at-attempt': { check: int(0, Number.MAX_SAFE_INTEGER), expected: 'a non-negative integer' },
  batch: { check: batchField, expected: 'a batch object {action, source, sent, ...}' },
  'batch-index': { check: int(0, Number.MAX_SAFE_INTEGER), expected: 'a non-negative integer' },
  counters: { check: (value) => (isCounters(value) ? { ...value } : undefined), expected: 'an object of names to numbers' },
};

export const JOB_FIELDS = Object.keys(RULES) as readonly JobField[];

export function isJobField(name: string): name is JobField {
  return Object.hasOwn(RULES, name);
}

/** A whole job document, as GET /api/job/<uuid> and edits answer. */
export function parseJob(value: unknown, options: ParseJobOptions = { revision: 'required' }): JobDocument {
  const fields = documentFields(value);
  const parsed = pick(
    fields,
    JOB_FIELDS,
    (field) => RULES[field].required === true && !(field === 'revision' && options.revision === 'optional'),
  );
  parsed.revision ??= NO_REVISION;
  // Every field was checked against its rule above, whose type is the field's type in JobDocument.
  return parsed as unknown as JobDocument;
}

/**
 * A document of a search with `select`: the chosen fields (the server leaves out those a job does not
 * have) and `id`, each checked as in parseJob.
 */
export function parseSelectedJob<K extends JobField>(value: unknown, select: readonly K[]): Pick<JobDocument, K | 'id'> {
  const fields = documentFields(value);
  const wanted: readonly JobField[] = ['id', ...select.filter((field) => field !== 'id')];
  // Optional fields may be absent; so may required ones, which some servers omit unless selected.
  const parsed = pick(fields, wanted, (field) => field === 'id');
  return parsed as unknown as Pick<JobDocument, K | 'id'>;
}

function documentFields(value: unknown): Record<string, unknown> {
  if (!isRecord(value)) throw invalid(`the job API sent ${describe(value)} where a job document was expected`, undefined);
  return value;
}

function pick(
  fields: Record<string, unknown>,
  wanted: readonly JobField[],
  isRequired: (field: JobField) => boolean,
): Partial<Record<JobField, unknown>> {
  const id = typeof fields.id === 'string' ? fields.id : undefined;
  const parsed: Partial<Record<JobField, unknown>> = {};
  for (const field of wanted) {
    const raw = fields[field];
    // Some servers write absent optional fields as null.
    if (raw === undefined || raw === null) {
      if (isRequired(field)) {
        const hint = field === 'revision' ? " (Nuvla's API keeps no revisions: use the client option compatibility 'nuvla' or 'auto')" : '';
        throw invalid(`job ${id ?? '(no id)'} from the job API has no "${field}"${hint}`, field);
      }
      continue;
    }
    const rule: FieldRule<unknown> = RULES[field];
    const checked = rule.check(raw);
    if (checked === undefined) {
      throw invalid(`job ${id ?? '(no id)'} from the job API has "${field}" = ${describe(raw)}; expected ${rule.expected}`, field);
    }
    parsed[field] = checked;
  }
  return parsed;
}

function invalid(message: string, field: string | undefined): ApiError {
  return new ApiError('internal', message, { details: { retryable: false, ...(field === undefined ? {} : { field }) } });
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return `an ${typeof value}`;
}
