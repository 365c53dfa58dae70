/**
 * How the handling of one queue entry ends, as a value: what becomes of the entry (consumed,
 * released, the job put back in the queue and then the entry released, or left to the ZooKeeper
 * session), what the observer is told, and the log line that goes with it. Every path through a job
 * returns one; `applyExit` carries it out, so no path has to remember to both count and hand back.
 *
 * The order stays: the line is logged, then counted, then the entry operation is made, and the
 * entry is only consumed once the job's document says how it ended (docs/contracts.md).
 */
import type { LockingQueue, QueueItem } from '../recipes/locking-queue.js';
import { toError } from '../util/errors.js';
import type { Logger, LogLevel } from '../util/logger.js';
import { outcomeOfLoss, type JobOutcome, type JobTally, type SkipReason } from './job-observer.js';
import { OwnershipLostError, type OwnedJob } from './owned-job.js';

/** What the observer is told (a "taken" is told where the job is taken, not here). */
export type ExitCount =
  /** Nothing was run. */
  | { readonly kind: 'skipped'; readonly reason: SkipReason }
  /** The outcome of a taken job. */
  | { readonly kind: 'ended'; readonly outcome: JobOutcome }
  /** A failure before the job was claimed: it may have been taken (to be failed before it could run), or not. */
  | { readonly kind: 'ended-else-skipped'; readonly outcome: JobOutcome; readonly reason: SkipReason };

export interface ExitLine {
  readonly level: LogLevel;
  readonly message: string;
  readonly meta: Record<string, unknown>;
}

interface ExitBase {
  /** The logger of the path that ended: its line and any entry operation's failure go there. */
  readonly log: Logger;
  readonly line?: ExitLine;
}

export type JobExit =
  | (ExitBase & { readonly entry: 'consume' | 'leave' | 'reject'; readonly count: ExitCount })
  /** With `asideMs`, this process does not take the entry again for that long (LockingQueue.releaseAside). */
  | (ExitBase & { readonly entry: 'release'; readonly count: ExitCount; readonly asideMs?: number })
  /** A claimed job handed back: QUEUED again (its status message says why), then its entry released. */
  | (ExitBase & { readonly entry: 'requeue'; readonly job: OwnedJob; readonly why: string });

export function skipped(reason: SkipReason): ExitCount {
  return { kind: 'skipped', reason };
}

export function ended(outcome: JobOutcome): ExitCount {
  return { kind: 'ended', outcome };
}

export function line(level: LogLevel, message: string, meta: Record<string, unknown>): ExitLine {
  return { level, message, meta };
}

/** The job's result is written (or nothing was to be run): the entry is done with. */
export function consumeEntry(log: Logger, count: ExitCount, exitLine?: ExitLine): JobExit {
  return { entry: 'consume', count, log, ...(exitLine === undefined ? {} : { line: exitLine }) };
}

/** The job was not claimed (or is QUEUED again): the entry goes back for any executor. */
export function releaseEntry(log: Logger, count: ExitCount, exitLine?: ExitLine): JobExit {
  return { entry: 'release', count, log, ...(exitLine === undefined ? {} : { line: exitLine }) };
}

/** The job is not for this executor (its action is not here): the entry goes back, and is left alone here for `asideMs`. */
export function releaseAside(log: Logger, count: ExitCount, asideMs: number, exitLine: ExitLine): JobExit {
  return { entry: 'release', count, log, asideMs, line: exitLine };
}

/** The session holding the entry is lost: whoever takes the entry next decides. */
export function leaveEntry(log: Logger, count: ExitCount, exitLine: ExitLine): JobExit {
  return { entry: 'leave', count, log, line: exitLine };
}

/** The entry is not a job id: settled once, moved under the queue's rejected/ with its bytes. */
export function rejectEntry(log: Logger, exitLine: ExitLine): JobExit {
  return { entry: 'reject', count: skipped('not_a_job_id'), log, line: exitLine };
}

export function requeueJob(log: Logger, job: OwnedJob, why: string, exitLine?: ExitLine): JobExit {
  return { entry: 'requeue', job, why, log, ...(exitLine === undefined ? {} : { line: exitLine }) };
}

export interface ExitDeps {
  readonly queue: Pick<LockingQueue, 'consume' | 'release' | 'releaseAside' | 'reject'>;
  readonly tally: JobTally<QueueItem>;
  /** Aborted when the executor stops waiting for writes (the end of a shutdown). */
  readonly giveUp: AbortSignal;
}

/** Carries `exit` out. Never rejects: a failed entry operation leaves the entry to its session. */
export async function applyExit(item: QueueItem, exit: JobExit, deps: ExitDeps): Promise<void> {
  const { log } = exit;
  if (exit.line !== undefined) log[exit.line.level](exit.line.message, exit.line.meta);
  if (exit.entry === 'requeue') {
    await applyExit(item, await requeue(exit.job, exit.why, log, deps.giveUp), deps);
    return;
  }
  count(item, exit.count, deps.tally);
  if (exit.entry === 'consume') await consume(item, log, deps);
  else if (exit.entry === 'release') await release(item, exit.asideMs, log, deps);
  else if (exit.entry === 'reject') await reject(item, log, deps);
}

/** The exit of a requeue once the QUEUED write is answered (or given up). */
async function requeue(job: OwnedJob, why: string, log: Logger, giveUp: AbortSignal): Promise<JobExit> {
  try {
    await job.write({ state: 'QUEUED', executor: null, progress: 0, 'status-message': `${why}; put back in the queue` }, giveUp);
    return releaseEntry(log, ended('released'), line('info', 'job put back in the queue', { why }));
  } catch (error) {
    if (error instanceof OwnershipLostError && error.reason !== 'session-lost')
      return consumeEntry(log, ended(outcomeOfLoss(error.reason)));
    return releaseEntry(
      log,
      ended('released'),
      line('warn', 'job could not be set back to QUEUED; its entry is released and the next executor re-runs it', {
        error: toError(error),
      }),
    );
  }
}

function count(item: QueueItem, what: ExitCount, tally: JobTally<QueueItem>): void {
  switch (what.kind) {
    case 'skipped':
      tally.skipped(what.reason);
      return;
    case 'ended':
      tally.ended(item, what.outcome);
      return;
    case 'ended-else-skipped':
      if (!tally.ended(item, what.outcome)) tally.skipped(what.reason);
  }
}

async function consume(item: QueueItem, log: Logger, deps: ExitDeps): Promise<void> {
  try {
    await deps.queue.consume(item);
  } catch (error) {
    log.warn('entry could not be consumed; it returns to the queue with the session', { error: toError(error) });
  }
}

async function reject(item: QueueItem, log: Logger, deps: ExitDeps): Promise<void> {
  try {
    await deps.queue.reject(item);
  } catch (error) {
    log.warn('entry could not be moved to rejected/; it returns to the queue with the session', { error: toError(error) });
  }
}

async function release(item: QueueItem, asideMs: number | undefined, log: Logger, deps: ExitDeps): Promise<void> {
  try {
    if (asideMs === undefined) await deps.queue.release(item);
    else await deps.queue.releaseAside(item, asideMs);
  } catch (error) {
    log.warn('entry could not be released; it returns to the queue with the session', { error: toError(error) });
  }
}
