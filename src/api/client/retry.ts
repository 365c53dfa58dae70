/**
 * When a failed call is tried again, and after how long.
 *
 * Only idempotent calls are retried: reads, unconditional edits, deletes, creates carrying an
 * idempotency key, logins. A conditional edit (If-Match) or a cancel is not: when the reply to a
 * first try that worked is lost, the replay answers 412 (the revision moved: by our own edit) or 409
 * (the job is already CANCELED: by our own cancel), which would turn a success into a failure, or
 * worse, into a caller re-reading and re-deciding on a state it produced itself. Those calls fail
 * with `maybeApplied` set and leave the decision (re-read, compare) to the caller.
 */
import { TRANSIENT_STATUSES } from './errors.js';
import type { RetryPolicy } from './options.js';

/**
 * Exponential back-off with full jitter: a uniformly random wait up to base x 2^(retry-1), capped.
 * The randomness keeps the many slots of an executor (or many executors) that failed together from
 * coming back together. A server's Retry-After, when given, is a floor (within the cap).
 */
export function backoffDelayMs(retry: number, policy: RetryPolicy, retryAfter?: string, random: () => number = Math.random): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** Math.max(0, retry - 1));
  const jittered = Math.floor(random() * ceiling);
  const floor = retryAfterMs(retryAfter);
  return floor === undefined ? jittered : Math.max(jittered, Math.min(floor, policy.maxDelayMs));
}

/** Statuses worth a retry of an idempotent call; 500 only for reads, which cannot have half-happened. */
export function isRetryableStatus(status: number, retryOn500: boolean): boolean {
  return TRANSIENT_STATUSES.has(status) || (retryOn500 && status === 500);
}

/** Retry-After in seconds (the HTTP-date form is rare from APIs, and ignored). */
function retryAfterMs(value: string | undefined): number | undefined {
  if (value === undefined || !/^\s*\d+\s*$/.test(value)) return undefined;
  return Number(value) * 1000;
}
