/**
 * What a failed attempt leads to under the job's retry policy (docs/contracts.md §5): another attempt
 * later (QUEUED with a `not-before` time, its entry consumed: the scheduler enqueues it when due), the
 * job given up (FAILED and dead-lettered: it failed its last attempt), or the plain final write. Free
 * of I/O: the run phase (job-run.ts) gathers the facts and writes the answer.
 *
 * One attempt counter: `attempt` counts every claim of the job; the policy's `attempts` (and
 * `max-attempts`) count those after `retried-at-attempt` (an operator's retry starts a new round).
 */
import type { JobChanges } from '../api/client/inputs.js';
import type { JobDocument } from '../api/job/document.js';
import { backoffMs, resolveRetryPolicy, type RetryPolicy, type RetryPolicySpec } from '../api/job/retry-policy.js';
import type { ThreadResult } from './action-thread.js';
import type { Stopped } from './run-outcome.js';

/** How a failed attempt counts for `on`: always retried, never, or if its return code is listed. */
export type Retryability = 'always' | 'never' | 'by-code';

/** Failures the engine itself saw (a time-out, a thread that crashed or was killed) are always worth another try. */
export function retryabilityOf(result: ThreadResult, stopped: Stopped | undefined): Retryability {
  if (stopped?.reason === 'timeout') return 'always';
  switch (result.kind) {
    case 'returned':
      return 'by-code';
    // A payload the action refused is refused again: only a new job can fix it.
    case 'threw':
      return result.payload ? 'never' : 'by-code';
    case 'crashed':
    case 'killed':
      return 'always';
  }
}

export interface RetryFacts {
  /** The job as claimed: its own `retry` field and `retried-at-attempt`. */
  readonly job: Pick<JobDocument, 'retry' | 'retried-at-attempt'>;
  /** The action's own policy, if it declares one. */
  readonly actionPolicy: RetryPolicySpec | undefined;
  /** The attempt that failed (`attempt` of the claim). */
  readonly attempt: number;
  readonly retryability: Retryability;
  readonly now: number;
  /** In [0, 1), for the jitter. */
  readonly random: number;
}

export type AfterFailure =
  | { readonly kind: 'final'; readonly changes: JobChanges }
  | { readonly kind: 'retry'; readonly changes: JobChanges; readonly notBefore: string; readonly delayMs: number }
  | { readonly kind: 'dead-letter'; readonly changes: JobChanges; readonly reason: string };

/** The attempts of the current round so far, the failed one included. */
export function attemptsInRound(attempt: number, retriedAt: number | undefined): number {
  return Math.max(1, attempt - (retriedAt ?? 0));
}

/** `failed`: the final write of a FAILED attempt (finalChanges). */
export function planAfterFailure(failed: JobChanges, facts: RetryFacts): AfterFailure {
  const policy = resolveRetryPolicy(facts.actionPolicy, facts.job.retry);
  const code = failed['return-code'] ?? 1;
  if (policy.attempts <= 1 || !covered(policy, facts.retryability, code)) return { kind: 'final', changes: failed };
  const n = attemptsInRound(facts.attempt, facts.job['retried-at-attempt']);
  if (n >= policy.attempts) {
    const reason = `gave up after ${String(n)} attempts (retry policy attempts ${String(policy.attempts)}): the last failed with return code ${String(code)}`;
    return { kind: 'dead-letter', reason, changes: { ...failed, 'dead-letter': { reason, attempt: facts.attempt } } };
  }
  const delayMs = backoffMs(policy, n, facts.random);
  const notBefore = new Date(facts.now + delayMs).toISOString();
  const message = failed['status-message'];
  const why = message === undefined || message === '' ? '' : `: ${firstLine(message)}`;
  return {
    kind: 'retry',
    delayMs,
    notBefore,
    changes: {
      state: 'QUEUED',
      executor: null,
      progress: 0,
      'not-before': notBefore,
      'return-code': code,
      'status-message':
        `attempt ${String(n)} of ${String(policy.attempts)} failed with return code ${String(code)}${why}; ` +
        `attempt ${String(n + 1)} runs at ${notBefore} (in ${(delayMs / 1000).toFixed(1)} s)`,
    },
  };
}

function covered(policy: RetryPolicy, retryability: Retryability, code: number): boolean {
  if (retryability !== 'by-code') return retryability === 'always';
  return policy.on === 'any' || policy.on.includes(code);
}

function firstLine(text: string): string {
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 299)}…` : line;
}
