/**
 * The run phase of a job this executor has claimed: its action in the slot's thread under a timeout,
 * then the result written; it returns the job's exit (job-exit.ts). Whatever stops a run early
 * (timeout, cancel, the job given to another executor, the ZooKeeper session lost, the executor
 * stopping) goes through one path, the run's RunStopper (run-stopper.ts): the action's signal first,
 * then the thread is terminated if the action has not ended after the grace period; once the action
 * has ended, nothing of the run reaches the thread.
 */
import type { JobChanges } from '../api/client/inputs.js';
import type { JobApiClient } from '../api/client/index.js';
import type { JobDocument } from '../api/job/document.js';
import type { QueueItem } from '../recipes/locking-queue.js';
import { messageOf, toError } from '../util/errors.js';
import { withFields, type Logger } from '../util/logger.js';
import type { DiscoveredAction } from './action-discovery.js';
import type { ActionIsolation } from '../sdk/action.js';
import type { RunHooks, ThreadResult, ThreadRun } from './action-thread.js';
import { RETURN_CODES, unknownAction } from './disposition.js';
import { consumeEntry, ended, line, requeueJob, type JobExit } from './job-exit.js';
import { UNKNOWN_ACTION, outcomeOfLoss, type JobOutcome, type JobTally } from './job-observer.js';
import type { JobWatch } from './job-watch.js';
import { OwnershipLostError, type OwnedJob } from './owned-job.js';
import { ProgressWriter } from './progress-writer.js';
import { finalChanges, type StopReason, type Stopped } from './run-outcome.js';
import { planAfterFailure, retryabilityOf, type AfterFailure } from './retry-plan.js';
import { RunStopper } from './run-stopper.js';
import { awaitFreshLease, leaseIsOver, shareLeaseDeadline } from './lease-gate.js';
import { awaitEarlierRunEnded, firstAttemptAfterRetry } from './earlier-run.js';

/** Where a job's action runs: the slot's worker thread, or the executor's event loop (in-process-runner.ts). */
export interface ActionRunner {
  readonly threadId: number;
  run(file: string, job: JobDocument, hooks: RunHooks, leaseDeadline?: SharedArrayBuffer): ThreadRun;
}

export interface SlotThreads {
  readonly index: number;
  /** The runner for an action of this isolation: the slot's thread (started if it has none) unless in-process. */
  runner(isolation: ActionIsolation | undefined): ActionRunner;
}

export interface RunningJob {
  readonly jobId: string;
  readonly action: string;
  readonly slot: number;
  readonly attempt: number;
  readonly startedAt: number;
  readonly threadId: number;
  readonly progress: { percent: number; message: string | undefined } | undefined;
}

/** A run in progress, as the runner lists and stops it. */
export interface ActiveRun {
  readonly info: Omit<RunningJob, 'progress'>;
  readonly progress: ProgressWriter;
  readonly stop: (reason: StopReason, detail: string) => void;
}

/** A job this executor has claimed (its document says RUNNING on this executor), with its log fields. */
export interface ClaimedJob {
  readonly job: JobDocument;
  readonly owned: OwnedJob;
  /** Carries the job's id, entry, slot and action. */
  readonly log: Logger;
}

export interface RunDeps {
  /** With Nuvla's API there is no `not-before` nor `dead-letter` to write: no automatic retries. */
  readonly api: Pick<JobApiClient, 'compatibility'>;
  readonly actions: ReadonlyMap<string, DiscoveredAction>;
  readonly watch: JobWatch;
  readonly timings: { readonly killGraceMs: number; readonly progressIntervalMs: number };
  /** This executor's registered name. */
  readonly name: string;
  readonly giveUp: AbortSignal;
  readonly tally: JobTally<QueueItem>;
  /** The runs in progress by slot index, for the runner to list and stop. */
  readonly active: Map<number, ActiveRun>;
}

/** Runs a claimed job, or fails it when no action here has its name. Throws what the runner turns into a failure exit. */
export async function runClaimed(item: QueueItem, slot: SlotThreads, claimed: ClaimedJob, deps: RunDeps): Promise<JobExit> {
  const { job, owned, log } = claimed;
  if (!deps.actions.has(job.action)) {
    const { returnCode, detail } = unknownAction(job.action);
    return failBeforeRun(item, owned, returnCode, detail, log, deps);
  }
  return execute(item, slot, job, owned, withFields(log, { attempt: owned.attempt }), deps);
}

/**
 * Jobs that cannot run end up here: FAILED, then the entry consumed. `deadLetter`: the engine gives the
 * job up (its attempts are exhausted), so it is marked dead-lettered with that reason.
 */
export async function failBeforeRun(
  item: QueueItem,
  owned: OwnedJob,
  returnCode: number,
  detail: string,
  log: Logger,
  deps: Pick<RunDeps, 'giveUp' | 'tally' | 'api'>,
  deadLetter?: string,
): Promise<JobExit> {
  log.error('job failed before it could run', { detail });
  deps.tally.taken(item, UNKNOWN_ACTION);
  const letter = deadLetter !== undefined && deps.api.compatibility === 'engine' ? deadLetter.slice(0, 1000) : undefined;
  await owned.write(
    {
      state: 'FAILED',
      executor: owned.owner,
      'return-code': returnCode,
      'status-message': detail,
      ...(letter === undefined ? {} : { 'dead-letter': { reason: letter, attempt: owned.attempt } }),
    },
    deps.giveUp,
  );
  return consumeEntry(log, ended(letter === undefined ? 'failed' : 'dead_lettered'));
}

async function execute(
  item: QueueItem,
  slot: SlotThreads,
  job: JobDocument,
  owned: OwnedJob,
  log: Logger,
  deps: RunDeps,
): Promise<JobExit> {
  const loaded = deps.actions.get(job.action);
  if (loaded === undefined) throw new Error(`action ${job.action} vanished`);
  const timeoutSeconds = job.timeout ?? loaded.definition.timeoutSeconds;
  if (firstAttemptAfterRetry(job, owned.attempt)) await awaitEarlierRunEnded(item, log);
  // The last step before the action: a claim made on a session gone quiet (or just before a SIGSTOP)
  // must not start it (docs/contracts.md, invariant 2).
  await awaitFreshLease(item, log);
  const thread = slot.runner(loaded.definition.isolation);
  const stopper = new RunStopper(deps.timings.killGraceMs, log);
  const stop = (reason: StopReason, detail: string): void => {
    stopper.stop(reason, detail);
  };
  const progress = new ProgressWriter(owned, deps.timings.progressIntervalMs, deps.giveUp, log, (error) => {
    stop(error.reason, error.message);
  });
  const timeout = setTimeout(() => {
    stop('timeout', `timed out after ${timeoutSeconds} s`);
  }, timeoutSeconds * 1000);
  const onSessionLost = (): void => {
    stop('session-lost', 'the ZooKeeper session holding the job was lost');
  };
  item.lost.addEventListener('abort', onSessionLost, { once: true });
  const unwatch = deps.watch.watch({ id: job.id, owner: owned.owner, attempt: owned.attempt, onLost: stop });
  const startedAt = Date.now();
  deps.tally.taken(item, job.action);
  deps.active.set(slot.index, {
    info: { jobId: job.id, action: job.action, slot: slot.index, attempt: owned.attempt, startedAt, threadId: thread.threadId },
    progress,
    stop,
  });
  log.info('action started', { timeoutSeconds });
  const leaseDeadline = shareLeaseDeadline(item);
  let result: ThreadResult;
  try {
    const run = thread.run(
      loaded.file,
      job,
      {
        onProgress: (percent, message) => {
          progress.report(percent, message);
        },
        onLog: (level, message, meta) => {
          log[level](message, meta);
        },
      },
      leaseDeadline.buffer,
    );
    stopper.started(run);
    result = await run.result;
  } finally {
    leaseDeadline.stop();
    clearTimeout(timeout);
    // The thread may have stopped the action on its lease before this thread's own timer ended the
    // session: the run then ended for the session, not for what the action reported.
    if (leaseIsOver(item)) onSessionLost();
    // First: what is noticed from here on (the progress writer's close() may report a refused write)
    // must not reach the thread, which will run the slot's next job.
    stopper.ended();
    item.lost.removeEventListener('abort', onSessionLost);
    unwatch();
    deps.active.delete(slot.index);
    await progress.close();
  }
  return finish(owned, result, stopper.stopped, Date.now() - startedAt, log, deps, (failed) =>
    planAfterFailure(failed, {
      job,
      actionPolicy: loaded.definition.retry,
      attempt: owned.attempt,
      retryability: retryabilityOf(result, stopper.stopped),
      now: Date.now(),
      random: Math.random(),
    }),
  );
}

async function finish(
  owned: OwnedJob,
  result: ThreadResult,
  stopped: Stopped | undefined,
  elapsedMs: number,
  log: Logger,
  deps: RunDeps,
  afterFailure: (failed: JobChanges) => AfterFailure,
): Promise<JobExit> {
  if (stopped?.reason === 'session-lost') throw new OwnershipLostError('session-lost', stopped.detail);
  if (stopped !== undefined && stopped.reason !== 'timeout' && stopped.reason !== 'shutdown') {
    return consumeEntry(
      log,
      ended(outcomeOfLoss(stopped.reason)),
      line('info', 'action stopped: the job is no longer ours, entry consumed', {
        reason: stopped.reason,
        detail: stopped.detail,
        elapsedMs,
      }),
    );
  }
  if (stopped?.reason === 'shutdown')
    return requeueJob(log, owned, `executor ${deps.name} stopped before the job finished (${stopped.detail})`);
  const outcome = finalChanges(result, stopped);
  const plan: AfterFailure =
    outcome.state === 'FAILED' && deps.api.compatibility === 'engine' ? afterFailure(outcome) : { kind: 'final', changes: outcome };
  const { changes } = plan;
  const level = changes.state === 'SUCCESS' ? 'info' : 'warn';
  log[level]('action finished', { state: outcome.state, returnCode: outcome['return-code'], elapsedMs });
  if (plan.kind === 'retry') log.info('attempt failed: retry scheduled', { notBefore: plan.notBefore, delayMs: plan.delayMs });
  if (plan.kind === 'dead-letter') log.warn('job dead-lettered: its last attempt failed', { reason: plan.reason });
  try {
    await owned.write(changes, deps.giveUp);
  } catch (error) {
    if (error instanceof OwnershipLostError && error.reason !== 'session-lost') {
      return consumeEntry(
        log,
        ended(outcomeOfLoss(error.reason)),
        line('info', 'result not recorded: the job is no longer ours, entry consumed', { detail: error.message }),
      );
    }
    // Kept in the log whatever happens next: the job's document may not say how this run ended.
    log.error('the result could not be recorded', {
      state: changes.state,
      returnCode: changes['return-code'],
      statusMessage: changes['status-message'],
      error: toError(error),
    });
    if (deps.giveUp.aborted || error instanceof OwnershipLostError) throw error;
    // The API refused this result itself (a 4xx or a persistent 500): record at least that the run ended.
    const refused = `the action ended (${changes.state ?? '?'}, return code ${String(changes['return-code'])}) but its result was refused by the job API: ${messageOf(error)}`;
    await owned.write({ state: 'FAILED', 'return-code': RETURN_CODES.actionError, 'status-message': refused }, deps.giveUp);
    return consumeEntry(log, ended('failed'));
  }
  return consumeEntry(log, ended(outcomeOf(plan, stopped)));
}

function outcomeOf(plan: AfterFailure, stopped: Stopped | undefined): JobOutcome {
  if (plan.kind === 'retry') return 'retry_scheduled';
  if (plan.kind === 'dead-letter') return 'dead_lettered';
  if (stopped?.reason === 'timeout') return 'timed_out';
  return plan.changes.state === 'SUCCESS' ? 'succeeded' : 'failed';
}
