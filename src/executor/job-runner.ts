/**
 * One job from the queue to the end: read its document, decide (disposition.ts), claim it, run its
 * action in the slot's thread under a timeout, write the result, and only then consume the entry.
 * Whatever stops a run early (timeout, cancel, the job given to another executor, the ZooKeeper
 * session lost, the executor stopping) goes through one path: the action's signal first, then the
 * thread is terminated if the action has not ended after the grace period.
 */
import { ApiError } from '../api/errors.js';
import { isRetryable, mayHaveBeenApplied } from '../api/client/errors.js';
import type { JobApiClient } from '../api/client/index.js';
import type { JobDocument } from '../api/job/document.js';
import type { LockingQueue, QueueItem } from '../recipes/locking-queue.js';
import { ownerOf, type ExecutorRegistry } from '../recipes/executor-registry.js';
import { delay } from '../util/delay.js';
import { messageOf } from '../util/errors.js';
import { withFields, type Logger } from '../util/logger.js';
import type { LoadedAction } from './action-loader.js';
import type { ActionThread, ThreadResult } from './action-thread.js';
import type { ApiGate } from './api-gate.js';
import { RETURN_CODES, decide, unknownAction, type JobLookup } from './disposition.js';
import type { JobWatch } from './job-watch.js';
import type { JobWrites } from './job-writes.js';
import { JobTally, UNKNOWN_ACTION, outcomeOfLoss, skipReasonOf, type JobObserver } from './job-observer.js';
import { OwnedJob, OwnershipLostError } from './owned-job.js';
import { finalChanges, type StopReason, type Stopped } from './run-outcome.js';
import { ProgressWriter } from './progress-writer.js';

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
  readonly queue: LockingQueue;
  readonly registry: ExecutorRegistry;
  readonly gate: ApiGate;
  readonly watch: JobWatch;
  readonly actions: ReadonlyMap<string, LoadedAction>;
  /** This executor's registered name. */
  readonly name: string;
  readonly logger: Logger;
  readonly timings: RunnerTimings;
  /** Aborted when the executor stops waiting for writes (the end of a shutdown). */
  readonly giveUp: AbortSignal;
  /** Told what became of each job and entry (the executor's metrics). */
  readonly observer?: JobObserver;
}

export interface SlotThreads {
  readonly index: number;
  /** The slot's thread, started if it has none (or its last one was terminated). */
  thread(): ActionThread;
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

interface ActiveRun {
  readonly info: Omit<RunningJob, 'progress'>;
  readonly progress: ProgressWriter;
  readonly stop: (reason: StopReason, detail: string) => void;
}

/** Claim attempts per take: each refused claim means someone else moved the job meanwhile. */
const CLAIM_ATTEMPTS = 3;

export class JobRunner {
  readonly #deps: RunnerDeps;
  readonly #active = new Map<number, ActiveRun>();
  readonly #tally: JobTally<QueueItem>;

  constructor(deps: RunnerDeps) {
    this.#deps = deps;
    this.#tally = new JobTally(deps.observer, (action) => deps.actions.has(action));
  }

  running(): RunningJob[] {
    return [...this.#active.values()].map(({ info, progress }) => ({ ...info, progress: progress.latest }));
  }

  /** Stops every running action (the executor is shutting down). */
  stopAll(reason: StopReason, detail: string): void {
    for (const run of this.#active.values()) run.stop(reason, detail);
  }

  /** Never rejects: every failure ends in a log line and the entry consumed, released, or left to its session. */
  async process(item: QueueItem, slot: SlotThreads): Promise<void> {
    const log = withFields(this.#deps.logger, { jobId: item.jobId, entry: item.name, slot: slot.index });
    const claim: { owned?: OwnedJob } = {};
    try {
      await this.#process(item, slot, log, claim);
    } catch (error) {
      if (error instanceof OwnershipLostError && error.reason === 'session-lost') {
        log.warn('ZooKeeper session lost: the job is left to the executor that takes its entry next', { error: error.message });
        this.#tally.ended(item, 'lost');
        return;
      }
      log.error('job handling failed; its entry goes back to the queue', { error: messageOf(error) });
      // A job this executor claimed must not be released as RUNNING on a live owner: whoever took the
      // entry next would leave it to us, and nobody would run it.
      if (claim.owned === undefined) {
        if (!this.#tally.ended(item, 'released')) this.#tally.skipped('error');
        await this.#release(item, log);
      } else await this.#requeue(item, claim.owned, `executor ${this.#deps.name} could not handle the job (${messageOf(error)})`, log);
    }
  }

  async #process(item: QueueItem, slot: SlotThreads, log: Logger, claim: { owned?: OwnedJob }): Promise<void> {
    const owner = ownerOf(this.#deps.name, item.session);
    for (let round = 1; round <= CLAIM_ATTEMPTS; round++) {
      const first = await this.#firstLook(item, owner, log);
      if (first === 'unreachable') {
        this.#tally.skipped('api_unreachable');
        await this.#release(item, log);
        return;
      }
      if ('claimed' in first) {
        await this.#runClaimed(item, slot, first.claimed, owner, withFields(log, { action: first.claimed.action }), claim);
        return;
      }
      const lookup = first;
      const jobLog = lookup.found ? withFields(log, { action: lookup.job.action }) : log;
      if (lookup.found && lookup.job.state === 'RUNNING' && lookup.job.executor === owner && !this.#isRunning(lookup.job.id)) {
        // Our own claim, whose answer was lost on the way back.
        await this.#runClaimed(item, slot, lookup.job, owner, jobLog, claim);
        return;
      }
      const ownerAlive = lookup.found && lookup.job.state === 'RUNNING' && lookup.job.executor !== undefined
        ? await this.#deps.registry.isAlive(lookup.job.executor)
        : undefined;
      const disposition = decide({ lookup, knownAction: (name) => this.#deps.actions.has(name), ownerAlive });
      if (disposition.kind === 'consume') {
        jobLog.info('nothing to run: entry consumed', { reason: disposition.reason, detail: disposition.detail });
        this.#tally.skipped(skipReasonOf(disposition.reason));
        await this.#consume(item, jobLog);
        return;
      }
      if (disposition.kind === 'release') {
        jobLog.warn('job left for another executor: entry released', { reason: disposition.reason, detail: disposition.detail });
        this.#tally.skipped(skipReasonOf(disposition.reason));
        await this.#release(item, jobLog);
        return;
      }
      if (!lookup.found) return;
      const { job } = lookup;
      const owned = this.#own(job, owner, disposition.kind === 'claim' ? disposition.attempt : job.attempt ?? 0, item, jobLog);
      let claimed: JobDocument;
      try {
        if (disposition.kind === 'fail') {
          await this.#failBeforeRun(item, owned, disposition.returnCode, disposition.detail, jobLog);
          return;
        }
        claimed = await owned.write({ state: 'RUNNING', executor: owner, attempt: disposition.attempt, progress: 0, 'status-message': disposition.detail }, this.#deps.giveUp);
      } catch (error) {
        if (error instanceof OwnershipLostError && error.reason !== 'session-lost') {
          jobLog.info('job changed while being claimed; deciding again', { detail: error.message });
          continue;
        }
        throw error;
      }
      claim.owned = owned;
      if (disposition.previousOwner !== undefined) jobLog.warn('job re-run', { detail: disposition.detail, previousOwner: disposition.previousOwner });
      await this.#execute(item, slot, claimed, owned, withFields(jobLog, { attempt: owned.attempt }));
      return;
    }
    log.warn('job kept changing while being claimed: entry released', { attempts: CLAIM_ATTEMPTS });
    this.#tally.skipped('contended');
    await this.#release(item, log);
  }

  /**
   * With this engine's API, the `claim` operation reads, checks and takes a QUEUED job in one request;
   * anything else comes back as it is, to be decided on. With Nuvla's API (or before the API's flavour
   * is known), a plain read.
   */
  async #firstLook(item: QueueItem, owner: string, log: Logger): Promise<{ claimed: JobDocument } | JobLookup | 'unreachable'> {
    if (this.#deps.api.compatibility !== 'engine') return this.#lookup(item, log, false);
    try {
      const result = await this.#deps.writes.claim(item.jobId, owner, `claimed by ${owner}`);
      return result.claimed ? { claimed: result.job } : { found: true, job: result.job };
    } catch (error) {
      if (error instanceof ApiError && error.code === 'not-found') return this.#lookup(item, log, false);
      if (!isRetryable(error)) throw error;
      this.#deps.gate.failed(error);
      // A claim that may have landed must not be released blindly: another executor would then find
      // the job RUNNING on a live owner that never runs it. Wait until a read says what happened.
      if (mayHaveBeenApplied(error)) return this.#lookup(item, log, true);
      log.warn('job API unreachable: entry released', { error: messageOf(error) });
      return 'unreachable';
    }
  }

  /** A job this executor has just claimed: run it, or fail it when no action here has its name. */
  async #runClaimed(item: QueueItem, slot: SlotThreads, job: JobDocument, owner: string, log: Logger, claim: { owned?: OwnedJob }): Promise<void> {
    const owned = this.#own(job, owner, job.attempt ?? 1, item, log);
    claim.owned = owned;
    if (!this.#deps.actions.has(job.action)) {
      const { returnCode, detail } = unknownAction(job.action);
      await this.#failBeforeRun(item, owned, returnCode, detail, log);
      return;
    }
    await this.#execute(item, slot, job, owned, withFields(log, { attempt: owned.attempt }));
  }

  async #failBeforeRun(item: QueueItem, owned: OwnedJob, returnCode: number, detail: string, log: Logger): Promise<void> {
    log.error('job failed before it could run', { detail });
    // Only jobs of an action no module here defines end up here.
    this.#tally.taken(item, UNKNOWN_ACTION);
    await owned.write({ state: 'FAILED', executor: owned.owner, 'return-code': returnCode, 'status-message': detail }, this.#deps.giveUp);
    this.#tally.ended(item, 'failed');
    await this.#consume(item, log);
  }

  #own(job: JobDocument, owner: string, attempt: number, item: QueueItem, log: Logger): OwnedJob {
    return new OwnedJob(job, this.#revisionOf(job), owner, attempt, { api: this.#deps.api, writes: this.#deps.writes, gate: this.#deps.gate, logger: log, lost: item.lost });
  }

  #isRunning(jobId: string): boolean {
    for (const run of this.#active.values()) if (run.info.jobId === jobId) return true;
    return false;
  }

  /**
   * The document, or not-found after the retry window. While the API cannot be reached: 'unreachable'
   * at once, or, when `patient`, after reading again with back-off until it answers.
   */
  async #lookup(item: QueueItem, log: Logger, patient: boolean): Promise<JobLookup | 'unreachable'> {
    const { notFoundAttempts, notFoundRetryMs } = this.#deps.timings;
    for (let attempt = 1, retry = 1; ; attempt++) {
      try {
        const { job } = await this.#deps.api.get(item.jobId);
        return { found: true, job };
      } catch (error) {
        if (isRetryable(error)) {
          this.#deps.gate.failed(error);
          if (!patient) {
            log.warn('job API unreachable: entry released', { error: messageOf(error) });
            return 'unreachable';
          }
          await delay(this.#deps.gate.retryDelayMs(retry++), AbortSignal.any([item.lost, this.#deps.giveUp]));
          continue;
        }
        if (!(error instanceof ApiError) || error.code !== 'not-found') throw error;
        // Nuvla's API server enqueues before it persists: the document may appear a moment later.
        if (attempt >= notFoundAttempts) return { found: false };
        await delay(notFoundRetryMs, item.lost);
      }
    }
  }

  #revisionOf(job: JobDocument): number | undefined {
    return this.#deps.api.compatibility === 'nuvla' ? undefined : job.revision;
  }

  async #execute(item: QueueItem, slot: SlotThreads, job: JobDocument, owned: OwnedJob, log: Logger): Promise<void> {
    const loaded = this.#deps.actions.get(job.action);
    if (loaded === undefined) throw new Error(`action ${job.action} vanished`);
    const timeoutSeconds = job.timeout ?? loaded.definition.timeoutSeconds;
    const thread = slot.thread();
    let stopped: Stopped | undefined;
    let killTimer: NodeJS.Timeout | undefined;
    const stop = (reason: StopReason, detail: string): void => {
      if (stopped !== undefined) return;
      stopped = { reason, detail };
      log.warn('stopping the action', { reason, detail });
      thread.abort(detail);
      killTimer = setTimeout(() => {
        log.error('the action did not stop within the grace period: its thread is terminated', { graceMs: this.#deps.timings.killGraceMs });
        void thread.terminate();
      }, this.#deps.timings.killGraceMs);
    };
    const progress = new ProgressWriter(owned, this.#deps.timings.progressIntervalMs, this.#deps.giveUp, log, (error) => {
      stop(error.reason, error.message);
    });
    const timeout = setTimeout(() => {
      stop('timeout', `timed out after ${timeoutSeconds} s`);
    }, timeoutSeconds * 1000);
    const onSessionLost = (): void => {
      stop('session-lost', 'the ZooKeeper session holding the job was lost');
    };
    item.lost.addEventListener('abort', onSessionLost, { once: true });
    const unwatch = this.#deps.watch.watch({ id: job.id, owner: owned.owner, attempt: owned.attempt, onLost: stop });
    const startedAt = Date.now();
    this.#tally.taken(item, job.action);
    this.#active.set(slot.index, {
      info: { jobId: job.id, action: job.action, slot: slot.index, attempt: owned.attempt, startedAt, threadId: thread.threadId },
      progress,
      stop,
    });
    log.info('action started', { timeoutSeconds });
    let result: ThreadResult;
    try {
      result = await thread.run(loaded.file, job, {
        onProgress: (percent, message) => {
          progress.report(percent, message);
        },
        onLog: (level, message, meta) => {
          log[level](message, meta);
        },
      });
    } finally {
      clearTimeout(timeout);
      clearTimeout(killTimer);
      item.lost.removeEventListener('abort', onSessionLost);
      unwatch();
      this.#active.delete(slot.index);
      await progress.close();
    }
    await this.#finish(item, owned, result, stopped, Date.now() - startedAt, log);
  }

  async #finish(item: QueueItem, owned: OwnedJob, result: ThreadResult, stopped: Stopped | undefined, elapsedMs: number, log: Logger): Promise<void> {
    if (stopped?.reason === 'session-lost') throw new OwnershipLostError('session-lost', stopped.detail);
    if (stopped !== undefined && stopped.reason !== 'timeout' && stopped.reason !== 'shutdown') {
      log.info('action stopped: the job is no longer ours, entry consumed', { reason: stopped.reason, detail: stopped.detail, elapsedMs });
      this.#tally.ended(item, outcomeOfLoss(stopped.reason));
      await this.#consume(item, log);
      return;
    }
    if (stopped?.reason === 'shutdown') {
      await this.#requeue(item, owned, `executor ${this.#deps.name} stopped before the job finished (${stopped.detail})`, log);
      return;
    }
    const changes = finalChanges(result, stopped);
    const level = changes.state === 'SUCCESS' ? 'info' : 'warn';
    log[level]('action finished', { state: changes.state, returnCode: changes['return-code'], elapsedMs });
    try {
      await owned.write(changes, this.#deps.giveUp);
    } catch (error) {
      if (error instanceof OwnershipLostError && error.reason !== 'session-lost') {
        log.info('result not recorded: the job is no longer ours, entry consumed', { detail: error.message });
        this.#tally.ended(item, outcomeOfLoss(error.reason));
        await this.#consume(item, log);
        return;
      }
      // Kept in the log whatever happens next: the job's document may not say how this run ended.
      log.error('the result could not be recorded', { state: changes.state, returnCode: changes['return-code'], statusMessage: changes['status-message'], error: messageOf(error) });
      if (this.#deps.giveUp.aborted || error instanceof OwnershipLostError) throw error;
      // The API refused this result itself (a 4xx or a persistent 500): record at least that the run ended.
      const refused = `the action ended (${changes.state ?? '?'}, return code ${String(changes['return-code'])}) but its result was refused by the job API: ${messageOf(error)}`;
      await owned.write({ state: 'FAILED', 'return-code': RETURN_CODES.actionError, 'status-message': refused }, this.#deps.giveUp);
      this.#tally.ended(item, 'failed');
    }
    this.#tally.ended(item, stopped?.reason === 'timeout' ? 'timed_out' : changes.state === 'SUCCESS' ? 'succeeded' : 'failed');
    await this.#consume(item, log);
  }

  /** Hands a claimed job back: QUEUED again (the status message says why), then its entry released. */
  async #requeue(item: QueueItem, owned: OwnedJob, why: string, log: Logger): Promise<void> {
    try {
      await owned.write({ state: 'QUEUED', executor: null, progress: 0, 'status-message': `${why}; put back in the queue` }, this.#deps.giveUp);
      log.info('job put back in the queue', { why });
    } catch (error) {
      if (error instanceof OwnershipLostError && error.reason !== 'session-lost') {
        this.#tally.ended(item, outcomeOfLoss(error.reason));
        await this.#consume(item, log);
        return;
      }
      log.warn('job could not be set back to QUEUED; its entry is released and the next executor re-runs it', { error: messageOf(error) });
    }
    this.#tally.ended(item, 'released');
    await this.#release(item, log);
  }

  async #consume(item: QueueItem, log: Logger): Promise<void> {
    try {
      await this.#deps.queue.consume(item);
    } catch (error) {
      log.warn('entry could not be consumed; it returns to the queue with the session', { error: messageOf(error) });
    }
  }

  async #release(item: QueueItem, log: Logger): Promise<void> {
    try {
      await this.#deps.queue.release(item);
    } catch (error) {
      log.warn('entry could not be released; it returns to the queue with the session', { error: messageOf(error) });
    }
  }
}
