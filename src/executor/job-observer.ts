import type { Disposition } from './disposition.js';
import type { LostReason } from './owned-job.js';
import type { StopReason } from './run-outcome.js';

/**
 * What the job runner tells whoever counts its work (the executor's metrics): every job it takes
 * on and how that ends, and every entry it handed back or consumed without running anything. The
 * runner reports at the point where it decides; counting is the observer's business.
 *
 * A job is "taken" once this executor is responsible for its result: its action is about to run, or
 * it is about to be failed without running (an action no module here defines). Each taken job then
 * ends exactly once, in one of JOB_OUTCOMES (unless the process dies first).
 */

export const JOB_OUTCOMES = [
  /** SUCCESS recorded. */
  'succeeded',
  /** FAILED recorded: the action failed, threw or crashed, its payload was refused, or no module defines it. */
  'failed',
  /** FAILED recorded because the action outlasted its timeout. */
  'timed_out',
  /** The attempt failed and its retry policy allows another: QUEUED again with a `not-before` time. */
  'retry_scheduled',
  /** The attempt failed and was the last its retry policy (or max-attempts) allows: FAILED and dead-lettered. */
  'dead_lettered',
  /** Someone canceled the job while it ran; the action was stopped. */
  'cancelled',
  /** Handed back to the queue, QUEUED again (the executor stopping, or a failure while handling it). */
  'released',
  /** No longer this executor's: its ZooKeeper session was lost, or another executor or a deletion took the job. */
  'lost',
] as const;
export type JobOutcome = (typeof JOB_OUTCOMES)[number];

/** Why an entry was consumed or released without running its job. */
export const SKIP_REASONS = [
  /** No document, even after a second look. */
  'not_found',
  /** Already SUCCESS, FAILED or CANCELED. */
  'final',
  /** RUNNING on another live executor (a duplicate entry). */
  'owned_elsewhere',
  /** QUEUED past its `expiry`: made CANCELED without running, and consumed. */
  'expired',
  /** QUEUED with a `not-before` still to come (enqueued early): consumed, the scheduler enqueues it when due. */
  'not_due',
  /** Being handled by another slot of this executor (a duplicate entry). */
  'duplicate',
  /** A newer schema version: left for a newer executor. */
  'newer_schema',
  /** Its action is not offered here but by another live executor: released, set aside for a while. */
  'action_elsewhere',
  /** Its action is offered by no live executor yet, within the grace: released, set aside for a while. */
  'action_unoffered',
  /** The job API could not be reached: released. */
  'api_unreachable',
  /** Its action is at its fleet-wide limit (maxConcurrent, ratePerSecond): released, set aside until a permit may be had. */
  'limited',
  /** The job kept changing while it was being claimed: released. */
  'contended',
  /** Handling it failed before it was claimed: released. */
  'error',
  /** Its data is not a job id: moved under the queue's rejected/ (also counted in entries_rejected_total). */
  'not_a_job_id',
] as const;
export type SkipReason = (typeof SKIP_REASONS)[number];

/**
 * The action label of a job whose action no module here defines: the action name comes from the job
 * document, which anyone allowed to create jobs writes, and must not mint new metric series.
 */
export const UNKNOWN_ACTION = '_unknown';

export interface JobObserver {
  taken(action: string): void;
  /** `seconds` from taken to the outcome (the action's run, the result's write, the entry's release). */
  ended(action: string, outcome: JobOutcome, seconds: number): void;
  skipped(reason: SkipReason): void;
  /** A job of an action at its fleet-wide limit was deferred (action-limits.ts). */
  deferred?(action: string, reason: 'concurrency' | 'rate'): void;
}

const ignore = (): void => undefined;

export const IGNORE_JOBS: JobObserver = Object.freeze({ taken: ignore, ended: ignore, skipped: ignore });

type DispositionReason = Extract<Disposition, { readonly kind: 'consume' | 'release' }>['reason'];

const SKIPPED_BY_DISPOSITION: Readonly<Record<DispositionReason, SkipReason>> = {
  'not-found': 'not_found',
  final: 'final',
  'owned-elsewhere': 'owned_elsewhere',
  'not-due': 'not_due',
  'newer-schema': 'newer_schema',
  'action-elsewhere': 'action_elsewhere',
  'action-unoffered': 'action_unoffered',
};

export function skipReasonOf(reason: DispositionReason): SkipReason {
  return SKIPPED_BY_DISPOSITION[reason];
}

/** A run stopped, or a write refused, because the job is no longer ours. */
export function outcomeOfLoss(reason: LostReason | StopReason): JobOutcome {
  return reason === 'canceled' ? 'cancelled' : 'lost';
}

/**
 * The runner's bookkeeping for its observer: which taken jobs have not ended yet (keyed by their
 * queue item), so each reports one outcome, the first one decided, with the time since it was taken.
 */
export class JobTally<Key> {
  readonly #observer: JobObserver;
  readonly #isKnownAction: (action: string) => boolean;
  readonly #open = new Map<Key, { readonly action: string; readonly at: number }>();

  constructor(observer: JobObserver | undefined, isKnownAction: (action: string) => boolean) {
    this.#observer = observer ?? IGNORE_JOBS;
    this.#isKnownAction = isKnownAction;
  }

  taken(key: Key, action: string): void {
    const label = this.#isKnownAction(action) ? action : UNKNOWN_ACTION;
    this.#open.set(key, { action: label, at: Date.now() });
    this.#observer.taken(label);
  }

  /** False when `key` was never taken, or has ended already. */
  ended(key: Key, outcome: JobOutcome): boolean {
    const open = this.#open.get(key);
    if (open === undefined) return false;
    this.#open.delete(key);
    this.#observer.ended(open.action, outcome, (Date.now() - open.at) / 1000);
    return true;
  }

  skipped(reason: SkipReason): void {
    this.#observer.skipped(reason);
  }
}
