/**
 * One job from the queue to the end: read its document, decide (disposition.ts), claim it
 * (job-claim.ts), run its action in the slot's thread under a timeout and write the result
 * (job-run.ts), and only then consume the entry. Each of those paths returns the job's exit
 * (job-exit.ts): what becomes of the entry and what is counted, carried out here in one place.
 */
import type { JobApiClient } from '../api/client/index.js';
import type { QueueItem } from '../recipes/locking-queue.js';
import type { QueueConsumer } from '../recipes/queue-set.js';
import type { ExecutorRegistry } from '../recipes/executor-registry.js';
import { messageOf, toError } from '../util/errors.js';
import { withFields, type Logger } from '../util/logger.js';
import type { DiscoveredAction } from './action-discovery.js';
import type { ActionOffers } from './action-offers.js';
import type { ApiGate } from './api-gate.js';
import type { ActionLimits } from './action-limits.js';
import { claimJob, type ClaimDeps, type PermitHold } from './job-claim.js';
import { describeEntryData, parseEntryData } from '../recipes/queue-layout.js';
import {
  applyExit,
  consumeEntry,
  ended,
  leaveEntry,
  line,
  rejectEntry,
  releaseEntry,
  requeueJob,
  skipped,
  type ExitDeps,
  type JobExit,
} from './job-exit.js';
import { JobTally, type JobObserver } from './job-observer.js';
import { runClaimed, type ActiveRun, type ClaimedJob, type RunDeps, type RunningJob, type SlotThreads } from './job-run.js';
import type { JobWatch } from './job-watch.js';
import type { JobWrites } from './job-writes.js';
import { OwnershipLostError, type OwnedJob } from './owned-job.js';
import type { StopReason } from './run-outcome.js';

export type { ActionRunner, RunningJob, SlotThreads } from './job-run.js';

export interface RunnerTimings {
  /** From the action's signal to terminating its thread. */
  readonly killGraceMs: number;
  readonly progressIntervalMs: number;
  /** A missing document is looked up this many times, this far apart (Nuvla: twice, 2 s apart). */
  readonly notFoundAttempts: number;
  readonly notFoundRetryMs: number;
}

export interface RunnerDeps {
  readonly api: JobApiClient;
  readonly writes: JobWrites;
  readonly queue: QueueConsumer;
  readonly registry: ExecutorRegistry;
  readonly gate: ApiGate;
  readonly watch: JobWatch;
  readonly actions: ReadonlyMap<string, DiscoveredAction>;
  /** Where the actions not loaded here can run. */
  readonly offers: ActionOffers;
  /** Actions loaded but not offered (action-policy.ts), with the reason their jobs fail with. */
  readonly withheld: ReadonlyMap<string, string>;
  /** This executor's registered name. */
  readonly name: string;
  /** `--max-attempts`: a job's own `max-attempts` field, or its action's `maxAttempts`, overrides it. */
  readonly maxAttempts: number;
  readonly logger: Logger;
  readonly timings: RunnerTimings;
  /** Aborted when the executor stops waiting for writes (the end of a shutdown). */
  readonly giveUp: AbortSignal;
  /** Told what became of each job and entry (the executor's metrics). */
  readonly observer?: JobObserver;
  /** Fleet-wide limits per action; none: no action is limited. */
  readonly limits?: ActionLimits;
}

export class JobRunner {
  readonly #deps: RunnerDeps;
  readonly #active = new Map<number, ActiveRun>();
  /** Jobs a slot of this executor is handling, from the take to the entry's exit. */
  readonly #inHand = new Set<string>();
  readonly #claimDeps: ClaimDeps;
  readonly #runDeps: RunDeps;
  readonly #exitDeps: ExitDeps;

  constructor(deps: RunnerDeps) {
    this.#deps = deps;
    const tally = new JobTally<QueueItem>(deps.observer, (action) => deps.actions.has(action));
    this.#claimDeps = Object.freeze({
      ...deps,
      actionNames: Object.freeze([...deps.actions.keys()]),
      tally,
    });
    this.#runDeps = Object.freeze({ ...deps, tally, active: this.#active });
    this.#exitDeps = Object.freeze({ queue: deps.queue, tally, giveUp: deps.giveUp });
  }

  running(): RunningJob[] {
    return [...this.#active.values()].map(({ info, progress }) => ({ ...info, progress: progress.latest }));
  }

  /** Stops every running action (the executor is shutting down). */
  stopAll(reason: StopReason, detail: string): void {
    for (const run of this.#active.values()) run.stop(reason, detail);
  }

  /** Never rejects: every failure ends in a log line and the entry consumed, released, rejected, or left to its session. */
  async process(item: QueueItem, slot: SlotThreads): Promise<void> {
    const entry = parseEntryData(item.data);
    if ('problem' in entry) {
      // Released, it would come straight back here, for ever: settle it once instead.
      const log = withFields(this.#deps.logger, { entry: item.name, slot: slot.index });
      const rejection = line('error', `entry rejected, ${entry.problem}; moved to ${item.paths.rejected}/${item.name}`, {
        data: describeEntryData(item.data),
      });
      await applyExit(item, rejectEntry(log, rejection), this.#exitDeps);
      return;
    }
    const log = withFields(this.#deps.logger, { jobId: entry.jobId, entry: item.name, slot: slot.index });
    if (this.#inHand.has(entry.jobId)) {
      // A second entry of a job another slot here holds: every claim of this executor carries the
      // same owner, so the API cannot tell the two slots apart. The other slot keeps its own entry
      // until the job is done with, so this one can go.
      const detail = 'another slot of this executor is handling the job (a duplicate entry)';
      await applyExit(
        item,
        consumeEntry(log, skipped('duplicate'), line('info', 'nothing to run: entry consumed', { detail })),
        this.#exitDeps,
      );
      return;
    }
    this.#inHand.add(entry.jobId);
    // A limited action's lease is held from before the claim until the entry's exit is carried out.
    const hold: PermitHold = { permit: undefined };
    try {
      const exit = await this.#handle(item, slot, log, hold);
      await applyExit(item, exit, this.#exitDeps);
      if (exit.entry !== 'release' && exit.entry !== 'requeue') this.#deps.limits?.forget(item);
    } finally {
      this.#inHand.delete(entry.jobId);
      await hold.permit?.release();
    }
  }

  /** The job's exit; a failure in the claim phase or in the run phase becomes one too. */
  async #handle(item: QueueItem, slot: SlotThreads, log: Logger, hold: PermitHold): Promise<JobExit> {
    let claimed: ClaimedJob;
    try {
      const claim = await claimJob(item, log, this.#claimDeps, hold);
      if ('exit' in claim) return claim.exit;
      claimed = claim.claimed;
    } catch (error) {
      return this.#failed(error, undefined, log);
    }
    try {
      return await runClaimed(item, slot, claimed, this.#runDeps);
    } catch (error) {
      return this.#failed(error, claimed.owned, log);
    }
  }

  /** The exit of a job whose handling failed; `owned` when this executor had claimed it. */
  #failed(error: unknown, owned: OwnedJob | undefined, log: Logger): JobExit {
    if (error instanceof OwnershipLostError && error.reason === 'session-lost') {
      return leaveEntry(
        log,
        ended('lost'),
        line('warn', 'ZooKeeper session lost: the job is left to the executor that takes its entry next', { error }),
      );
    }
    const failure = line('error', 'job handling failed; its entry goes back to the queue', { error: toError(error) });
    // A job this executor claimed must not be released as RUNNING on a live owner: whoever took the
    // entry next would leave it to us, and nobody would run it.
    if (owned === undefined) return releaseEntry(log, { kind: 'ended-else-skipped', outcome: 'released', reason: 'error' }, failure);
    return requeueJob(log, owned, `executor ${this.#deps.name} could not handle the job (${messageOf(error)})`, failure);
  }
}
