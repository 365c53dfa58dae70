/**
 * `jobctl queue`: each ZooKeeper queue (the default one, then every named queue under
 * `<root>/queues`), its depth per priority, its taken entries and by whom, its oldest wait, the
 * entries rejected as not a job id, and the live executors serving it. `jobctl queue remove <entry>`
 * deletes one entry by name: waiting or rejected, or taken with --force; `--queue` picks the queue.
 * `jobctl queue window [N]` shows or sets the window, the entries each queue may hold before
 * producers park jobs in the job API (src/recipes/queue-window.ts).
 */
import { EntryRemovalError, removeEntry } from '../recipes/entry-removal.js';
import { DEFAULT_QUEUE_NAME, QUEUE_NAME_RULE, describeEntryData, isQueueName, namedQueuePaths } from '../recipes/queue-layout.js';
import type { RejectedEntry } from '../recipes/rejected-entries.js';
import type { JobctlCommand } from './command.js';
import type { CommandContext } from './context.js';
import { EXIT, failure, usageError } from './errors.js';
import { readQueuesReport, type QueueReport, type QueuesReport } from '../views/queue-report.js';
import { renderTable } from './table.js';
import { QueueWindow, parseWindowSize, windowPath } from '../recipes/queue-window.js';
import { isZkError } from '../zk/errors.js';
import { formatDuration } from './time-format.js';

/** Rejected entries shown in the human view; --json has them all. */
const REJECTED_SHOWN = 20;

export const queueCommand: JobctlCommand = {
  command: 'queue [verb] [entry]',
  describe:
    'the queue in ZooKeeper: entries per priority, taken entries and by whom, oldest waiting, rejected entries; ' +
    '"queue remove <entry>" deletes one entry (needs --zk-hosts)',
  builder: (argv) =>
    argv
      .positional('verb', {
        type: 'string',
        choices: ['remove', 'window'],
        describe: 'remove: delete the entry named next; window: show the window, or set it to the number given next',
      })
      .positional('entry', {
        type: 'string',
        describe: 'remove: an entry name, entry-PPP-SSSSSSSSSS (as jobctl queue shows it); window: entries per queue, 1-1000000',
      })
      .option('force', { type: 'boolean', describe: 'with remove: also remove an entry a consumer holds (its job may be running)' })
      .option('queue', {
        type: 'string',
        describe: 'only this named queue ("default" is the queue root); with remove: the queue of the entry',
      })
      .example('$0 queue remove entry-100-0000000042', 'delete a waiting or rejected entry')
      .example('$0 queue window 50000', 'let each queue hold 50,000 entries before producers park jobs')
      .example('$0 queue --queue gpu', 'only the named queue gpu'),
  async run(ctx, args) {
    const only = queueOption(args.queue);
    if (args.verb === 'remove') return remove(ctx, args.entry, args.force === true, only ?? DEFAULT_QUEUE_NAME);
    if (args.verb === 'window') return setOrShowWindow(ctx, args.entry);
    if (args.verb !== undefined)
      throw usageError(`unknown queue command ${JSON.stringify(args.verb)}: jobctl queue, or jobctl queue remove <entry>`);
    if (args.force !== undefined) throw usageError('--force goes with jobctl queue remove <entry>');
    const zk = await ctx.zk('read the queue (jobctl queue)');
    const report = await readQueuesReport(zk, ctx.options.zk.queuePath, ctx.now(), only);
    if (ctx.options.json) ctx.out.json(report);
    else ctx.out.lines(renderQueueReport(report));
    return EXIT.ok;
  },
};

function queueOption(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (!isQueueName(value)) throw usageError(`--queue: queue name ${JSON.stringify(value)} is not valid: ${QUEUE_NAME_RULE}`);
  return value;
}

async function remove(ctx: CommandContext, entry: unknown, force: boolean, queue: string): Promise<number> {
  if (typeof entry !== 'string' || entry === '') throw usageError('jobctl queue remove needs an entry name, e.g. entry-100-0000000042');
  const zk = await ctx.zk('remove a queue entry (jobctl queue remove)');
  let result;
  try {
    result = await removeEntry(zk, namedQueuePaths(ctx.options.zk.queuePath, queue), entry, force);
  } catch (error) {
    if (error instanceof EntryRemovalError) throw error.code === 'bad-name' ? usageError(error.message) : failure(error.message);
    throw error;
  }
  const data = describeEntryData(result.data);
  if (ctx.options.json) {
    ctx.out.json({ entry, removed: result.removed, ...data, ...(result.removed === 'entry' ? { takenBy: result.takenBy ?? null } : {}) });
  } else {
    const what = result.removed === 'rejected' ? 'rejected entry' : 'entry';
    const held = result.removed === 'entry' && result.takenBy !== undefined ? `, taken by consumer ${result.takenBy}` : '';
    ctx.out.line(`removed ${what} ${entry} (${showData(data)}${held})`);
  }
  return EXIT.ok;
}

async function setOrShowWindow(ctx: CommandContext, value: unknown): Promise<number> {
  const root = ctx.options.zk.queuePath;
  const zk = await ctx.zk('read or set the queue window (jobctl queue window)');
  if (value !== undefined) {
    const size = parseWindowSize(typeof value === 'string' ? value : JSON.stringify(value));
    if (typeof size === 'string') throw usageError(`jobctl queue window: ${size}`);
    const path = windowPath(root);
    const data = Buffer.from(String(size));
    await zk.mkdirp(root);
    try {
      await zk.create(path, data);
    } catch (error) {
      if (!isZkError(error, 'NODE_EXISTS')) throw error;
      await zk.setData(path, data);
    }
  }
  // Read back fresh, as producers will within 5 s.
  const size = await new QueueWindow(zk, root).size();
  if (ctx.options.json) ctx.out.json({ window: size, path: windowPath(root) });
  else ctx.out.line(`window: ${size} entries per queue (${windowPath(root)})`);
  return EXIT.ok;
}

function showData(data: { readonly text: string | null; readonly hex: string }): string {
  return data.text === null ? `hex ${data.hex}` : JSON.stringify(data.text);
}

export function renderQueueReport(report: QueuesReport): string[] {
  const lines: string[] = [`window: ${report.window} entries per queue; producers park the jobs beyond it in the job API`];
  for (const queue of report.queues) {
    if (lines.length > 0) lines.push('');
    lines.push(...renderOneQueue(queue));
  }
  const executors = report.executors.map((executor) =>
    executor.threads === null ? executor.name : `${executor.name} (${plural(executor.threads, 'thread', 'threads')})`,
  );
  lines.push('', executors.length === 0 ? 'no live executors' : `live executors: ${executors.join(', ')}`);
  return lines;
}

function renderOneQueue(report: QueueReport): string[] {
  const oldest =
    report.oldestWaiting === null
      ? ''
      : `; oldest waiting ${formatDuration(report.oldestWaiting.ageSeconds * 1000)} (${report.oldestWaiting.entry})`;
  const lines = [
    `queue ${report.name} (${report.path}): ${plural(report.entries, 'entry', 'entries')}, ${report.waiting} waiting, ${report.taken} taken${oldest}`,
  ];
  if (report.unserved)
    lines.push(`warning: no live executor serves queue ${report.name}: its entries wait until one given --queue ${report.name} starts`);
  else if (report.servedBy.length > 0) lines.push(`served by: ${report.servedBy.join(', ')}`);
  if (report.priorities.length > 0) {
    lines.push(
      '',
      ...renderTable(
        [
          { header: 'PRIORITY', value: (band) => String(band.priority).padStart(3, '0') },
          { header: 'WAITING', value: (band) => String(band.waiting), align: 'right' },
          { header: 'TAKEN', value: (band) => String(band.taken), align: 'right' },
          {
            header: 'OLDEST WAITING',
            value: (band) => (band.oldestWaiting === null ? '-' : formatDuration(band.oldestWaiting.ageSeconds * 1000)),
          },
        ],
        report.priorities,
      ),
    );
  }
  if (report.takenEntries.length > 0) {
    lines.push(
      '',
      ...renderTable(
        [
          { header: 'TAKEN ENTRY', value: (entry) => entry.entry },
          { header: 'JOB', value: (entry) => entry.jobId ?? '-' },
          { header: 'BY', value: (entry) => entry.executor ?? '(not a registered executor)' },
          { header: 'CONSUMER', value: (entry) => entry.consumerId ?? '-' },
          { header: 'FOR', value: (entry) => formatDuration(entry.forSeconds * 1000) },
        ],
        report.takenEntries,
      ),
    );
  }
  if (report.rejected.length > 0) lines.push('', ...renderRejected(report.rejected, report.name));
  return lines;
}

/** The newest rejected entries, oldest of them first, with what to do about them. */
function renderRejected(rejected: readonly RejectedEntry[], queue: string): string[] {
  const shown = rejected.slice(-REJECTED_SHOWN);
  const more = rejected.length > shown.length ? ` (the newest ${shown.length} shown; --json has all)` : '';
  return [
    `rejected entries (not a job id): ${rejected.length}${more}`,
    ...renderTable(
      [
        { header: 'REJECTED ENTRY', value: (entry) => entry.entry },
        { header: 'DATA', value: (entry) => showData(entry) },
        { header: 'SIZE', value: (entry) => `${entry.bytes} B`, align: 'right' },
      ],
      shown,
    ),
    `jobctl queue remove <entry>${queue === DEFAULT_QUEUE_NAME ? '' : ` --queue ${queue}`} deletes one once looked at`,
  ];
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}
