/** Reads the answer of the engine's feed (`POST /api/job/feed`): the jobs just unparked, to enqueue. */
import { ApiError } from '../errors.js';
import { isRecord } from '../../util/is-record.js';

import type { FedJob } from '../job/feed.js';

export { FEED_PATH, type FedJob } from '../job/feed.js';

export function parseFedJobs(body: unknown): FedJob[] {
  const jobs = isRecord(body) ? body.jobs : undefined;
  if (!Array.isArray(jobs)) throw new ApiError('internal', 'the job feed answered without a list of jobs');
  return jobs.map((item: unknown, index): FedJob => {
    if (
      !isRecord(item) ||
      typeof item.id !== 'string' ||
      typeof item.priority !== 'number' ||
      typeof item.action !== 'string' ||
      typeof item.queue !== 'string'
    ) {
      throw new ApiError('internal', `the job feed's job ${String(index)} is not {id, priority, action, queue}`);
    }
    return { id: item.id, priority: item.priority, action: item.action, queue: item.queue };
  });
}
