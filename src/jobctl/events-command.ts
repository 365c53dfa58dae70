/** `jobctl events`: the live lifecycle events, one line each (JSON lines with --json), until Ctrl-C. */
import { readString } from '../cli/option-readers.js';
import type { JobctlCommand } from './command.js';
import { EXIT } from './errors.js';
import { EventFeed } from './event-feed.js';
import { eventLine } from './event-line.js';
import { parseJobId } from './options.js';

/** Quiet spells need no action here: the feed is only asked again. */
const IDLE_MS = 60_000;

export const eventsCommand: JobctlCommand = {
  command: 'events',
  describe: 'follow the live job events (created, enqueued, taken, started, progress, finished, ...) until Ctrl-C',
  builder: (argv) =>
    argv
      .option('action', { type: 'string', describe: 'only events of jobs of this action' })
      .option('job', { type: 'string', describe: 'only events of this job (job/<uuid> or <uuid>)' }),
  async run(ctx, args) {
    const job = args.job === undefined ? undefined : parseJobId(args.job);
    const action = readString(args, 'action');
    const api = await ctx.api();
    const feed = EventFeed.open(api, { ...(job === undefined ? {} : { job }), ...(action === undefined ? {} : { action }) }, ctx.signal);
    try {
      for (;;) {
        const item = await feed.next(IDLE_MS);
        if (item === 'ended') return EXIT.ok;
        if (item === 'idle') continue;
        if (item.kind === 'reopened') ctx.out.warn(`event stream reopened after: ${item.reason}; events in the gap may be missing`);
        else if (ctx.options.json) ctx.out.jsonLine(item.event);
        else ctx.out.line(eventLine(item.event, { withJob: true }));
      }
    } finally {
      feed.close();
    }
  },
};
