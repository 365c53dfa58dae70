/**
 * Which lifecycle events one change of a job stands for, from the document before and after it (free
 * of I/O, like lifecycle.ts). The API sees the executor's claim as one step: the entry was taken and
 * the job claimed together, and the action starts right after, so a claim is `taken` then `started`
 * at the same instant. An attempt that failed and goes back to QUEUED with a return code (its history
 * record has one) is `retry-scheduled`, not `released`; a job the executor dead-letters is its final
 * event then `dead-lettered`.
 */
import { attemptRecord } from './attempt-history.js';
import { TIMED_OUT_RETURN_CODE, isFinal, type JobDocument } from './document.js';
import type { JobEventType, PublishedJobEvent } from './events.js';

/** The events of a job's creation. */
export function createdEvents(job: JobDocument): PublishedJobEvent[] {
  return [eventOf('created', job, job.created)];
}

/** The events of a change from `before` to `after` (none for a change that is no transition, e.g. tags). */
export function changeEvents(before: JobDocument, after: JobDocument): PublishedJobEvent[] {
  const at = after.updated;
  if (isFinal(after.state) && !isFinal(before.state)) {
    const final = eventOf(finalType(after), after, at);
    const letter = after['dead-letter'];
    if (letter === undefined || before['dead-letter'] !== undefined) return [final];
    return [final, { ...eventOf('dead-lettered', after, at), reason: letter.reason }];
  }
  if (after.state === 'RUNNING' && before.state !== 'RUNNING') return [eventOf('taken', after, at), eventOf('started', after, at)];
  if (after.state === 'QUEUED' && before.state === 'RUNNING') {
    const failed = attemptRecord(after, before.attempt)?.['return-code'];
    const notBefore = after['not-before'];
    if (failed !== undefined)
      return [
        {
          ...eventOf('retry-scheduled', after, at),
          'return-code': failed,
          ...(notBefore === undefined ? {} : { 'not-before': notBefore }),
        },
      ];
  }
  if (after.state === 'QUEUED' && before.state !== 'QUEUED') return [eventOf('released', after, at)];
  if (after.state === 'RUNNING' && after.progress !== before.progress) return [eventOf('progress', after, at)];
  return [];
}

function finalType(job: JobDocument): JobEventType {
  if (job.state === 'CANCELED') return 'cancelled';
  return job['return-code'] === TIMED_OUT_RETURN_CODE ? 'timed-out' : 'finished';
}

function eventOf(type: JobEventType, job: JobDocument, at: string): PublishedJobEvent {
  const ending = type === 'finished' || type === 'timed-out' || type === 'cancelled' || type === 'dead-lettered';
  const owned = type !== 'created' && type !== 'released' && type !== 'retry-scheduled';
  return {
    type,
    at,
    job: job.id,
    action: job.action,
    state: job.state,
    priority: job.priority,
    ...(type === 'progress' || ending ? { progress: job.progress } : {}),
    ...(job['status-message'] === undefined || type === 'created' ? {} : { 'status-message': job['status-message'] }),
    ...(ending && job['return-code'] !== undefined ? { 'return-code': job['return-code'] } : {}),
    ...(ending && job.duration !== undefined ? { duration: job.duration } : {}),
    ...(owned && job.executor !== undefined ? { executor: job.executor } : {}),
    ...(job.attempt === undefined ? {} : { attempt: job.attempt }),
  };
}
