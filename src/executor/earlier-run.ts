/**
 * The first attempt after an operator's retry may be claimed while the job's earlier run is still
 * stopping: a job cancelled while it ran is CANCELED at once, but its executor notices the cancel only
 * within --cancel-poll and its action stops within the kill grace, and a retry right after the cancel
 * puts the job back in the queue meanwhile. The earlier run holds its entry until its action has
 * ended, so the retry's run starts only once no other entry of the job is held (docs/contracts.md,
 * invariant 1). The earlier run is bounded by its own timeout, and its holder's session ending ends it.
 */
import type { JobDocument } from '../api/job/document.js';
import { findHeldEntry } from '../recipes/entry-holders.js';
import type { QueueItem } from '../recipes/locking-queue.js';
import { toError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { OwnershipLostError } from './owned-job.js';

/** Whether `attempt` of `job` is the first since an operator retried it: an earlier run may still be stopping. */
export function firstAttemptAfterRetry(job: JobDocument, attempt: number): boolean {
  const retriedAt = job['retried-at-attempt'];
  return retriedAt !== undefined && attempt === retriedAt + 1;
}

/**
 * Resolves once no entry of `item`'s job but its own is held; throws the session-lost
 * OwnershipLostError if the session holding `item` ends first.
 */
export async function awaitEarlierRunEnded(item: QueueItem, log: Logger): Promise<void> {
  let logged = false;
  try {
    for (;;) {
      const held = await findHeldEntry(item.session, item.paths, item.jobId, item.name);
      if (held === undefined) return;
      if (!logged) {
        log.info('waiting for the earlier run of this job to stop before the action starts', { heldEntry: held });
        logged = true;
      }
      await untilDeleted(item, `${item.paths.taken}/${held}`);
    }
  } catch (error) {
    if (!item.lost.aborted) throw error;
    const lost = new OwnershipLostError('session-lost', `the ZooKeeper session holding ${item.jobId} ended before the action could start`);
    throw Object.assign(lost, { cause: toError(error) });
  }
}

function untilDeleted(item: QueueItem, path: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const done = (error?: unknown): void => {
      item.lost.removeEventListener('abort', onLost);
      if (error === undefined) resolve();
      else reject(toError(error));
    };
    const onLost = (): void => {
      done(item.lost.reason ?? new Error('session lost'));
    };
    item.lost.addEventListener('abort', onLost, { once: true });
    // Any event on the node ends the wait: the caller looks again.
    item.session
      .exists(path, () => {
        done();
      })
      .then((stat) => {
        if (stat === undefined) done();
      }, done);
  });
}
