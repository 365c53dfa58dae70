/**
 * The job API read commands: `list` (a table of the most recent jobs matching a filter) and `show`
 * (one job's fields with its progress; `--follow` until it ends).
 */
import { JOB_STATES, type JobState } from '../api/job/document.js';
import { BATCH_ACTION } from '../api/batch/batch-field.js';
import { show as showBatch } from './batch-command.js';
import { numberFlag, readNumber, readString, readStrings, type OptionArgs } from '../cli/option-readers.js';
import type { JobctlCommand } from './command.js';
import type { CommandContext } from './context.js';
import { EXIT, usageError } from './errors.js';
import { EventFeed } from './event-feed.js';
import { STREAM_OPEN_WAIT_MS, followJob } from './follow.js';
import { followView } from './follow-views.js';
import { attemptLines, listColumns, showFields } from './job-view.js';
import { parseJobId } from './options.js';
import { renderFields, renderTable } from './table.js';

const DEFAULT_LAST = 20;

export const listCommand: JobctlCommand = {
  command: 'list',
  describe: 'the most recent jobs, newest first',
  builder: (argv) =>
    argv
      .option('state', {
        type: 'string',
        array: true,
        describe: `only jobs in these states (${JOB_STATES.join(', ')}); repeat or separate with commas`,
      })
      .option('action', { type: 'string', describe: 'only jobs of this action' })
      .option('filter', { type: 'string', describe: 'a CIMI filter, e.g. "created<\'now-1h\' and priority<100"' })
      .option('last', numberFlag(`how many jobs (default ${DEFAULT_LAST})`))
      .example('$0 list --state FAILED --last 5', 'the five most recent failed jobs')
      .example("$0 list --filter \"action='cleanup_jobs' and created>'now-1d'\" --json", 'as JSON'),
  async run(ctx, args) {
    const filter = listFilter(args);
    const last = readNumber(args, 'last', DEFAULT_LAST, 1, 10_000, true);
    const api = await ctx.api();
    const { count, jobs } = await api.search({ ...(filter === undefined ? {} : { filter }), orderby: 'created:desc', last });
    if (ctx.options.json) {
      ctx.out.json({ count, jobs });
      return EXIT.ok;
    }
    if (jobs.length === 0) {
      ctx.out.line(filter === undefined ? 'no jobs' : `no jobs match ${filter}`);
      return EXIT.ok;
    }
    ctx.out.lines(renderTable(listColumns(ctx.now()), jobs));
    ctx.out.line(`${jobs.length} of ${count} job${count === 1 ? '' : 's'}${jobs.length < count ? ` (--last ${last})` : ''}`);
    return EXIT.ok;
  },
};

export const showCommand: JobctlCommand = {
  command: 'show <id>',
  describe: 'one job: state, owner, attempts, progress, rate and time left, message, timings',
  builder: (argv) =>
    argv
      .positional('id', { type: 'string', describe: 'job/<uuid> or <uuid>' })
      .option('follow', { alias: 'f', type: 'boolean', describe: 'follow the job live until it ends (Ctrl-C stops following)' }),
  async run(ctx, args) {
    const id = parseJobId(args.id);
    const api = await ctx.api();
    const { job } = await api.get(id);
    // A batch is shown as OpenIO xcute shows a job: tasks, rate, percent, errors, counters.
    if (job.action === BATCH_ACTION) return showBatch(ctx, id, args.follow === true);
    if (args.follow === true) return follow(ctx, id);
    if (ctx.options.json) ctx.out.json(job);
    else {
      ctx.out.lines(renderFields(showFields(job, ctx.now())));
      const attempts = attemptLines(job);
      if (attempts.length > 0) ctx.out.lines(['attempts', ...attempts.map((text) => `  ${text}`)]);
    }
    return EXIT.ok;
  },
};

async function follow(ctx: CommandContext, id: string): Promise<number> {
  const api = await ctx.api();
  // Subscribed before the read: whatever happens after it comes as an event.
  const feed = EventFeed.open(api, { job: id }, ctx.signal);
  try {
    await feed.opened(STREAM_OPEN_WAIT_MS);
    const final = await followJob(api, feed, id, followView(ctx, { details: true }));
    return final === undefined ? EXIT.interrupted : EXIT.ok;
  } finally {
    feed.close();
  }
}

/** `--state`, `--action` and `--filter` as one CIMI filter; undefined when none is given. */
export function listFilter(args: OptionArgs): string | undefined {
  const parts: string[] = [];
  const states = readStates(args);
  if (states !== undefined) parts.push(states.length === 1 ? `state=${quote(states[0] ?? '')}` : `state=[${states.map(quote).join(',')}]`);
  const action = readString(args, 'action');
  if (action !== undefined) parts.push(`action=${quote(action)}`);
  const filter = readString(args, 'filter');
  if (filter !== undefined) parts.push(parts.length === 0 ? filter : `(${filter})`);
  return parts.length === 0 ? undefined : parts.join(' and ');
}

function readStates(args: OptionArgs): JobState[] | undefined {
  const given = readStrings(args, 'state', 'a job state')?.flatMap((value) => value.split(','));
  if (given === undefined) return undefined;
  return given.map((value) => {
    const state = JOB_STATES.find((known) => known === value.trim().toUpperCase());
    if (state === undefined) throw usageError(`--state ${JSON.stringify(value)} is not a job state: one of ${JOB_STATES.join(', ')}`);
    return state;
  });
}

/** A CIMI string literal: a backslash takes the next character literally. */
export function quote(text: string): string {
  return `'${text.replace(/[\\']/g, (char) => `\\${char}`)}'`;
}
