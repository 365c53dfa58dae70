/**
 * `jobctl create <action>`: a job persisted through the job API, then enqueued in ZooKeeper, by the
 * same JobSubmitter (and JobEnqueuer) distributors use. `--wait` follows it to its end and exits with
 * its return code.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { NewJob } from '../api/client/inputs.js';
import type { JobApiClient } from '../api/client/index.js';
import { DEFAULT_JOB_PRIORITY, MAX_ATTEMPTS_LIMIT, type JobDocument } from '../api/job/document.js';
import { numberFlag, readNumber, readString, type OptionArgs } from '../cli/option-readers.js';
import { JobSubmitter, type SubmittedJob } from '../enqueue/job-submitter.js';
import type { QueueRoutes } from '../recipes/queue-routes.js';
import { QUEUE_NAME_RULE, isQueueName } from '../recipes/queue-layout.js';
import { toError } from '../util/errors.js';
import { isZkError } from '../zk/errors.js';
import type { JobctlCommand } from './command.js';
import type { CommandContext } from './context.js';
import { enqueuerFor, warningsOf } from './enqueuer.js';
import { EXIT, failure, usageError } from './errors.js';
import { EventFeed } from './event-feed.js';
import { STREAM_OPEN_WAIT_MS, followJob } from './follow.js';
import { followView } from './follow-views.js';

export const createCommand: JobctlCommand = {
  command: 'create <action>',
  describe: 'create a job and enqueue it (needs --zk-hosts); --wait follows it and exits with its return code',
  builder: (argv) =>
    argv
      .positional('action', { type: 'string', describe: 'the action the job runs' })
      .option('target', { type: 'string', describe: 'the resource the job acts on (target-resource href)' })
      .option('priority', numberFlag("0-999, lower runs first (default: the API's, 999)"))
      .option('payload', { type: 'string', describe: "the action's arguments: JSON text, or @FILE to read it from a file" })
      .option('timeout', numberFlag("seconds the job may run (default: the action's own)"))
      .option(
        'max-attempts',
        numberFlag(
          "1-1000: attempts that may end without a result (their executor died) before the job is failed (default: the action's, else the executor's)",
        ),
      )
      .option('queue', {
        type: 'string',
        describe: 'the named queue the job goes to: only executors given --queue <name> take it (default: default)',
      })
      .option('wait', {
        alias: 'w',
        type: 'boolean',
        describe: 'follow the job to its end; exit 0 on SUCCESS, its return code on FAILED (1 if none), 130 on CANCELED',
      })
      .example('$0 create dummy_test_action --payload \'{"seconds": 3}\' --wait', 'run a job and wait for it')
      .example('$0 create command --payload @job.json --priority 50', 'the payload from a file'),
  async run(ctx, args) {
    const job = await newJobFrom(args, process.cwd());
    const wait = args.wait === true;
    // ZooKeeper first: no job is persisted when it could not be enqueued right after.
    const queue = await ctx.queue('enqueue the job (jobctl create)');
    const api = await ctx.api();
    // Subscribed before the job exists: its end cannot come before the subscription.
    const feed = wait ? EventFeed.open(api, { action: job.action }, ctx.signal) : undefined;
    try {
      await feed?.opened(STREAM_OPEN_WAIT_MS);
      const submitted = await submitOne(ctx, api, queue, job);
      if (!ctx.options.json)
        ctx.out.line(
          `created ${submitted.id} (${job.action}, priority ${job.priority ?? DEFAULT_JOB_PRIORITY})${submitted.enqueued ? ', enqueued' : ''}`,
        );
      else if (!wait) ctx.out.json(submitted);
      if (feed === undefined) return EXIT.ok;
      const final = await followJob(api, feed, submitted.id, followView(ctx, { details: false }));
      return final === undefined ? EXIT.interrupted : exitCodeOf(final);
    } finally {
      feed?.close();
    }
  },
};

/** The exit code `create --wait` ends with: what a shell script expects of the job as a command. */
export function exitCodeOf(job: Pick<JobDocument, 'state' | 'return-code'>): number {
  switch (job.state) {
    case 'SUCCESS':
      return EXIT.ok;
    case 'CANCELED':
      return EXIT.interrupted;
    default: {
      // An exit status is one byte: 256 would read as success.
      const code = job['return-code'];
      return code !== undefined && Number.isInteger(code) && code >= 1 && code <= 255 ? code : EXIT.failure;
    }
  }
}

/** The job the options describe, checked before anything is sent. */
export async function newJobFrom(args: OptionArgs, cwd: string): Promise<NewJob> {
  const action = readString(args, 'action') ?? '';
  if (!/^[A-Za-z0-9_.:-]+$/.test(action)) throw usageError(`${JSON.stringify(action)} is not an action name: letters, digits, _ . : -`);
  const target = readString(args, 'target');
  const payload = await readPayload(readString(args, 'payload'), cwd);
  const priority = args.priority === undefined ? undefined : readNumber(args, 'priority', 0, 0, 999, true);
  const timeout = args.timeout === undefined ? undefined : readNumber(args, 'timeout', 0, 1, 31 * 24 * 3600, true);
  const maxAttempts = args['max-attempts'] === undefined ? undefined : readNumber(args, 'max-attempts', 1, 1, MAX_ATTEMPTS_LIMIT, true);
  const queue = readString(args, 'queue');
  if (queue !== undefined && !isQueueName(queue)) throw usageError(`queue name ${JSON.stringify(queue)} is not valid: ${QUEUE_NAME_RULE}`);
  return {
    action,
    ...(target === undefined ? {} : { 'target-resource': { href: target } }),
    ...(payload === undefined ? {} : { payload }),
    ...(priority === undefined ? {} : { priority }),
    ...(timeout === undefined ? {} : { timeout }),
    ...(maxAttempts === undefined ? {} : { 'max-attempts': maxAttempts }),
    ...(queue === undefined ? {} : { queue }),
  };
}

async function readPayload(given: string | undefined, cwd: string): Promise<string | undefined> {
  if (given === undefined) return undefined;
  let text = given;
  let where = '--payload';
  if (given.startsWith('@')) {
    const file = path.resolve(cwd, given.slice(1));
    where = `--payload file ${file}`;
    text = await readFile(file, 'utf8').catch((error: unknown) => {
      throw usageError(`${where} cannot be read: ${toError(error).message}`);
    });
  }
  try {
    JSON.parse(text);
  } catch (error) {
    throw usageError(`${where} is not JSON: ${toError(error).message}`);
  }
  return text.trim();
}

async function submitOne(ctx: CommandContext, api: JobApiClient, queue: QueueRoutes, job: NewJob): Promise<SubmittedJob> {
  let submitted: SubmittedJob | undefined;
  try {
    // As distributors submit: `enqueued` announced on the event stream, for whoever follows the job.
    [submitted] = await new JobSubmitter(api, enqueuerFor(ctx, api, queue), warningsOf(ctx), (name) => queue.window.room(name)).submit(
      [job],
      ctx.signal,
    );
  } catch (error) {
    // The API's part failed (nothing to undo), or ZooKeeper's, after the job was persisted.
    if (!isZkError(error)) throw error;
    throw failure(`the job was created but not enqueued (${error.message}); the queue reconciler will enqueue it`, error);
  }
  if (submitted === undefined) throw failure('the job API answered the create without a job');
  return submitted;
}
