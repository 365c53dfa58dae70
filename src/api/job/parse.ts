/**
 * Parses request bodies (unknown JSON) into what a client may ask for when creating or editing a job.
 * Every rejection is a 400 naming the field and what was wrong with it; fields the server owns are
 * listed so an edit that re-sends a whole document is not refused for them.
 */
import { badRequest } from '../errors.js';
import { QUEUE_NAME_RULE, isQueueName } from '../../recipes/queue-layout.js';
import { resolveDate } from '../cimi/dates.js';
import { EXECUTION_MODES, JOB_STATES, MAX_ATTEMPTS_LIMIT, type JobDocument, type JobState, type ResourceLink } from './document.js';
import { BATCH_ACTION, isCounters } from '../batch/batch-field.js';
import { checkRetrySpec, toJobRetryField, type JobRetryField } from './retry-policy.js';

/** What a client may give on create: the document's own fields, all but `action` optional. */
export type JobCreate = Pick<JobDocument, 'action'> &
  Partial<
    Pick<
      JobDocument,
      | 'target-resource'
      | 'affected-resources'
      | 'priority'
      | 'execution-mode'
      | 'expiry'
      | 'payload'
      | 'parent-job'
      | 'nested-jobs'
      | 'tags'
      | 'acl'
      | 'timeout'
      | 'max-attempts'
      | 'queue'
      | 'idempotency-key'
      | 'status-message'
      | 'retry'
      | 'not-before'
      | 'parked'
      | 'batch-index'
    >
  >;

/** What an executor sends to mark a job it fails as given up; the server adds `at`. */
export interface DeadLetterEdit {
  readonly reason: string;
  readonly attempt?: number;
}

export interface JobEdit {
  readonly state?: JobState;
  readonly progress?: number;
  readonly 'status-message'?: string;
  readonly 'return-code'?: number;
  readonly 'affected-resources'?: readonly ResourceLink[];
  readonly priority?: number;
  readonly expiry?: string;
  readonly 'nested-jobs'?: readonly string[];
  readonly tags?: readonly string[];
  readonly acl?: Readonly<Record<string, unknown>>;
  readonly executor?: string | null;
  readonly attempt?: number;
  readonly timeout?: number;
  readonly 'max-attempts'?: number;
  readonly retry?: JobRetryField;
  /** Only with state FAILED: the engine gave the job up (docs/contracts.md §3). */
  readonly 'dead-letter'?: DeadLetterEdit;
  /** A new time before which the job is not started; null clears it. */
  readonly 'not-before'?: string | null;
  /** true parks the job (it waits in the API for room in its queue); false or null unparks it. */
  readonly parked?: boolean;
  /** What the action counted, written with its result; summed on its batch. */
  readonly counters?: Readonly<Record<string, number>>;
  /** Fields fixed at creation, as sent: accepted only when equal to the stored value. */
  readonly immutable: Readonly<Partial<Record<ImmutableField, unknown>>>;
}

export const IMMUTABLE_FIELDS = [
  'action',
  'target-resource',
  'payload',
  'parent-job',
  'execution-mode',
  'idempotency-key',
  'batch-index',
] as const;
export type ImmutableField = (typeof IMMUTABLE_FIELDS)[number];

/** Derived or identifying fields: ignored in an edit, refused in a create. */
export const SERVER_OWNED_FIELDS: ReadonlySet<string> = new Set([
  'id',
  'resource-type',
  'created',
  'updated',
  'started',
  'duration',
  'time-of-status-change',
  'version',
  'revision',
  'operations',
  'created-by',
  'attempt-history',
  'retried-at-attempt',
  'batch',
]);

/** What an action may be called; the executor's defineAction checks the same. */
export const ACTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const MAX_PAYLOAD_CHARS = 1_000_000;

type Fields = Record<string, unknown>;

function asObject(body: unknown, what: string): Fields {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw badRequest(`${what} must be a JSON object`);
  }
  return body as Fields;
}

function rejectUnknown(fields: Fields, allowed: ReadonlySet<string>, what: string): void {
  for (const key of Object.keys(fields)) {
    if (!allowed.has(key)) throw badRequest(`${what}: unknown field "${key}"`);
  }
}

function text(fields: Fields, key: string, options: { max?: number; pattern?: RegExp; hint?: string } = {}): string | undefined {
  const value = fields[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw badRequest(`"${key}" must be a string, got ${describe(value)}`);
  if (options.max !== undefined && value.length > options.max) {
    throw badRequest(`"${key}" is ${String(value.length)} characters long; at most ${String(options.max)} are allowed`);
  }
  if (options.pattern !== undefined && !options.pattern.test(value)) {
    throw badRequest(`"${key}" ${options.hint ?? 'has an invalid format'}: ${JSON.stringify(value.slice(0, 200))}`);
  }
  return value;
}

function integer(fields: Fields, key: string, min: number, max: number): number | undefined {
  const value = fields[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw badRequest(`"${key}" must be an integer from ${String(min)} to ${String(max)}, got ${describe(value)}`);
  }
  return value;
}

function date(fields: Fields, key: string): string | undefined {
  const value = text(fields, key);
  if (value === undefined) return undefined;
  const parsed = Date.parse(value);
  if (Number.isNaN(parsed)) throw badRequest(`"${key}" must be an ISO-8601 date, got ${JSON.stringify(value)}`);
  return new Date(parsed).toISOString();
}

/**
 * An instant: ISO-8601 (`2026-12-05T03:00:00Z`; no offset means UTC) or date math on the server's
 * clock (`now+10m`), as filters take dates; stored as `toISOString()` text so it compares as text.
 */
function instant(fields: Fields, key: string, now: Date): string | undefined {
  const value = fields[key];
  if (value === undefined) return undefined;
  const resolved = typeof value === 'string' ? resolveDate(value.trim(), now) : undefined;
  if (resolved === undefined) {
    throw badRequest(
      `"${key}" must be an ISO-8601 instant such as "2026-12-05T03:00:00Z" (or date math such as "now+10m"), got ${describe(value)}`,
    );
  }
  return resolved;
}

function link(value: unknown, key: string): ResourceLink {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw badRequest(`"${key}" must be an object like {"href": "..."}, got ${describe(value)}`);
  }
  const href: unknown = Reflect.get(value, 'href');
  if (typeof href !== 'string' || href === '') throw badRequest(`"${key}" needs a non-empty string "href"`);
  return { href };
}

function links(fields: Fields, key: string): ResourceLink[] | undefined {
  const value = fields[key];
  if (value === undefined) return undefined;
  if (!Array.isArray(value)) throw badRequest(`"${key}" must be a list of {"href": "..."}, got ${describe(value)}`);
  return value.map((item: unknown) => link(item, key));
}

function strings(fields: Fields, key: string): string[] | undefined {
  const value = fields[key];
  if (value === undefined) return undefined;
  if (!Array.isArray(value) || !value.every((item): item is string => typeof item === 'string')) {
    throw badRequest(`"${key}" must be a list of strings, got ${describe(value)}`);
  }
  return value;
}

function plainObject(fields: Fields, key: string): Record<string, unknown> | undefined {
  const value = fields[key];
  if (value === undefined) return undefined;
  return asObject(value, `"${key}"`);
}

function oneOf<T extends string>(fields: Fields, key: string, allowed: readonly T[]): T | undefined {
  const value = fields[key];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
    throw badRequest(`"${key}" must be one of ${allowed.join(', ')}, got ${describe(value)}`);
  }
  return value as T;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return typeof value === 'object' ? 'an object' : typeof value;
}

/** Every field of T named, optional ones possibly undefined. */
type AllFields<T> = { [K in keyof T]-?: T[K] | undefined };

/** Drops undefined values so optional fields stay absent (exactOptionalPropertyTypes). */
function compact<T extends object>(value: AllFields<T>): T {
  // A loop rather than entries/filter/fromEntries: this runs once per job of a bulk create.
  const fields = value as Record<string, unknown>;
  const result: Record<string, unknown> = {};
  for (const key in fields) {
    const field = fields[key];
    if (field !== undefined) result[key] = field;
  }
  return result as T;
}

const CREATE_FIELDS = new Set([
  'action',
  'target-resource',
  'affected-resources',
  'priority',
  'execution-mode',
  'expiry',
  'payload',
  'parent-job',
  'nested-jobs',
  'tags',
  'acl',
  'timeout',
  'max-attempts',
  'queue',
  'idempotency-key',
  'status-message',
  'not-before',
  'parked',
  'state',
  'progress',
  'resource-type',
  'retry',
  'batch-index',
]);

export function parseJobCreate(body: unknown, now: Date = new Date()): JobCreate {
  const fields = asObject(body, 'job');
  for (const key of Object.keys(fields)) {
    if (SERVER_OWNED_FIELDS.has(key) && key !== 'resource-type')
      throw badRequest(`"${key}" is set by the server and cannot be given on create`);
  }
  rejectUnknown(fields, CREATE_FIELDS, 'job');
  if (fields['resource-type'] !== undefined && fields['resource-type'] !== 'job') throw badRequest('"resource-type" must be "job"');
  if (fields.state !== undefined && fields.state !== 'QUEUED')
    throw badRequest(`a job is created QUEUED; "state" ${describe(fields.state)} is not allowed`);
  if (fields.progress !== undefined && fields.progress !== 0) throw badRequest('a job is created with "progress" 0');
  const action = text(fields, 'action', { pattern: ACTION_NAME, hint: 'must be a name of letters, digits, _ . : -' });
  if (action === undefined) throw badRequest('job needs an "action"');
  if (action === BATCH_ACTION) throw badRequest(`action "${BATCH_ACTION}" is reserved: create a batch with POST /api/job/batch`);
  const batchIndex = integer(fields, 'batch-index', 0, Number.MAX_SAFE_INTEGER);
  if (batchIndex !== undefined && fields['parent-job'] === undefined) throw badRequest('"batch-index" needs the batch as "parent-job"');
  const payload = text(fields, 'payload', { max: MAX_PAYLOAD_CHARS });
  if (payload !== undefined) assertJsonText(payload);
  const targetResource = fields['target-resource'] === undefined ? undefined : link(fields['target-resource'], 'target-resource');
  return compact<JobCreate>({
    action,
    'target-resource': targetResource,
    'affected-resources': links(fields, 'affected-resources'),
    priority: integer(fields, 'priority', 0, 999),
    'execution-mode': oneOf(fields, 'execution-mode', EXECUTION_MODES),
    expiry: date(fields, 'expiry'),
    payload,
    'parent-job': text(fields, 'parent-job', { pattern: /^job\/[0-9a-f-]{36}$/, hint: 'must be a job id job/<uuid>' }),
    'nested-jobs': strings(fields, 'nested-jobs'),
    tags: strings(fields, 'tags'),
    acl: plainObject(fields, 'acl'),
    timeout: integer(fields, 'timeout', 1, 31 * 24 * 3600),
    'max-attempts': integer(fields, 'max-attempts', 1, MAX_ATTEMPTS_LIMIT),
    queue: queueName(fields),
    'idempotency-key': text(fields, 'idempotency-key', { max: 512 }),
    'status-message': text(fields, 'status-message'),
    retry: retryField(fields),
    'not-before': instant(fields, 'not-before', now),
    parked: parkedOnCreate(fields),
    'batch-index': batchIndex,
  });
}

/** On create only `true` means something; `false` is the same as leaving it out. */
function parkedOnCreate(fields: Fields): true | undefined {
  const parked = fields.parked;
  if (parked === undefined || parked === false) return undefined;
  if (parked !== true) throw badRequest(`"parked" must be true or false, got ${describe(parked)}`);
  return true;
}

function parkedOnEdit(fields: Fields): boolean | undefined {
  const parked = fields.parked;
  if (parked === undefined) return undefined;
  if (parked === null) return false;
  if (typeof parked !== 'boolean') throw badRequest(`"parked" must be true, false or null, got ${describe(parked)}`);
  return parked;
}

const EDIT_FIELDS = new Set([
  'state',
  'progress',
  'status-message',
  'return-code',
  'affected-resources',
  'priority',
  'expiry',
  'nested-jobs',
  'tags',
  'acl',
  'executor',
  'attempt',
  'timeout',
  'max-attempts',
  'retry',
  'dead-letter',
  'not-before',
  'parked',
  'counters',
  ...IMMUTABLE_FIELDS,
  ...SERVER_OWNED_FIELDS,
]);

export function parseJobEdit(body: unknown, now: Date = new Date()): JobEdit {
  const fields = asObject(body, 'job edit');
  rejectUnknown(fields, EDIT_FIELDS, 'job edit');
  const executor = fields.executor;
  if (executor !== undefined && executor !== null && typeof executor !== 'string') {
    throw badRequest(`"executor" must be a string or null, got ${describe(executor)}`);
  }
  const immutable: Partial<Record<ImmutableField, unknown>> = {};
  for (const key of IMMUTABLE_FIELDS) if (fields[key] !== undefined) immutable[key] = fields[key];
  return compact<JobEdit>({
    state: oneOf(fields, 'state', JOB_STATES),
    progress: integer(fields, 'progress', 0, 100),
    // Longer messages are truncated by the server, not refused: a stack trace must never be lost.
    'status-message': text(fields, 'status-message'),
    'return-code': integer(fields, 'return-code', -2_147_483_648, 2_147_483_647),
    'affected-resources': links(fields, 'affected-resources'),
    priority: integer(fields, 'priority', 0, 999),
    expiry: date(fields, 'expiry'),
    'nested-jobs': strings(fields, 'nested-jobs'),
    tags: strings(fields, 'tags'),
    acl: plainObject(fields, 'acl'),
    executor,
    attempt: integer(fields, 'attempt', 0, 1_000_000),
    timeout: integer(fields, 'timeout', 1, 31 * 24 * 3600),
    'max-attempts': integer(fields, 'max-attempts', 1, MAX_ATTEMPTS_LIMIT),
    retry: retryField(fields),
    'dead-letter': deadLetter(fields),
    'not-before': fields['not-before'] === null ? null : instant(fields, 'not-before', now),
    parked: parkedOnEdit(fields),
    counters: countersField(fields),
    immutable,
  });
}

/** What an executor claims a job with (the engine's `claim` operation). */
export interface JobClaim {
  readonly executor: string;
  readonly 'status-message'?: string;
  /** The actions the claimant runs: a job of another action is not claimed. */
  readonly actions?: readonly string[];
}

const CLAIM_FIELDS: ReadonlySet<string> = new Set(['executor', 'status-message', 'actions']);

/** The body of the `claim` operation: `{"executor": "<name>@<session>", "status-message"?: "...", "actions"?: ["..."]}`. */
export function parseJobClaim(body: unknown): JobClaim {
  const fields = asObject(body, 'job claim');
  rejectUnknown(fields, CLAIM_FIELDS, 'job claim');
  const { executor, actions } = fields;
  if (typeof executor !== 'string' || executor.trim() === '')
    throw badRequest(`"executor" must name the claiming executor, got ${describe(executor)}`);
  if (actions !== undefined && !(Array.isArray(actions) && actions.every((name) => typeof name === 'string')))
    throw badRequest(`"actions" must be a list of action names, got ${describe(actions)}`);
  return compact<JobClaim>({
    executor,
    'status-message': text(fields, 'status-message'),
    actions: actions === undefined ? undefined : Object.freeze([...actions]),
  });
}

/** The job's `retry` policy: every problem named at once, each with its field. */
function retryField(fields: Fields): JobRetryField | undefined {
  const value = fields.retry;
  if (value === undefined) return undefined;
  const checked = checkRetrySpec(value, 'kebab', '"retry"');
  if ('problems' in checked) throw badRequest(`invalid retry policy: ${checked.problems.join('; ')}`, { field: 'retry' });
  return toJobRetryField(checked.spec);
}

const DEAD_LETTER_FIELDS: ReadonlySet<string> = new Set(['reason', 'attempt', 'at']);
const MAX_DEAD_LETTER_REASON_CHARS = 1000;

/** `{"reason": "...", "attempt"?: n}`; an `at` sent back with a whole document is ignored (the server sets it). */
function deadLetter(fields: Fields): DeadLetterEdit | undefined {
  const value = fields['dead-letter'];
  if (value === undefined) return undefined;
  const letter = asObject(value, '"dead-letter"');
  rejectUnknown(letter, DEAD_LETTER_FIELDS, '"dead-letter"');
  const reason = text(letter, 'reason', { max: MAX_DEAD_LETTER_REASON_CHARS });
  if (reason === undefined || reason.trim() === '') throw badRequest('"dead-letter" needs a non-empty "reason"');
  return compact<DeadLetterEdit>({ reason, attempt: integer(letter, 'attempt', 0, 1_000_000) });
}

/** `{"movedBytes": 10}`: names to finite numbers (at most 64 of them). */
function countersField(fields: Fields): Record<string, number> | undefined {
  const value = fields.counters;
  if (value === undefined) return undefined;
  if (!isCounters(value) || Object.keys(value).length > 64) {
    throw badRequest(`"counters" must be an object of at most 64 names to numbers, got ${describe(value)}`);
  }
  return { ...value };
}

/** The job's `queue`, checked by the rule of queue-layout.ts (it becomes a znode name). */
function queueName(fields: Record<string, unknown>): string | undefined {
  const value = fields['queue'];
  if (value === undefined) return undefined;
  if (!isQueueName(value)) throw badRequest(`"queue" must be a queue name (${QUEUE_NAME_RULE}), got ${describe(value)}`);
  return value;
}

function assertJsonText(payload: string): void {
  try {
    JSON.parse(payload);
  } catch (error) {
    throw badRequest(
      `"payload" must be JSON text (Nuvla stores action arguments as a JSON string): ${error instanceof Error ? error.message : 'invalid'}`,
    );
  }
}
