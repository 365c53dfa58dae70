/**
 * Dead letters: the jobs the engine gave up on (FAILED after the last attempt their retry policy or
 * max-attempts allowed, marked `dead-letter`). `jobctl dead` lists them with counts per action;
 * `jobctl retry --dead` sends them back (QUEUED for a new round of attempts, and enqueued).
 */
import type { JobApiClient } from '../api/client/index.js';
import type { JobDocument } from '../api/job/document.js';
import { numberFlag, readNumber, readString, type OptionArgs } from '../cli/option-readers.js';
import type { QueueRoutes } from '../recipes/queue-routes.js';
import { toError } from '../util/errors.js';
import type { JobctlCommand } from './command.js';
import type { CommandContext } from './context.js';
import { enqueuerFor } from './enqueuer.js';
import { EXIT, failure } from './errors.js';
import { quote } from './list-show.js';
import { renderTable } from './table.js';
import { formatAge } from './time-format.js';

const DEFAULT_LAST = 20;
/** Jobs read per request when counting or retrying every dead letter. */
const PAGE = 500;

/** The CIMI filter of dead letters, of one action with `--action`, narrowed by `--filter`. */
export function deadLetterFilter(args: OptionArgs): string {
  const parts = ["state='FAILED'", 'dead-letter/reason!=null'];
  const action = readString(args, 'action');
  if (action !== undefined) parts.push(`action=${quote(action)}`);
  const filter = readString(args, 'filter');
  if (filter !== undefined) parts.push(`(${filter})`);
  return parts.join(' and ');
}

type DeadJob = Pick<JobDocument, 'id' | 'action'> & Partial<Pick<JobDocument, 'dead-letter' | 'attempt' | 'return-code' | 'updated'>>;

export const deadCommand: JobctlCommand = {
  command: 'dead',
  describe: 'the dead letters: jobs FAILED after the last attempt their retry policy allowed, with counts per action',
  builder: (argv) =>
    argv
      .option('action', { type: 'string', describe: 'only dead letters of this action' })
      .option('filter', { type: 'string', describe: 'a CIMI filter to narrow them further' })
      .option('last', numberFlag(`how many to list, newest first (default ${DEFAULT_LAST}); the counts cover them all`))
      .example('$0 dead --action cleanup_jobs', 'the dead letters of one action')
      .example('$0 retry --dead --action cleanup_jobs', 'then send them all back'),
  async run(ctx, args) {
    const filter = deadLetterFilter(args);
    const last = readNumber(args, 'last', DEFAULT_LAST, 1, 10_000, true);
    const api = await ctx.api();
    const { count, jobs } = await api.search({
      filter,
      orderby: 'updated:desc',
      last,
      select: ['action', 'dead-letter', 'attempt', 'return-code', 'updated'],
    });
    const byAction = await countByAction(api, filter, count);
    if (ctx.options.json) {
      ctx.out.json({ count, byAction, jobs });
      return EXIT.ok;
    }
    if (count === 0) {
      ctx.out.line('no dead letters');
      return EXIT.ok;
    }
    const now = ctx.now();
    ctx.out.lines(
      renderTable<DeadJob>(
        [
          { header: 'ID', value: (job) => job.id },
          { header: 'ACTION', value: (job) => job.action, maxWidth: 30 },
          { header: 'ATTEMPT', value: (job) => (job.attempt === undefined ? '-' : String(job.attempt)), align: 'right' },
          { header: 'RC', value: (job) => (job['return-code'] === undefined ? '-' : String(job['return-code'])), align: 'right' },
          { header: 'DEAD', value: (job) => (job['dead-letter'] === undefined ? '-' : formatAge(job['dead-letter'].at, now)) },
          { header: 'REASON', value: (job) => job['dead-letter']?.reason ?? '', maxWidth: 80 },
        ],
        jobs,
      ),
    );
    ctx.out.line('');
    ctx.out.lines(
      renderTable(
        [
          { header: 'ACTION', value: ([action]: readonly [string, number]) => action },
          { header: 'DEAD', value: ([, n]: readonly [string, number]) => String(n), align: 'right' },
        ],
        Object.entries(byAction),
      ),
    );
    ctx.out.line(`${jobs.length} of ${count} dead letter${count === 1 ? '' : 's'} listed${jobs.length < count ? ` (--last ${last})` : ''}`);
    return EXIT.ok;
  },
};

/** Dead letters per action over every match, most first (the search API aggregates only by state). */
async function countByAction(api: JobApiClient, filter: string, count: number): Promise<Record<string, number>> {
  const counts = new Map<string, number>();
  for (let first = 1; first <= count; first += PAGE) {
    const { jobs } = await api.search({ filter, orderby: 'id:asc', first, last: first + PAGE - 1, select: ['action'] });
    for (const job of jobs) counts.set(job.action, (counts.get(job.action) ?? 0) + 1);
    if (jobs.length < PAGE) break;
  }
  return Object.fromEntries([...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
}

/**
 * `jobctl retry --dead`: every dead letter the filter matches back to QUEUED for a new round, then
 * enqueued, PAGE at a time. A job retried but not enqueued is left to the queue reconciler.
 */
export async function retryDeadLetters(ctx: CommandContext, args: OptionArgs, queue: QueueRoutes): Promise<number> {
  const filter = deadLetterFilter(args);
  const api = await ctx.api();
  const enqueuer = enqueuerFor(ctx, api, queue);
  const retried: JobDocument[] = [];
  const skipped = new Map<string, string>();
  // Always the first page: every job retried leaves the filter, so the next page is the first again.
  for (;;) {
    const { jobs } = await api.search({ filter, orderby: 'id:asc', last: PAGE, select: ['action'] });
    const batch: JobDocument[] = [];
    for (const { id } of jobs) {
      try {
        batch.push(await api.retry(id));
      } catch (error) {
        // Changed meanwhile (deleted, retried by someone else): named, and left as it is.
        skipped.set(id, toError(error).message);
      }
    }
    try {
      await enqueuer.enqueue(batch, ctx.signal);
    } catch (error) {
      throw failure(
        `${String(retried.length + batch.length)} dead letter(s) are QUEUED again, but the last ${String(batch.length)} were not enqueued ` +
          `(${toError(error).message}); the queue reconciler will enqueue them`,
        error,
      );
    }
    retried.push(...batch);
    if (jobs.length < PAGE || batch.length === 0) break;
  }
  for (const [id, why] of skipped) ctx.out.warn(`not retried: ${id}: ${why}`);
  if (ctx.options.json)
    ctx.out.json({ retried: retried.length, filter, jobs: retried.map((job) => job.id), skipped: Object.fromEntries(skipped) });
  else
    ctx.out.line(
      retried.length === 0 ? `no dead letters match ${filter}` : `retried ${String(retried.length)} dead letter(s): QUEUED again, enqueued`,
    );
  return skipped.size > 0 && retried.length === 0 ? EXIT.failure : EXIT.ok;
}
