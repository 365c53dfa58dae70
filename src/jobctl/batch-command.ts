/**
 * `jobctl batch create|list|show|pause|resume|retry-failed|cancel|delete` (docs/batches.md). `create`
 * reads a list of task specs as JSON lines (`--tasks FILE`, `-` for stdin) and uploads it a thousand
 * at a time as it reads, so a list of any length never sits in memory; or names a generator.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { BATCH_ACTION, batchOf } from '../api/batch/batch-field.js';
import { isFinal } from '../api/job/document.js';
import { numberFlag, readNumber, readString, type OptionArgs } from '../cli/option-readers.js';
import { delay } from '../util/delay.js';
import { batchLines, batchProgressLine } from './batch-view.js';
import type { JobctlCommand } from './command.js';
import type { CommandContext } from './context.js';
import { EXIT, usageError } from './errors.js';
import { parseJobId } from './options.js';
import { renderTable } from './table.js';

const OPERATIONS = ['create', 'list', 'show', 'pause', 'resume', 'retry-failed', 'cancel', 'delete'] as const;
/** Specs per upload request. */
const UPLOAD_CHUNK = 1000;

export const batchCommand: JobctlCommand = {
  command: 'batch <operation> [target]',
  describe: `batches of tasks: ${OPERATIONS.join(', ')}`,
  builder: (argv) =>
    argv
      .positional('operation', { type: 'string', choices: OPERATIONS })
      .positional('target', { type: 'string', describe: "create: the tasks' action; the others: the batch's id" })
      .option('tasks', {
        type: 'string',
        requiresArg: true,
        describe: 'create: a file of task specs as JSON lines ({"payload": {...}}), - for stdin',
      })
      .option('generator', { type: 'string', describe: 'create: a generator module of the feeder (instead of --tasks)' })
      .option('args', { type: 'string', describe: "create: the generator's arguments, a JSON object" })
      .option('batch-size', numberFlag('create: tasks per group (default 100)'))
      .option('tasks-per-second', numberFlag('create: the most tasks fed per second (default: no limit)'))
      .option('max-in-flight', numberFlag('create: the most tasks queued or running at once (default 1000)'))
      .option('canary', numberFlag('create: run this many tasks first; the rest only if they all succeed'))
      .option('lock', { type: 'string', describe: 'create: refuse the batch while a live one holds this lock' })
      .option('queue', { type: 'string', describe: "create: the tasks' queue" })
      .option('priority', numberFlag("create: the tasks' priority (0-999)"))
      .option('follow', { alias: 'f', type: 'boolean', describe: 'show: follow the batch with a progress bar until it ends' })
      .example('$0 batch create move_chunk --tasks chunks.jsonl --tasks-per-second 50 --lock rawx/10.0.0.1:6201', 'a list batch')
      .example('$0 batch create noop --generator range --args \'{"count": 100000}\' --max-in-flight 500', 'a generator batch')
      .example('$0 batch show job/<uuid> --follow', 'progress until it ends'),
  async run(ctx, args) {
    const operation = readString(args, 'operation');
    if (operation === 'list') return list(ctx);
    if (operation === 'create') return create(ctx, args);
    const id = parseJobId(args.target);
    const api = await ctx.api();
    switch (operation) {
      case 'show':
        return show(ctx, id, args.follow === true);
      case 'cancel':
        await api.cancel(id);
        break;
      case 'delete':
        await api.delete(id);
        ctx.out.line(`${id} deleted with its tasks`);
        return EXIT.ok;
      case 'pause':
      case 'resume':
      case 'retry-failed':
        await api.batchOperation(id, operation);
        break;
      default:
        throw usageError(`unknown batch operation ${JSON.stringify(operation)}: one of ${OPERATIONS.join(', ')}`);
    }
    return show(ctx, id, false);
  },
};

async function create(ctx: CommandContext, args: OptionArgs): Promise<number> {
  const action = readString(args, 'target');
  if (action === undefined) throw usageError("batch create needs the tasks' action: jobctl batch create <action> --tasks FILE");
  const file = readString(args, 'tasks');
  const generator = readString(args, 'generator');
  if ((file === undefined) === (generator === undefined)) throw usageError('batch create needs one of --tasks FILE|- or --generator NAME');
  const body: Record<string, unknown> = { action };
  if (generator !== undefined) {
    body.generator = generator;
    const text = readString(args, 'args');
    if (text !== undefined) {
      try {
        body.args = JSON.parse(text) as unknown;
      } catch (error) {
        throw usageError(`--args must be a JSON object: ${error instanceof Error ? error.message : String(error)}`);
      }
    }
  }
  const numbers = [
    ['batch-size', 1, 1000],
    ['tasks-per-second', 0.001, 100_000],
    ['max-in-flight', 1, 1_000_000],
    ['canary', 1, 1_000_000],
  ] as const;
  for (const [key, min, max] of numbers) {
    if (args[key] !== undefined) body[key] = readNumber(args, key, 0, min, max, key !== 'tasks-per-second');
  }
  const lock = readString(args, 'lock');
  if (lock !== undefined) body.lock = lock;
  const queue = readString(args, 'queue');
  const defaults = {
    ...(queue === undefined ? {} : { queue }),
    ...(args.priority === undefined ? {} : { priority: readNumber(args, 'priority', 0, 0, 999, true) }),
  };
  if (Object.keys(defaults).length > 0) body.defaults = defaults;
  const api = await ctx.api();
  const id = await api.createBatch(body);
  if (file !== undefined) {
    const input = file === '-' ? process.stdin : createReadStream(file);
    const lines = createInterface({ input, crlfDelay: Number.POSITIVE_INFINITY });
    let chunk: unknown[] = [];
    let sent = 0;
    let lineNumber = 0;
    for await (const line of lines) {
      lineNumber += 1;
      if (line.trim() === '') continue;
      try {
        chunk.push(JSON.parse(line) as unknown);
      } catch (error) {
        throw usageError(`${file} line ${String(lineNumber)} is not JSON: ${error instanceof Error ? error.message : String(error)}`);
      }
      if (chunk.length === UPLOAD_CHUNK) {
        await api.batchOperation(id, 'tasks', { from: sent, tasks: chunk });
        sent += chunk.length;
        chunk = [];
      }
    }
    await api.batchOperation(id, 'tasks', { from: sent, tasks: chunk, seal: true });
    sent += chunk.length;
    if (!ctx.options.json) ctx.out.line(`${id}: ${String(sent)} tasks of action ${action}`);
  } else if (!ctx.options.json) ctx.out.line(`${id}: tasks of action ${action} from generator ${generator ?? ''}`);
  if (ctx.options.json) ctx.out.json({ id });
  return EXIT.ok;
}

async function list(ctx: CommandContext): Promise<number> {
  const api = await ctx.api();
  const { jobs } = await api.search({ filter: `action='${BATCH_ACTION}'`, orderby: 'created:desc', last: 50 });
  if (ctx.options.json) {
    ctx.out.json({ batches: jobs });
    return EXIT.ok;
  }
  const rows = jobs.flatMap((job) => {
    const batch = batchOf(job);
    return batch === undefined ? [] : [{ job, batch }];
  });
  if (rows.length === 0) {
    ctx.out.line('no batches');
    return EXIT.ok;
  }
  ctx.out.lines(
    renderTable(
      [
        { header: 'ID', value: ({ job }) => job.id },
        {
          header: 'STATE',
          value: ({ job, batch }) => (job.state === 'RUNNING' ? (batch.paused ? 'PAUSED' : batch.phase.toUpperCase()) : job.state),
        },
        { header: 'ACTION', value: ({ batch }) => batch.action },
        { header: 'SENT', value: ({ batch }) => String(batch.sent) },
        { header: 'DONE', value: ({ batch }) => String(batch.succeeded + batch.failed + batch.canceled) },
        {
          header: 'TOTAL',
          value: ({ batch }) => (batch.total === undefined ? '?' : `${batch['total-estimated'] ? '~' : ''}${String(batch.total)}`),
        },
        { header: 'FAILED', value: ({ batch }) => String(batch.failed) },
        { header: 'LOCK', value: ({ batch }) => batch.lock ?? '' },
      ],
      rows,
    ),
  );
  return EXIT.ok;
}

/** A batch's table; with `follow`, a progress line a second until it ends, then the table. */
export async function show(ctx: CommandContext, id: string, follow: boolean): Promise<number> {
  const api = await ctx.api();
  for (;;) {
    const { job } = await api.get(id);
    const batch = batchOf(job);
    if (batch === undefined) throw usageError(`${id} is not a batch (its action is ${job.action}): use jobctl show`);
    if (!follow || isFinal(job.state)) {
      if (ctx.options.json) ctx.out.json(job);
      else ctx.out.lines(batchLines(job, batch, ctx.now()));
      return EXIT.ok;
    }
    if (ctx.options.json) ctx.out.jsonLine(job);
    else ctx.out.line(batchProgressLine(job, batch, ctx.now()));
    try {
      await delay(1000, ctx.signal, { keepProcessAlive: true });
    } catch {
      return EXIT.interrupted;
    }
  }
}
