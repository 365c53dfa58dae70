/**
 * Retry policies: how many attempts a job gets when its attempts fail, and how long it waits between
 * them. An action declares one (`retry` in defineAction, camelCase); a job may override any of its
 * fields (the job's `retry` field, kebab-case as the rest of the document). Both spellings are checked
 * by the same rules here, so an action author and an API client get the same messages; the executor
 * merges job over action over defaults (`resolveRetryPolicy`) and computes each back-off (`backoffMs`).
 * Free of I/O.
 */
import { MAX_ATTEMPTS_LIMIT } from './document.js';

export const BACKOFF_KINDS = ['exponential', 'fixed'] as const;
export type BackoffKind = (typeof BACKOFF_KINDS)[number];

/** The longest wait between two attempts (and the largest cap): 31 days, as a job's timeout. */
export const MAX_RETRY_DELAY_SECONDS = 31 * 24 * 3600;

/** A fully resolved policy, as the executor applies it. */
export interface RetryPolicy {
  /** Attempts in all, the first one included: 1 means no retry. */
  readonly attempts: number;
  readonly backoff: BackoffKind;
  /** The wait before the second attempt; exponential doubles it for each attempt after that. */
  readonly delaySeconds: number;
  /** The exponential back-off stops growing here. */
  readonly maxDelaySeconds: number;
  /** 0-1: each wait is drawn uniformly from [wait x (1 - jitter), wait], so retries of many jobs spread out. */
  readonly jitter: number;
  /**
   * Which failed attempts are retried: 'any', or the return codes worth another attempt (an action
   * that threw has return code 1). A time-out (124) or a crashed thread is retried whatever `on` says;
   * a refused payload (65) never is.
   */
  readonly on: readonly number[] | 'any';
}

/** What an action's `retry` or a job's `retry` gives: any subset of the policy's fields. */
export type RetryPolicySpec = Partial<RetryPolicy>;

/** A job document's `retry` field: the same fields, kebab-case. */
export interface JobRetryField {
  readonly attempts?: number;
  readonly backoff?: BackoffKind;
  readonly 'delay-seconds'?: number;
  readonly 'max-delay-seconds'?: number;
  readonly jitter?: number;
  readonly on?: readonly number[] | 'any';
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = Object.freeze({
  attempts: 1,
  backoff: 'exponential',
  delaySeconds: 1,
  maxDelaySeconds: 3600,
  jitter: 0,
  on: 'any',
});

/** How each policy field is spelt in an action spec and in a job document. */
const SPELLINGS = {
  camel: {
    attempts: 'attempts',
    backoff: 'backoff',
    delaySeconds: 'delaySeconds',
    maxDelaySeconds: 'maxDelaySeconds',
    jitter: 'jitter',
    on: 'on',
  },
  kebab: {
    attempts: 'attempts',
    backoff: 'backoff',
    delaySeconds: 'delay-seconds',
    maxDelaySeconds: 'max-delay-seconds',
    jitter: 'jitter',
    on: 'on',
  },
} as const satisfies Record<string, Record<keyof RetryPolicy, string>>;

export type RetrySpelling = keyof typeof SPELLINGS;

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return typeof value === 'object' ? 'an object' : typeof value;
}

const isSeconds = (value: unknown): value is number =>
  typeof value === 'number' && Number.isFinite(value) && value >= 0 && value <= MAX_RETRY_DELAY_SECONDS;

/**
 * Checks a policy given as `spelling` (camelCase in an action, kebab-case in a job). Returns the
 * policy in camelCase, or every problem found, each naming its field as `where`.`field`.
 */
export function checkRetrySpec(
  value: unknown,
  spelling: RetrySpelling,
  where: string,
): { readonly spec: RetryPolicySpec } | { readonly problems: readonly string[] } {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { problems: [`${where} must be an object like {"attempts": 3}, got ${describe(value)}`] };
  }
  const fields = value as Record<string, unknown>;
  const names = SPELLINGS[spelling];
  const problems: string[] = [];
  const spec: { -readonly [K in keyof RetryPolicy]?: RetryPolicy[K] } = {};
  const field = (key: keyof RetryPolicy): string => `${where}.${names[key]}`;
  const known = new Set<string>(Object.values(names));
  const unknown = Object.keys(fields).filter((key) => !known.has(key));
  if (unknown.length > 0) problems.push(`${where} has unknown field(s) ${unknown.join(', ')}; expected ${[...known].join(', ')}`);

  const attempts = fields[names.attempts];
  if (attempts !== undefined) {
    if (typeof attempts !== 'number' || !Number.isInteger(attempts) || attempts < 1 || attempts > MAX_ATTEMPTS_LIMIT)
      problems.push(`${field('attempts')} must be an integer from 1 to ${MAX_ATTEMPTS_LIMIT}, got ${describe(attempts)}`);
    else spec.attempts = attempts;
  }
  const backoff = fields[names.backoff];
  if (backoff !== undefined) {
    if (typeof backoff !== 'string' || !(BACKOFF_KINDS as readonly string[]).includes(backoff))
      problems.push(`${field('backoff')} must be one of ${BACKOFF_KINDS.join(', ')}, got ${describe(backoff)}`);
    else spec.backoff = backoff as BackoffKind;
  }
  for (const key of ['delaySeconds', 'maxDelaySeconds'] as const) {
    const seconds = fields[names[key]];
    if (seconds === undefined) continue;
    if (!isSeconds(seconds))
      problems.push(`${field(key)} must be a number of seconds from 0 to ${MAX_RETRY_DELAY_SECONDS}, got ${describe(seconds)}`);
    else spec[key] = seconds;
  }
  if (spec.delaySeconds !== undefined && spec.maxDelaySeconds !== undefined && spec.maxDelaySeconds < spec.delaySeconds)
    problems.push(
      `${field('maxDelaySeconds')} (${spec.maxDelaySeconds}) must not be less than ${field('delaySeconds')} (${spec.delaySeconds})`,
    );
  const jitter = fields[names.jitter];
  if (jitter !== undefined) {
    if (typeof jitter !== 'number' || !Number.isFinite(jitter) || jitter < 0 || jitter > 1)
      problems.push(`${field('jitter')} must be a fraction from 0 to 1, got ${describe(jitter)}`);
    else spec.jitter = jitter;
  }
  const on = fields[names.on];
  if (on !== undefined) {
    if (on === 'any') spec.on = 'any';
    else if (
      !Array.isArray(on) ||
      on.length === 0 ||
      !on.every((code) => typeof code === 'number' && Number.isInteger(code) && code !== 0 && Math.abs(code) <= 2_147_483_647)
    )
      problems.push(`${field('on')} must be "any" or a non-empty list of non-zero integer return codes, got ${describe(on)}`);
    else spec.on = Object.freeze([...(on as number[])]);
  }
  return problems.length > 0 ? { problems } : { spec: Object.freeze(spec) };
}

/** A checked camelCase spec as a job's `retry` field. */
export function toJobRetryField(spec: RetryPolicySpec): JobRetryField {
  const field: Record<string, unknown> = {};
  for (const key of Object.keys(SPELLINGS.kebab) as (keyof RetryPolicy)[]) {
    if (spec[key] !== undefined) field[SPELLINGS.kebab[key]] = spec[key];
  }
  return field;
}

/** The policy a job runs under: its own `retry` fields over its action's over the defaults. */
export function resolveRetryPolicy(action: RetryPolicySpec | undefined, job: JobRetryField | undefined): RetryPolicy {
  const fromJob: RetryPolicySpec = job === undefined ? {} : fromJobField(job);
  return Object.freeze({ ...DEFAULT_RETRY_POLICY, ...(action ?? {}), ...fromJob });
}

function fromJobField(job: JobRetryField): RetryPolicySpec {
  const checked = checkRetrySpec(job, 'kebab', 'retry');
  // The job API checked it on the way in; a document that fails here is treated as giving nothing.
  return 'spec' in checked ? checked.spec : {};
}

/**
 * The wait after failed attempt `n` (1-based, counted in the current round) before the next one:
 * exponential: delay x 2^(n-1), capped by maxDelay; fixed: delay; then jitter. `random` is in [0, 1).
 */
export function backoffMs(policy: RetryPolicy, n: number, random: number): number {
  // The exponent is bounded so that 2^(n-1) stays a finite number for any attempt count.
  const seconds =
    policy.backoff === 'fixed'
      ? policy.delaySeconds
      : Math.min(policy.maxDelaySeconds, policy.delaySeconds * 2 ** Math.max(0, Math.min(n - 1, 60)));
  return Math.round(seconds * 1000 * (1 - policy.jitter * random));
}
