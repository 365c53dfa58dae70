/**
 * The commands that change jobs: `cancel`, `retry` (a final job back to QUEUED as a new attempt, and
 * enqueued) and `delete` (one job, or every job a filter matches, after a confirmation).
 */
import { JOB_STATES } from '../api/job/document.js';
import type { JobctlCommand } from './command.js';
import type { CommandContext } from './context.js';
import { retryDeadLetters } from './dead-letters.js';
import { enqueuerFor } from './enqueuer.js';
import { EXIT, failure, usageError } from './errors.js';
import { listFilter } from './list-show.js';
import { parseJobId } from './options.js';
import { toError } from '../util/errors.js';

export const cancelCommand: JobctlCommand = {
  command: 'cancel <id>',
  describe: 'cancel a QUEUED or RUNNING job (a running action is stopped by its executor)',
  builder: (argv) => argv.positional('id', { type: 'string', describe: 'job/<uuid> or <uuid>' }),
  async run(ctx, args) {
    const id = parseJobId(args.id);
    const api = await ctx.api();
    await api.cancel(id);
    const { job } = await api.get(id);
    if (ctx.options.json) ctx.out.json(job);
    else ctx.out.line(`canceled ${id}`);
    return EXIT.ok;
  },
};

export const retryCommand: JobctlCommand = {
  command: 'retry [id]',
  describe:
    'put a final job (SUCCESS, FAILED, CANCELED) back to QUEUED as a new attempt, and enqueue it (needs --zk-hosts); --dead: every dead letter (of --action)',
  builder: (argv) =>
    argv
      .positional('id', { type: 'string', describe: 'job/<uuid> or <uuid>' })
      .option('dead', { type: 'boolean', describe: 'retry every dead letter (jobctl dead lists them), or those of --action / --filter' })
      .option('action', { type: 'string', describe: 'with --dead: only dead letters of this action' })
      .option('filter', { type: 'string', describe: 'with --dead: a CIMI filter to narrow them further' })
      .example('$0 retry --dead --action cleanup_jobs', 'send the dead letters of one action back, for a new round of attempts'),
  async run(ctx, args) {
    const dead = args.dead === true;
    if (dead && args.id !== undefined) throw usageError('give a job id or --dead, not both');
    if (!dead && (args.action !== undefined || args.filter !== undefined)) throw usageError('--action and --filter go with --dead');
    if (dead) return retryDeadLetters(ctx, args, await ctx.queue('enqueue the retried jobs (jobctl retry --dead)'));
    if (args.id === undefined) throw usageError('give a job id, or --dead for the dead letters');
    const id = parseJobId(args.id);
    // ZooKeeper first: a job is not made QUEUED again when it could not be enqueued right after.
    const queue = await ctx.queue('enqueue the retried job (jobctl retry)');
    const api = await ctx.api();
    const job = await api.retry(id);
    let entry: string | undefined;
    try {
      // Announced on the event stream, then enqueued, as every enqueue is.
      [entry] = await enqueuerFor(ctx, api, queue).enqueue([job], ctx.signal);
    } catch (error) {
      throw failure(
        `${job.id} is QUEUED again but was not enqueued (${toError(error).message}); the queue reconciler will enqueue it`,
        error,
      );
    }
    if (entry === undefined) throw failure(`${job.id} is QUEUED again but ZooKeeper answered its enqueue without an entry`);
    if (ctx.options.json) ctx.out.json(job);
    else ctx.out.line(`retried ${job.id}: QUEUED again, enqueued as ${entry}`);
    return EXIT.ok;
  },
};

export const deleteCommand: JobctlCommand = {
  command: 'delete [id]',
  describe: 'delete one job, or every job matching --filter/--state/--action (asks first unless --yes)',
  builder: (argv) =>
    argv
      .positional('id', { type: 'string', describe: 'job/<uuid> or <uuid>' })
      .option('filter', { type: 'string', describe: 'delete every job this CIMI filter matches' })
      .option('state', { type: 'string', array: true, describe: 'with or instead of --filter: only jobs in these states' })
      .option('action', { type: 'string', describe: 'with or instead of --filter: only jobs of this action' })
      .option('yes', { alias: 'y', type: 'boolean', describe: 'do not ask for confirmation (needed without a terminal)' })
      .example('$0 delete --state FAILED --filter "created<\'now-7d\'"', 'failed jobs older than a week'),
  async run(ctx, args) {
    const filter = listFilter(args);
    if (args.id !== undefined && filter !== undefined)
      throw usageError('give a job id or a filter (--filter, --state, --action), not both');
    if (args.id !== undefined) return deleteOne(ctx, parseJobId(args.id));
    if (filter === undefined) throw usageError('give a job id, or --filter, --state or --action to delete many');
    return deleteMatching(ctx, filter, args.yes === true);
  },
};

async function deleteOne(ctx: CommandContext, id: string): Promise<number> {
  await (await ctx.api()).delete(id);
  if (ctx.options.json) ctx.out.json({ deleted: 1, id });
  else ctx.out.line(`deleted ${id}`);
  return EXIT.ok;
}

async function deleteMatching(ctx: CommandContext, filter: string, yes: boolean): Promise<number> {
  const api = await ctx.api();
  const counts = await api.countByState(filter);
  const total = JOB_STATES.reduce((sum, state) => sum + counts[state], 0);
  if (total === 0) {
    if (ctx.options.json) ctx.out.json({ deleted: 0, filter });
    else ctx.out.line(`no jobs match ${filter}: nothing deleted`);
    return EXIT.ok;
  }
  const breakdown = JOB_STATES.filter((state) => counts[state] > 0)
    .map((state) => `${counts[state]} ${state}`)
    .join(', ');
  const what = `${total} job${total === 1 ? '' : 's'} matching ${filter} (${breakdown})`;
  if (!yes) {
    const answer = await ctx.out.confirm(`delete ${what}?`, ctx.signal);
    if (answer === undefined) throw usageError(`refusing to delete ${what} without a confirmation: stdin is not a terminal (add --yes)`);
    if (!answer) throw failure('not confirmed: nothing deleted');
  }
  const deleted = await api.deleteMatching(filter);
  if (ctx.options.json) ctx.out.json({ deleted, filter });
  else ctx.out.line(`deleted ${deleted} job${deleted === 1 ? '' : 's'}`);
  return EXIT.ok;
}
