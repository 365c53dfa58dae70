/**
 * What an action may rely on about the ZooKeeper session that holds its job (docs/contracts.md,
 * invariant 2): it starts only while the session's lease was renewed recently, and its thread learns
 * the lease's end so that it stops by then on its own, however stalled the executor's main thread is.
 */
import type { QueueItem } from '../recipes/locking-queue.js';
import { monotonicNow } from '../zk/session-lease.js';
import { delay } from '../util/delay.js';
import { toError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { OwnershipLostError } from './owned-job.js';
import { hrtimeMs } from './worker-protocol.js';

/** How often a waiting start looks at the lease again, and how often a running action's deadline is moved on. */
const LEASE_POLL_MS = 50;

/**
 * The oldest a lease renewal may be for an action to start: a third of the session timeout, the
 * liveness watchdog's reply deadline (liveness.ts). A healthy session is renewed every watchdog tick,
 * so this only holds back a start on a session that went quiet, or right after the process was
 * stopped (SIGSTOP) and resumed: then nothing starts before the server has answered again.
 */
export function startBoundMs(sessionTimeoutMs: number): number {
  return Math.floor(sessionTimeoutMs / 3);
}

function leaseIsFresh(item: QueueItem): boolean {
  const { lease } = item.session;
  const renewedAt = lease.renewedAt;
  return renewedAt !== undefined && lease.remainingMs() > 0 && monotonicNow() - renewedAt <= startBoundMs(item.session.negotiatedTimeoutMs);
}

/**
 * Resolves once the session holding `item` has a lease renewed within startBoundMs; throws the
 * session-lost OwnershipLostError if the session ends first (its lease then ran out, so this wait
 * lasts no longer than a session timeout).
 */
export async function awaitFreshLease(item: QueueItem, log: Logger): Promise<void> {
  let logged = false;
  while (!leaseIsFresh(item)) {
    if (!logged) {
      log.info('waiting for ZooKeeper to confirm the session before the action starts', {
        leaseRemainingMs: Math.round(item.session.lease.remainingMs()),
      });
      logged = true;
    }
    try {
      await delay(LEASE_POLL_MS, item.lost);
    } catch (error) {
      const lost = new OwnershipLostError(
        'session-lost',
        `the ZooKeeper session holding ${item.jobId} ended before the action could start`,
      );
      throw Object.assign(lost, { cause: toError(error) });
    }
  }
}

/** The end of a run's lease shared with its thread (worker-protocol.ts, RunRequest.leaseDeadline). */
export interface SharedLeaseDeadline {
  readonly buffer: SharedArrayBuffer;
  /** Stops moving the deadline on (the run has ended). */
  stop(): void;
}

/**
 * Shares the lease of the session holding `item` with the action's thread, moved on every
 * LEASE_POLL_MS while the main thread runs. Each value written is a lease end computed from an
 * answered request, never an estimate; a stalled main thread merely stops moving it on, and the
 * thread then stops the action when it passes.
 */
export function shareLeaseDeadline(item: QueueItem): SharedLeaseDeadline {
  const buffer = new SharedArrayBuffer(Float64Array.BYTES_PER_ELEMENT);
  const deadline = new Float64Array(buffer);
  const update = (): void => {
    deadline[0] = hrtimeMs() + item.session.lease.remainingMs();
  };
  update();
  const timer = setInterval(update, LEASE_POLL_MS);
  timer.unref();
  return {
    buffer,
    stop: () => {
      clearInterval(timer);
    },
  };
}

/** Whether the session holding `item` may have been expired by the server already (its lease is over). */
export function leaseIsOver(item: QueueItem): boolean {
  return item.lost.aborted || item.session.lease.remainingMs() === 0;
}
