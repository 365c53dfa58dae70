/**
 * How jobctl enqueues (`create` through the submitter, `retry` directly): the same JobEnqueuer the
 * distributors use, announcing `enqueued` on the job event stream before the entry exists so that
 * followers see the whole story in order, with its log turned into warnings on the terminal.
 */
import type { JobApiClient } from '../api/client/index.js';
import { JobEnqueuer } from '../enqueue/job-enqueuer.js';
import type { QueueRoutes } from '../recipes/queue-routes.js';
import { toError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { CommandContext } from './context.js';

export function enqueuerFor(ctx: CommandContext, api: JobApiClient, queue: QueueRoutes): JobEnqueuer {
  return new JobEnqueuer({ queue, logger: warningsOf(ctx), publish: (events) => api.publishEvents(events), now: ctx.now });
}

/**
 * A log for the terminal: warnings (an event not published, a retry while ZooKeeper is away) are worth
 * showing as they happen; a failure is not logged, the command fails with it.
 */
export function warningsOf(ctx: CommandContext): Logger {
  const ignore = (): void => undefined;
  return {
    error: ignore,
    info: ignore,
    debug: ignore,
    warn: (message, meta) => {
      ctx.out.warn(meta?.error === undefined ? message : `${message}: ${toError(meta.error).message}`);
    },
  };
}
