/**
 * Following one job to its end, for `show --follow` and `create --wait`. The caller opens the event
 * feed before it reads the job (or before it creates it), so nothing that happens after the read is
 * missed; events of other jobs are skipped. The job is read again after a quiet spell or a broken
 * stream. It ends on the first final event, or when a read finds the job final.
 */
import { isFinal, type JobDocument } from '../api/job/document.js';
import { FINAL_EVENT_TYPES, type JobEvent } from '../api/job/events.js';
import type { FetchedJob } from '../api/client/job-api.js';
import type { EventFeed } from './event-feed.js';
import type { JobSummary } from './job-view.js';

/** How long a follower trusts a quiet stream before it reads the job itself. */
export const FOLLOW_IDLE_MS = 2000;
/** How long a follower waits for the event stream to open before it reads the job anyway. */
export const STREAM_OPEN_WAIT_MS = 5000;

export interface JobReader {
  get(id: string): Promise<FetchedJob>;
}

export interface FollowView {
  /** The job as read (first, and after a quiet spell or a broken stream). */
  read(job: JobDocument): void;
  event(event: JobEvent, job: JobSummary): void;
  /** A broken stream was opened again. */
  reopened(reason: string): void;
  /** The job as read once it ended. */
  end(job: JobDocument): void;
}

/** The final document, or undefined when the feed ended first (Ctrl-C). */
export async function followJob(
  reader: JobReader,
  feed: EventFeed,
  id: string,
  view: FollowView,
  idleMs: number = FOLLOW_IDLE_MS,
): Promise<JobDocument | undefined> {
  let read = (await reader.get(id)).job;
  view.read(read);
  let current: JobSummary = read;
  while (!isFinal(current.state)) {
    const item = await feed.next(idleMs);
    if (item === 'ended') return undefined;
    if (item === 'idle' || item.kind === 'reopened') {
      if (item !== 'idle') view.reopened(item.reason);
      const again = (await reader.get(id)).job;
      if (again.revision !== read.revision) view.read(again);
      read = again;
      current = again;
      continue;
    }
    const { event } = item;
    if (event.job !== id) continue;
    current = applyEvent(current, event);
    view.event(event, current);
    if (FINAL_EVENT_TYPES.has(event.type)) break;
  }
  const final = isFinal(read.state) ? read : (await reader.get(id)).job;
  view.end(final);
  return final;
}

/** What an event tells about the job: its state and whatever else it carries. */
export function applyEvent(job: JobSummary, event: JobEvent): JobSummary {
  const next: { -readonly [K in keyof JobSummary]: JobSummary[K] } = { ...job, state: event.state };
  if (event.progress !== undefined) next.progress = event.progress;
  if (event['status-message'] !== undefined) next['status-message'] = event['status-message'];
  if (event['return-code'] !== undefined) next['return-code'] = event['return-code'];
  if (event.duration !== undefined) next.duration = event.duration;
  if (event.executor !== undefined) next.executor = event.executor;
  if (event.attempt !== undefined) next.attempt = event.attempt;
  // The rate is this attempt's: progress since the attempt started, not since the first one did.
  if (event.type === 'started') next.started = event.at;
  if (event.type === 'released' || event.type === 'retry-scheduled') next.progress = 0;
  return next;
}
