#!/usr/bin/env node
/**
 * `job-executor`: takes job ids from the ZooKeeper queue and runs their actions, N at a time. Options
 * come from flags, JOB_EXECUTOR_* environment variables, or a JSON config file (--config). Signals:
 * SIGTERM/SIGINT stop gracefully (a second one stops waiting), SIGUSR1 logs every running job's stack.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { Executor } from '../executor/executor.js';
import { BUNDLED_ACTIONS_DIR, EXECUTOR_DEFAULTS, compileExecutorOptions } from '../executor/options.js';
import { API_SECRET_FLAGS, argvSecretWarning, secretFlagsOnArgv } from '../cli/argv-secrets.js';
import { messageOf, toError } from '../util/errors.js';
import { Releasers } from '../util/releasers.js';
import { createWinstonLogger } from '../util/winston-logger.js';
import { failer, releaseOnSignals, serveMetrics, withEngineOptions } from './daemon-cli.js';
import { numberFlag } from '../cli/option-readers.js';
import { packageVersion } from '../cli/package-version.js';

const fail = failer('job-executor');

const args = await withEngineOptions(yargs(hideBin(process.argv)), 'JOB_EXECUTOR', EXECUTOR_DEFAULTS)
  .scriptName('job-executor')
  .usage('$0 --zk-hosts H:P[,H:P][/chroot] [--threads N] [--api-url URL] ...\n\nRuns the actions of the jobs queued in ZooKeeper.')
  .env('JOB_EXECUTOR')
  .config('config', 'JSON file with any of these options')
  .option('threads', numberFlag(`jobs run at once, each in its own worker thread (default ${EXECUTOR_DEFAULTS.threads})`))
  .option('actions-dir', {
    type: 'string',
    array: true,
    describe: `folder of drop-in action modules; repeatable (default ${BUNDLED_ACTIONS_DIR})`,
  })
  .option('queue', {
    type: 'string',
    array: true,
    describe: 'a named queue to serve (<queue-path>/queues/<name>; "default" is <queue-path> itself); repeatable (default: default)',
  })
  .option('allow-command', {
    type: 'boolean',
    describe:
      'offer the bundled `command` action, which runs any program as this user (off by default: every key that may create jobs could run code here)',
  })
  .option('in-process', {
    type: 'string',
    requiresArg: true,
    describe:
      "declared: actions that declare isolation 'in-process' run in the executor's event loop (cheaper, but no hard kill of code that never yields); never: every action runs in a worker thread (default: declared)",
  })
  .option('command-allow', {
    type: 'string',
    array: true,
    requiresArg: true,
    describe:
      'absolute path of a program actions may start, compared after resolving symlinks; repeatable; implies --allow-command, and a `command` job naming any other program (or none by absolute path) fails without starting it',
  })
  .option('command-stage-dir', {
    type: 'string',
    array: true,
    requiresArg: true,
    describe:
      'absolute path of a directory whose files `command` jobs may stage in (file:// inputs) and into which they may stage outputs; repeatable (default none: no file of this host)',
  })
  .option('command-fetch-from', {
    type: 'string',
    array: true,
    requiresArg: true,
    describe: 'an http(s) origin (https://host[:port]) `command` jobs may fetch inputs from; repeatable (default none: no URL)',
  })
  .option(
    'command-input-max-bytes',
    numberFlag(`most bytes the inputs of one \`command\` job may add up to (default ${EXECUTOR_DEFAULTS.commandInputMaxBytes})`),
  )
  .option(
    'command-fetch-timeout',
    numberFlag(`seconds one input URL's download may take (default ${EXECUTOR_DEFAULTS.commandFetchTimeoutSeconds})`),
  )
  .option('command-work-dir', {
    type: 'string',
    requiresArg: true,
    describe: "where `command` jobs' temporary working directories are made (default the system's temporary directory)",
  })
  .option(
    'shutdown-timeout',
    numberFlag(`seconds running jobs get to finish on SIGTERM (default ${EXECUTOR_DEFAULTS.shutdownTimeoutSeconds})`),
  )
  .option(
    'kill-grace',
    numberFlag(`seconds between an action's abort signal and killing its thread (default ${EXECUTOR_DEFAULTS.killGraceSeconds})`),
  )
  .option(
    'max-attempts',
    numberFlag(
      `attempts of a job that may end without a result (its executor died) before it is failed instead of run again, unless the job's max-attempts field says otherwise (default ${EXECUTOR_DEFAULTS.maxAttempts})`,
    ),
  )
  .option('cancel-poll', numberFlag(`seconds between checks for canceled running jobs (default ${EXECUTOR_DEFAULTS.cancelPollSeconds})`))
  .option(
    'unknown-action-grace',
    numberFlag(
      `seconds a job's action may be offered by no live executor before the job fails with 127 (default ${EXECUTOR_DEFAULTS.unknownActionGraceSeconds})`,
    ),
  )
  .option('name', { type: 'string', describe: "this executor's name, unique among live executors (default <host>-<pid>)" })
  .strict()
  .help()
  .version(packageVersion())
  .fail((message: string | undefined, error: Error | undefined) => {
    fail(`${error === undefined ? (message ?? 'bad arguments') : error.message}\nRun job-executor --help for usage.`);
  })
  .parseAsync();

const options = await compileExecutorOptions(args).catch((error: unknown) => fail(messageOf(error)));
const logger = createWinstonLogger({
  level: options.logLevel,
  file: options.logFile,
  defaultMeta: { daemon: 'job-executor', executor: options.name },
});
for (const flag of secretFlagsOnArgv(hideBin(process.argv), API_SECRET_FLAGS)) logger.warn(argvSecretWarning(flag, 'JOB_EXECUTOR'));

// prom-client (13 MB of a daemon's memory) is loaded only when metrics are asked for.
const metrics =
  options.metrics === undefined
    ? undefined
    : await import('../metrics/executor-metrics.js').then(
        async ({ ExecutorMetrics }) => new ExecutorMetrics((await import('../metrics/registry.js')).createDaemonRegistry(), logger),
      );
// What the daemon holds, released last-opened-first on SIGTERM/SIGINT or when its start fails.
const releasers = new Releasers();
const endpoint = await serveMetrics(options.metrics, metrics, logger, fail);
if (endpoint !== undefined) releasers.add('metrics endpoint', () => endpoint.close());

const executor = await Executor.start(options, logger, metrics).catch(async (error: unknown) => {
  logger.error('executor could not start', { error: toError(error) });
  await releasers.releaseAll().catch((releaseError: unknown) => {
    logger.warn('closing what a failed start had opened failed', { error: toError(releaseError) });
  });
  logger.close();
  return fail(messageOf(error), 1);
});
if (metrics !== undefined) {
  metrics.attach(executor);
  releasers.add('metrics', () => {
    metrics.detach();
  });
}
// Released first: the metrics stay served until the executor has stopped, so a drain can be watched to its end.
releasers.add('executor', () => executor.stop());
releaseOnSignals(releasers, executor, logger);
// Replaces Node's default for SIGUSR1 (starting the inspector on a port), as docs/contracts.md §6 notes.
process.on('SIGUSR1', () => {
  void executor.dumpStacks().catch((error: unknown) => {
    logger.error('stack dump failed', { error: toError(error) });
  });
});
