/**
 * A store update that publishes the lifecycle events of the change it made: the document before is
 * the one the mutation saw, so the events describe exactly the transition that was stored, and they
 * go to whoever may see the job as it is after the change.
 */
import { BATCH_ACTION } from '../batch/batch-field.js';
import type { FilterNode } from '../cimi/ast.js';
import { parseFilter } from '../cimi/parser.js';
import type { JobDocument } from '../job/document.js';
import { cancelJob } from '../job/lifecycle.js';
import { changeEvents } from '../job/transition-events.js';
import type { JobMutation, JobStore } from '../store/job-store.js';
import { forAudience, type JobEventHub } from './event-hub.js';
import { audienceOf } from './job-acl.js';

export async function updateWithEvents(
  store: JobStore,
  hub: JobEventHub,
  id: string,
  mutate: JobMutation,
  expectedRevision?: number,
): Promise<JobDocument> {
  let before: JobDocument | undefined;
  const after = await store.update(
    id,
    (current) => {
      before = current;
      return mutate(current);
    },
    expectedRevision,
  );
  if (before !== undefined) hub.publish(forAudience(changeEvents(before, after), audienceOf(after)));
  return after;
}

/** Jobs per transaction of updateMatching: long enough to be cheap, short enough not to hold the write lock for long. */
const PAGE = 500;

/**
 * Rewrites every job `filter` matches, a page per transaction, until none is left; `mutate` must take
 * each job out of the filter (a cancel ends it, a retry makes it QUEUED), or this would not end.
 */
export async function updateMatching(
  store: JobStore,
  events: JobEventHub,
  filter: FilterNode,
  before: (job: JobDocument) => JobDocument,
  mutate: JobMutation,
): Promise<{ count: number; batches: string[] }> {
  let count = 0;
  const batches: string[] = [];
  for (;;) {
    const page = await store.updateFirst({ filter, orderBy: [{ attribute: ['id'], direction: 'asc' }] }, PAGE, mutate);
    for (const job of page) {
      events.publish(forAudience(changeEvents(before(job), job), audienceOf(job)));
      if (job.action === BATCH_ACTION) batches.push(job.id);
    }
    if (page.length === 0) return { count, batches };
    count += page.length;
  }
}

/** A batch's cancel cascades: its waiting tasks end CANCELED, its running ones too (their executors stop them). Returns how many. */
export async function cancelLiveTasks(store: JobStore, hub: JobEventHub, batch: string, reason: string, now: () => Date): Promise<number> {
  const live = parseFilter(`parent-job='${batch}' and state=['QUEUED','RUNNING']`);
  const canceled = await updateMatching(
    store,
    hub,
    live,
    (task) => ({ ...task, state: 'RUNNING' }),
    (task) => cancelJob(task, now(), reason),
  );
  return canceled.count;
}
