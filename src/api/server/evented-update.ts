/**
 * A store update that publishes the lifecycle events of the change it made: the document before is
 * the one the mutation saw, so the events describe exactly the transition that was stored, and they
 * go to whoever may see the job as it is after the change.
 */
import type { JobDocument } from '../job/document.js';
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
