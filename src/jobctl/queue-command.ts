/** `jobctl queue`: the ZooKeeper queue's depth per priority, its taken entries and by whom, its oldest wait. */
import type { JobctlCommand } from './command.js';
import { EXIT } from './errors.js';
import { readQueueReport, type QueueReport } from './queue-report.js';
import { renderTable } from './table.js';
import { formatDuration } from './time-format.js';

export const queueCommand: JobctlCommand = {
  command: 'queue',
  describe: 'the queue in ZooKeeper: entries per priority, taken entries and by whom, oldest waiting (needs --zk-hosts)',
  builder: (argv) => argv,
  async run(ctx) {
    const zk = await ctx.zk('read the queue (jobctl queue)');
    const report = await readQueueReport(zk, ctx.options.zk.queuePath, ctx.now());
    if (ctx.options.json) ctx.out.json(report);
    else ctx.out.lines(renderQueueReport(report));
    return EXIT.ok;
  },
};

export function renderQueueReport(report: QueueReport): string[] {
  const oldest =
    report.oldestWaiting === null
      ? ''
      : `; oldest waiting ${formatDuration(report.oldestWaiting.ageSeconds * 1000)} (${report.oldestWaiting.entry})`;
  const lines = [
    `queue ${report.path}: ${plural(report.entries, 'entry', 'entries')}, ${report.waiting} waiting, ${report.taken} taken${oldest}`,
  ];
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
  const executors = report.executors.map((executor) =>
    executor.threads === null ? executor.name : `${executor.name} (${plural(executor.threads, 'thread', 'threads')})`,
  );
  lines.push('', executors.length === 0 ? 'no live executors' : `live executors: ${executors.join(', ')}`);
  return lines;
}

function plural(count: number, one: string, many: string): string {
  return `${count} ${count === 1 ? one : many}`;
}
