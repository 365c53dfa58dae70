/**
 * The claim phase of a queue entry: read the job's document, decide what to do with it
 * (disposition.ts), and claim it for this executor. Ends either with the job claimed, for the run
 * phase (job-run.ts), or with the entry's exit when there is nothing to run here (job-exit.ts).
 */
import { ApiError } from '../api/errors.js';
import { isRetryable, mayHaveBeenApplied } from '../api/client/errors.js';
import type { JobApiClient } from '../api/client/index.js';
import { isFinal, type JobDocument } from '../api/job/document.js';
import type { LockingQueue, QueueItem } from '../recipes/locking-queue.js';
import { ownerOf, type ExecutorRegistry } from '../recipes/executor-registry.js';
import { toError } from '../util/errors.js';
import { withFields, type Logger } from '../util/logger.js';
import { fixedDelays, retrying } from '../util/retrying.js';
import type { DiscoveredAction } from './action-discovery.js';
import type { ActionLimits, Deferral, Permit } from './action-limits.js';
import type { ActionAvailability, ActionOffers } from './action-offers.js';
import type { ApiGate } from './api-gate.js';
import { reportingUnreachable, untilReachable } from './api-retry.js';
import { decide, type JobLookup } from './disposition.js';
import { consumeEntry, line, releaseAside, releaseEntry, skipped, type JobExit } from './job-exit.js';
import { skipReasonOf, type JobTally } from './job-observer.js';
import type { JobWrites } from './job-writes.js';
import { failBeforeRun, type ClaimedJob } from './job-run.js';
import { OwnedJob, OwnershipLostError } from './owned-job.js';

export interface ClaimDeps {
  readonly api: JobApiClient;
  readonly writes: JobWrites;
  readonly registry: ExecutorRegistry;
  readonly queue: Pick<LockingQueue, 'foreignHolder'>;
  readonly gate: ApiGate;
  readonly actions: ReadonlyMap<string, DiscoveredAction>;
  /** Where the actions not loaded here can run. */
  readonly offers: ActionOffers;
  /** The names of `actions`, sent with each claim: the API claims only jobs of these actions. */
  readonly actionNames: readonly string[];
  /** Actions loaded but not offered (action-policy.ts), with the reason a job of theirs fails with. */
  readonly withheld: ReadonlyMap<string, string>;
  /** This executor's registered name. */
  readonly name: string;
  /** `--max-attempts`: a job's own `max-attempts` field, or its action's `maxAttempts`, overrides it. */
  readonly maxAttempts: number;
  /** A missing document is looked up this many times, this far apart. */
  readonly timings: { readonly notFoundAttempts: number; readonly notFoundRetryMs: number };
  readonly giveUp: AbortSignal;
  readonly tally: JobTally<QueueItem>;
  /** Fleet-wide limits per action (action-limits.ts): a permit is had before a limited action's job is claimed. */
  readonly limits?: ActionLimits;
}

/** The permit the handling of one entry holds; its runner releases it once the entry's exit is carried out. */
export interface PermitHold {
  permit: Permit | undefined;
}

export type ClaimResult = { readonly claimed: ClaimedJob } | { readonly exit: JobExit };

/** The job API could not be reached: the entry goes back. */
interface Unreachable {
  readonly unreachable: Error;
}

/** Claim attempts per take: each refused claim means someone else moved the job meanwhile. */
const CLAIM_ATTEMPTS = 3;

/**
 * Claims `item`'s job; throws what the runner turns into a failure exit (nothing claimed yet). A
 * permit had for a limited action is left in `hold`, for the runner to release.
 */
export async function claimJob(item: QueueItem, log: Logger, deps: ClaimDeps, hold: PermitHold): Promise<ClaimResult> {
  const owner = ownerOf(deps.name, item.session);
  const { limits } = deps;
  // An entry deferred before: its permit first, without asking the job API about it again.
  const known = limits?.actionOf(item);
  if (limits !== undefined && known !== undefined && limits.isLimited(known)) {
    const got = await limits.acquire(item, known, item.jobId);
    if ('reason' in got) return { exit: deferred(log, known, got) };
    hold.permit = got;
  }
  for (let round = 1; round <= CLAIM_ATTEMPTS; round++) {
    // The API's claim takes only jobs of these actions: a limited action's job comes back unclaimed.
    const claimable = limits === undefined ? deps.actionNames : limits.claimable(deps.actionNames, hold.permit?.action);
    const first = await firstLook(item, owner, claimable, deps);
    if ('unreachable' in first) {
      return {
        exit: releaseEntry(
          log,
          skipped('api_unreachable'),
          line('warn', 'job API unreachable: entry released', { error: first.unreachable }),
        ),
      };
    }
    if ('claimed' in first)
      return {
        claimed: claimedJob(
          item,
          first.claimed,
          owner,
          first.claimed.attempt ?? 1,
          withFields(log, { action: first.claimed.action }),
          deps,
        ),
      };
    const lookup = first;
    const jobLog = lookup.found ? withFields(log, { action: lookup.job.action }) : log;
    if (lookup.found) limits?.learn(item, lookup.job.action);
    if (lookup.found && lookup.job.state === 'RUNNING' && lookup.job.executor === owner) {
      // Our own claim, whose answer was lost on the way back (no other slot here holds the job: JobRunner
      // gives each job to one slot at a time).
      return { claimed: claimedJob(item, lookup.job, owner, lookup.job.attempt ?? 1, jobLog, deps) };
    }
    const running = lookup.found && lookup.job.state === 'RUNNING';
    const ownerAlive = running && lookup.job.executor !== undefined ? await deps.registry.isAlive(lookup.job.executor) : undefined;
    // Only when no executor of ours owns it: a kazoo consumer never registers, it only holds its entry.
    const foreignHolder = running && ownerAlive !== true ? await foreignHolderOf(item, deps) : undefined;
    // The job's own field, else its action's default, else this executor's --max-attempts.
    const maxAttempts = lookup.found
      ? (lookup.job['max-attempts'] ?? deps.actions.get(lookup.job.action)?.definition.maxAttempts ?? deps.maxAttempts)
      : deps.maxAttempts;
    // Only for a job that must run and whose action is not here: where else it can run.
    let availability: ActionAvailability | undefined;
    if (lookup.found && !isFinal(lookup.job.state) && !deps.actions.has(lookup.job.action) && ownerAlive !== true)
      availability = await deps.offers.availability(lookup.job.action, item.name, item.queue);
    const disposition = decide({
      lookup,
      knownAction: (name) => deps.actions.has(name),
      withheldReason: (name) => deps.withheld.get(name),
      ownerAlive,
      foreignHolder,
      maxAttempts,
      ...(availability === undefined ? {} : { availability }),
    });
    if (disposition.kind === 'consume') {
      const { reason, detail } = disposition;
      return {
        exit: consumeEntry(jobLog, skipped(skipReasonOf(reason)), line('info', 'nothing to run: entry consumed', { reason, detail })),
      };
    }
    if (disposition.kind === 'release' && disposition.reason !== 'newer-schema') {
      const { reason, detail, setAsideMs } = disposition;
      // Routine in a fleet whose executors run different actions: not worth a line at info.
      const level = reason === 'action-elsewhere' ? 'debug' : 'info';
      return {
        exit: releaseAside(
          jobLog,
          skipped(skipReasonOf(reason)),
          setAsideMs,
          line(level, 'job left for another executor: entry released', { reason, detail, setAsideMs }),
        ),
      };
    }
    if (disposition.kind === 'release') {
      const { reason, detail } = disposition;
      return {
        exit: releaseEntry(
          jobLog,
          skipped(skipReasonOf(reason)),
          line('warn', 'job left for another executor: entry released', { reason, detail }),
        ),
      };
    }
    if (!lookup.found)
      throw new Error(`job ${item.jobId}: a document that does not exist cannot be ${disposition.kind === 'fail' ? 'failed' : 'claimed'}`);
    const { job } = lookup;
    if (disposition.kind === 'cancel') {
      const canceled = await cancelExpired(item, job, disposition.detail, jobLog, deps);
      if (canceled !== undefined) return { exit: canceled };
      continue;
    }
    if (disposition.kind === 'claim' && limits?.isLimited(job.action) === true && hold.permit?.action !== job.action) {
      await hold.permit?.release();
      hold.permit = undefined;
      const got = await limits.acquire(item, job.action, job.id);
      if ('reason' in got) return { exit: deferred(jobLog, job.action, got) };
      hold.permit = got;
    }
    const owned = ownJob(item, job, owner, disposition.kind === 'claim' ? disposition.attempt : (job.attempt ?? 0), jobLog, deps);
    try {
      if (disposition.kind === 'fail')
        return {
          exit: await failBeforeRun(
            item,
            owned,
            disposition.returnCode,
            disposition.detail,
            jobLog,
            deps,
            disposition.reason === 'attempts-exhausted' ? disposition.detail : undefined,
          ),
        };
      const claimed = await owned.write(
        { state: 'RUNNING', executor: owner, attempt: disposition.attempt, progress: 0, 'status-message': disposition.detail },
        deps.giveUp,
      );
      if (disposition.previousOwner !== undefined)
        jobLog.warn('job re-run', { detail: disposition.detail, previousOwner: disposition.previousOwner });
      return { claimed: { job: claimed, owned, log: jobLog } };
    } catch (error) {
      if (error instanceof OwnershipLostError && error.reason !== 'session-lost') {
        jobLog.info('job changed while being claimed; deciding again', { detail: error.message });
        continue;
      }
      throw error;
    }
  }
  return {
    exit: releaseEntry(
      log,
      skipped('contended'),
      line('warn', 'job kept changing while being claimed: entry released', { attempts: CLAIM_ATTEMPTS }),
    ),
  };
}

/**
 * An expired job ends CANCELED without running, written only at the revision read (the API refuses to
 * start it anyway); undefined when it changed meanwhile, to decide again.
 */
async function cancelExpired(
  item: QueueItem,
  job: JobDocument,
  detail: string,
  log: Logger,
  deps: ClaimDeps,
): Promise<JobExit | undefined> {
  try {
    await deps.api.edit(
      job.id,
      { state: 'CANCELED', executor: ownerOf(deps.name, item.session), 'status-message': detail },
      { ifRevision: deps.api.compatibility === 'nuvla' ? undefined : job.revision },
    );
  } catch (error) {
    if (error instanceof ApiError && (error.code === 'precondition-failed' || error.code === 'conflict')) {
      log.info('expired job changed while being cancelled; deciding again', { detail: error.message });
      return undefined;
    }
    throw error;
  }
  return consumeEntry(log, skipped('expired'), line('info', 'job expired before it started: CANCELED, entry consumed', { detail }));
}

/** A job of an action at its limit: not claimed (no attempt counted); its entry goes back, set aside. */
function deferred(log: Logger, action: string, deferral: Deferral): JobExit {
  const { reason, detail, asideMs } = deferral;
  return releaseAside(
    log,
    skipped('limited'),
    asideMs,
    line('debug', 'job deferred: its action is at its limit; entry released', { action, reason, detail }),
  );
}

/** Who else holds an entry of the job, for the log; undefined when nobody outside our executors does. */
async function foreignHolderOf(item: QueueItem, deps: ClaimDeps): Promise<string | undefined> {
  const holder = await deps.queue.foreignHolder(item);
  return holder === undefined
    ? undefined
    : `queue consumer ${holder.consumerId} (session ${holder.sessionId}), which holds its entry ${holder.entry}`;
}

/** A job this executor claimed through the API's `claim`, or whose claim's answer was lost. */
function claimedJob(item: QueueItem, job: JobDocument, owner: string, attempt: number, log: Logger, deps: ClaimDeps): ClaimedJob {
  return { job, owned: ownJob(item, job, owner, attempt, log, deps), log };
}

function ownJob(item: QueueItem, job: JobDocument, owner: string, attempt: number, log: Logger, deps: ClaimDeps): OwnedJob {
  // Nuvla's API has no revisions to make writes conditional on.
  const revision = deps.api.compatibility === 'nuvla' ? undefined : job.revision;
  return new OwnedJob(job, revision, owner, attempt, { api: deps.api, writes: deps.writes, gate: deps.gate, logger: log, lost: item.lost });
}

/**
 * With this engine's API, the `claim` operation reads, checks and takes a QUEUED job in one request;
 * anything else comes back as it is, to be decided on. With Nuvla's API (or before the API's flavour
 * is known), a plain read.
 */
async function firstLook(
  item: QueueItem,
  owner: string,
  actions: readonly string[],
  deps: ClaimDeps,
): Promise<{ readonly claimed: JobDocument } | JobLookup | Unreachable> {
  if (deps.api.compatibility !== 'engine') return lookUp(item, false, deps);
  try {
    const result = await deps.writes.claim(item.jobId, owner, `claimed by ${owner}`, actions);
    return result.claimed ? { claimed: result.job } : { found: true, job: result.job };
  } catch (error) {
    if (error instanceof ApiError && error.code === 'not-found') return lookUp(item, false, deps);
    if (!isRetryable(error)) throw error;
    deps.gate.failed(error);
    // A claim that may have landed must not be released blindly: another executor would then find
    // the job RUNNING on a live owner that never runs it. Wait until a read says what happened.
    if (mayHaveBeenApplied(error)) return lookUp(item, true, deps);
    return { unreachable: toError(error) };
  }
}

/** A document that is not there (an unreachable API's answers do not count as one). */
function isNotFound(error: unknown): boolean {
  return error instanceof ApiError && error.code === 'not-found' && !isRetryable(error);
}

/**
 * The document, or not-found after the retry window. While the API cannot be reached: unreachable
 * at once, or, when `patient`, after reading again with back-off until it answers.
 */
async function lookUp(item: QueueItem, patient: boolean, deps: ClaimDeps): Promise<JobLookup | Unreachable> {
  const { api, gate, giveUp, timings } = deps;
  // Every read counts towards the not-found window, those that found the API unreachable included.
  let reads = 0;
  const read = async (): Promise<JobDocument> => {
    reads += 1;
    return (await api.get(item.jobId)).job;
  };
  try {
    const job = await retrying(
      patient ? () => untilReachable(gate, read, AbortSignal.any([item.lost, giveUp])) : reportingUnreachable(gate, read),
      {
        delays: fixedDelays(timings.notFoundRetryMs),
        signal: item.lost,
        abortOnlyCutsWaits: true,
        // Nuvla's API server enqueues before it persists: the document may appear a moment later.
        retryIf: (error) => isNotFound(error) && reads < timings.notFoundAttempts,
      },
    );
    return { found: true, job };
  } catch (error) {
    if (isRetryable(error)) return { unreachable: toError(error) };
    if (isNotFound(error)) return { found: false };
    throw error;
  }
}
