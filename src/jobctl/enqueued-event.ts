/**
 * The `enqueued` lifecycle event, which the job API cannot see (it happens in ZooKeeper), published
 * by `jobctl retry` just before it enqueues the job again (`create` goes through the JobSubmitter,
 * which announces its own), so that followers see the whole story in order.
 */
import type { JobApiClient } from '../api/client/index.js';
import type { JobDocument } from '../api/job/document.js';
import { toError } from '../util/errors.js';
import type { CommandContext } from './context.js';

/** Only a nicety for followers: a failure is a warning, the job is enqueued all the same. */
export async function publishEnqueued(ctx: CommandContext, api: JobApiClient, job: Pick<JobDocument, 'id' | 'action' | 'priority'>): Promise<void> {
  try {
    await api.publishEvents([{ type: 'enqueued', at: new Date(ctx.now()).toISOString(), job: job.id, action: job.action, state: 'QUEUED', priority: job.priority }]);
  } catch (error) {
    ctx.out.warn(`the enqueued event was not published: ${toError(error).message}`);
  }
}
