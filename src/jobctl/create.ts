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
import { MAX_RETRY_DELAY_SECONDS, checkRetrySpec, toJobRetryField, type JobRetryField } from '../api/job/retry-policy.js';
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
import { notBeforeOf } from './start-time.js';

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
      .option('retry', {
        type: 'string',
        describe:
          'the job\'s retry policy as JSON, over its action\'s field by field: {"attempts": 3, "backoff": "exponential", "delay-seconds": 5, "max-delay-seconds": 300, "jitter": 0.2, "on": [1, 75] or "any"}',
      })
      .option('retry-attempts', numberFlag("1-1000: attempts in all when attempts fail (sets the policy's attempts)"))
      .option('retry-delay', numberFlag("seconds before the second attempt (sets the policy's delay-seconds)"))
      .option('at', {
        type: 'string',
        requiresArg: true,
        describe: 'start it no sooner than this ISO-8601 instant, e.g. 2026-12-05T03:00Z (its not-before; no offset means UTC)',
      })
      .option('in', {
        type: 'string',
        requiresArg: true,
        describe: 'start it no sooner than this long from now: 30s, 10m, 2h, 1d (sets not-before)',
      })
      .option('wait', {
        alias: 'w',
        type: 'boolean',
        describe: 'follow the job to its end; exit 0 on SUCCESS, its return code on FAILED (1 if none), 130 on CANCELED',
      })
      .example('$0 create dummy_test_action --payload \'{"seconds": 3}\' --wait', 'run a job and wait for it')
      .example('$0 create command --payload @job.json --priority 50', 'the payload from a file')
      .example('$0 create cleanup_jobs --in 10m', 'a job that starts in ten minutes (the job_scheduler enqueues it then)'),
  async run(ctx, args) {
    const job = await newJobFrom(args, process.cwd(), ctx.now());
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
          `created ${submitted.id} (${job.action}, priority ${job.priority ?? DEFAULT_JOB_PRIORITY})${
            submitted.enqueued ? ', enqueued' : submitted.notBefore === undefined ? '' : `, not before ${submitted.notBefore}`
          }`,
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
export async function newJobFrom(args: OptionArgs, cwd: string, now: number = Date.now()): Promise<NewJob> {
  const action = readString(args, 'action') ?? '';
  if (!/^[A-Za-z0-9_.:-]+$/.test(action)) throw usageError(`${JSON.stringify(action)} is not an action name: letters, digits, _ . : -`);
  const target = readString(args, 'target');
  const payload = await readPayload(readString(args, 'payload'), cwd);
  const priority = args.priority === undefined ? undefined : readNumber(args, 'priority', 0, 0, 999, true);
  const timeout = args.timeout === undefined ? undefined : readNumber(args, 'timeout', 0, 1, 31 * 24 * 3600, true);
  const maxAttempts = args['max-attempts'] === undefined ? undefined : readNumber(args, 'max-attempts', 1, 1, MAX_ATTEMPTS_LIMIT, true);
  const queue = readString(args, 'queue');
  if (queue !== undefined && !isQueueName(queue)) throw usageError(`queue name ${JSON.stringify(queue)} is not valid: ${QUEUE_NAME_RULE}`);
  const retry = readRetry(args);
  const notBefore = notBeforeOf(readString(args, 'at'), readString(args, 'in'), now);
  return {
    action,
    ...(target === undefined ? {} : { 'target-resource': { href: target } }),
    ...(payload === undefined ? {} : { payload }),
    ...(priority === undefined ? {} : { priority }),
    ...(timeout === undefined ? {} : { timeout }),
    ...(maxAttempts === undefined ? {} : { 'max-attempts': maxAttempts }),
    ...(queue === undefined ? {} : { queue }),
    ...(retry === undefined ? {} : { retry }),
    ...(notBefore === undefined ? {} : { 'not-before': notBefore }),
  };
}

/** `--retry` JSON with `--retry-attempts` and `--retry-delay` over it, checked as the job API checks it. */
function readRetry(args: OptionArgs): JobRetryField | undefined {
  const text = readString(args, 'retry');
  let given: unknown = {};
  if (text !== undefined) {
    try {
      given = JSON.parse(text);
    } catch (error) {
      throw usageError(`--retry is not JSON: ${toError(error).message}`);
    }
  }
  const overrides: Record<string, unknown> = {};
  if (args['retry-attempts'] !== undefined) overrides.attempts = readNumber(args, 'retry-attempts', 1, 1, MAX_ATTEMPTS_LIMIT, true);
  if (args['retry-delay'] !== undefined) overrides['delay-seconds'] = readNumber(args, 'retry-delay', 0, 0, MAX_RETRY_DELAY_SECONDS);
  if (text === undefined && Object.keys(overrides).length === 0) return undefined;
  const isObject = typeof given === 'object' && given !== null && !Array.isArray(given);
  const checked = checkRetrySpec(isObject ? { ...(given as Record<string, unknown>), ...overrides } : given, 'kebab', '--retry');
  if ('problems' in checked) throw usageError(`invalid retry policy: ${checked.problems.join('; ')}`);
  return toJobRetryField(checked.spec);
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
