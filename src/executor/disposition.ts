/**
 * What the executor does with a job id it took from the queue, decided in one place and free of I/O
 * (docs/contracts.md §5 lists Nuvla's answers; ours differ where Nuvla loses or duplicates work). The caller
 * gathers the facts (the document, whether its recorded owner is alive) and carries the answer out.
 */
import { JOB_SCHEMA_VERSION, TIMED_OUT_RETURN_CODE, isDelayed, isExpired, isFinal, type JobDocument } from '../api/job/document.js';
import type { ActionAvailability } from './action-offers.js';

/** Return codes the engine itself gives a job, apart from the action's own. */
export const RETURN_CODES = Object.freeze({
  /** The action threw, or its thread crashed. */
  actionError: 1,
  /** The payload was refused before the action ran. */
  badPayload: 65,
  /** As timeout(1) reports it. */
  timedOut: TIMED_OUT_RETURN_CODE,
  /** As a shell reports a command it cannot find. */
  unknownAction: 127,
});

export type JobLookup = { readonly found: false } | { readonly found: true; readonly job: JobDocument };

export interface DispositionFacts {
  readonly lookup: JobLookup;
  readonly knownAction: (name: string) => boolean;
  /** Why an action this executor loaded is not offered (e.g. `command` without --allow-command), if it is withheld. */
  readonly withheldReason?: (name: string) => string | undefined;
  /** For a RUNNING job with a recorded owner: whether that owner is a live executor session. */
  readonly ownerAlive: boolean | undefined;
  /**
   * For a RUNNING job: a live session, not one of this engine's executors, holding another entry of
   * the job (a kazoo consumer such as Nuvla's executor), described for the log.
   */
  readonly foreignHolder?: string | undefined;
  /** Attempts that may end without a result before the job is failed (the job's field, else the executor's); none: no cap. */
  readonly maxAttempts?: number;
  /** For a job whose action is not known here: where else it can run (action-offers.ts). */
  readonly availability?: ActionAvailability;
  /** The time of the decision (ms since the epoch), for `not-before`; default: the clock's. */
  readonly now?: number;
}

export type Disposition =
  /** The document does not exist (after the retry window): nothing to run. */
  | { readonly kind: 'consume'; readonly reason: 'not-found' | 'final' | 'owned-elsewhere' | 'not-due'; readonly detail: string }
  /** Another engine version must run it. */
  | { readonly kind: 'release'; readonly reason: 'newer-schema'; readonly detail: string }
  /**
   * Another executor offers its action, or none does yet but the grace is not over: leave the entry,
   * and do not take it again here for `setAsideMs`.
   */
  | {
      readonly kind: 'release';
      readonly reason: 'action-elsewhere' | 'action-unoffered';
      readonly detail: string;
      readonly setAsideMs: number;
    }
  /** Cannot run here, ever: make it FAILED, then consume. */
  | {
      readonly kind: 'fail';
      readonly reason: 'unknown-action' | 'attempts-exhausted';
      readonly detail: string;
      readonly returnCode: number;
    }
  /**
   * Not started before its `expiry`: it must not run. CANCELED (nothing failed: it was not wanted any
   * more), then consume.
   */
  | { readonly kind: 'cancel'; readonly reason: 'expired'; readonly detail: string }
  /** Run it: claim it as `attempt`. */
  | { readonly kind: 'claim'; readonly attempt: number; readonly previousOwner: string | undefined; readonly detail: string };

/** How a job whose action no module here defines ends, when nobody else was asked (an invariant broken). */
export function unknownAction(action: string, withheld?: string): { readonly returnCode: number; readonly detail: string } {
  const why = withheld ?? 'no action module of this executor defines it';
  return { returnCode: RETURN_CODES.unknownAction, detail: `unknown action "${action}": ${why}` };
}

/** How a job whose action no live executor offered for the whole grace ends. */
export function unofferedAction(
  action: string,
  waitedMs: number,
  withheld?: string,
): { readonly returnCode: number; readonly detail: string } {
  const here = withheld === undefined ? '' : `; ${withheld}`;
  return {
    returnCode: RETURN_CODES.unknownAction,
    detail: `unknown action "${action}": no live executor offers action "${action}" (none did for ${seconds(waitedMs)} s)${here}`,
  };
}

const seconds = (ms: number): string => String(Math.round(ms / 100) / 10);

/** A job whose action this executor lacks: left to the executors that offer it, or failed after the grace. */
function elsewhereOrFail(action: string, availability: ActionAvailability | undefined, withheld: string | undefined): Disposition {
  if (availability === undefined) return { kind: 'fail', reason: 'unknown-action', ...unknownAction(action, withheld) };
  if (availability.kind === 'elsewhere') {
    return {
      kind: 'release',
      reason: 'action-elsewhere',
      detail: `action "${action}" is not offered here; left to ${availability.executors.join(', ')}`,
      setAsideMs: availability.setAsideMs,
    };
  }
  if (availability.setAsideMs !== undefined) {
    return {
      kind: 'release',
      reason: 'action-unoffered',
      detail: `no live executor offers action "${action}" (for ${seconds(availability.waitedMs)} s); the job fails once none has for ${seconds(availability.graceMs)} s`,
      setAsideMs: availability.setAsideMs,
    };
  }
  return { kind: 'fail', reason: 'unknown-action', ...unofferedAction(action, availability.waitedMs, withheld) };
}

export function decide(facts: DispositionFacts): Disposition {
  const { lookup } = facts;
  if (!lookup.found) return { kind: 'consume', reason: 'not-found', detail: 'the job document does not exist' };
  const { job } = lookup;
  if (isFinal(job.state)) return { kind: 'consume', reason: 'final', detail: `the job is already ${job.state}` };
  if (job.version > JOB_SCHEMA_VERSION) {
    return {
      kind: 'release',
      reason: 'newer-schema',
      detail: `the job has schema version ${job.version}; this executor understands up to ${JOB_SCHEMA_VERSION}`,
    };
  }
  if (job.state === 'RUNNING' && facts.ownerAlive === true) {
    // A duplicate entry: the live owner holds its own entry and will finish the job.
    return { kind: 'consume', reason: 'owned-elsewhere', detail: `the job is RUNNING on live executor ${job.executor ?? '?'}` };
  }
  if (job.state === 'RUNNING' && facts.foreignHolder !== undefined) {
    // Whatever wrote the job's owner: the process holding its other entry runs it (docs/contracts.md §5).
    return { kind: 'consume', reason: 'owned-elsewhere', detail: `the job is RUNNING under ${facts.foreignHolder}` };
  }
  const now = facts.now ?? Date.now();
  if (job.state === 'QUEUED' && isExpired(job, now)) {
    return { kind: 'cancel', reason: 'expired', detail: `expired: not started before its expiry ${job.expiry ?? ''}` };
  }
  if (job.state === 'QUEUED' && isDelayed(job, now)) {
    // Enqueued before its time (by an edit that delayed it, or a producer's early clock): the API would
    // refuse the claim; the scheduler enqueues it again when due, as it does every QUEUED job due.
    return {
      kind: 'consume',
      reason: 'not-due',
      detail: `the job is not due before ${job['not-before'] ?? '?'}; the scheduler enqueues it then`,
    };
  }
  if (!facts.knownAction(job.action)) return elsewhereOrFail(job.action, facts.availability, facts.withheldReason?.(job.action));
  const attempt = (job.attempt ?? 0) + 1;
  if (job.state === 'RUNNING') {
    const owner = job.executor;
    // Found RUNNING with nobody alive to run it: its last attempt ended without a result. A job that
    // kills whatever runs it (a poison job) would otherwise take down one executor after the other.
    // Counted in the current round: an operator's retry starts a new one (retry-plan.ts).
    const ended = (job.attempt ?? 0) - (job['retried-at-attempt'] ?? 0);
    if (facts.maxAttempts !== undefined && ended >= facts.maxAttempts) {
      const cause = owner === undefined ? 'it was left RUNNING with no recorded owner' : `executor ${owner} died while running it`;
      return {
        kind: 'fail',
        reason: 'attempts-exhausted',
        returnCode: RETURN_CODES.actionError,
        detail:
          `gave up after ${String(ended)} ${ended === 1 ? 'attempt' : 'attempts'}, max-attempts ${String(facts.maxAttempts)}: ` +
          `none ended with a result (the last: ${cause}); not run again`,
      };
    }
    return {
      kind: 'claim',
      attempt,
      previousOwner: owner,
      detail:
        owner === undefined
          ? `the job was RUNNING with no recorded owner; running it again as attempt ${attempt}`
          : `executor ${owner} died while running the job; running it again as attempt ${attempt}`,
    };
  }
  return { kind: 'claim', attempt, previousOwner: undefined, detail: `running attempt ${attempt}` };
}
