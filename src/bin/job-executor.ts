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
import { messageOf } from '../util/errors.js';
import { LOG_LEVELS, createWinstonLogger } from '../util/winston-logger.js';

const fail = (message: string, code = 2): never => {
  process.stderr.write(`job-executor: ${message}\n`);
  process.exit(code);
};

const args = await yargs(hideBin(process.argv))
  .scriptName('job-executor')
  .usage('$0 --zk-hosts H:P[,H:P][/chroot] [--threads N] [--api-url URL] ...\n\nRuns the actions of the jobs queued in ZooKeeper.')
  .env('JOB_EXECUTOR')
  .config('config', 'JSON file with any of these options')
  .option('zk-hosts', { type: 'string', describe: 'ZooKeeper connection string (required)' })
  .option('threads', { type: 'number', describe: `jobs run at once, each in its own worker thread (default ${EXECUTOR_DEFAULTS.threads})` })
  .option('api-url', { type: 'string', describe: `job API root (default ${EXECUTOR_DEFAULTS.apiUrl})` })
  .option('api-key', { type: 'string', describe: 'API key (prefer --api-key-file or JOB_EXECUTOR_API_KEY)' })
  .option('api-secret', { type: 'string', describe: 'API secret (prefer --api-key-file or JOB_EXECUTOR_API_SECRET)' })
  .option('api-key-file', { type: 'string', describe: 'file with the API key: JSON {key, secret} or "key: ..." and "secret: ..." lines' })
  .option('api-compatibility', { choices: ['auto', 'engine', 'nuvla'], describe: 'job API flavour (default auto: detected)' })
  .option('api-timeout', { type: 'number', describe: `seconds per API request (default ${EXECUTOR_DEFAULTS.apiTimeoutSeconds})` })
  .option('actions-dir', { type: 'string', array: true, describe: `folder of drop-in action modules; repeatable (default ${BUNDLED_ACTIONS_DIR})` })
  .option('shutdown-timeout', { type: 'number', describe: `seconds running jobs get to finish on SIGTERM (default ${EXECUTOR_DEFAULTS.shutdownTimeoutSeconds})` })
  .option('kill-grace', { type: 'number', describe: `seconds between an action's abort signal and killing its thread (default ${EXECUTOR_DEFAULTS.killGraceSeconds})` })
  .option('session-timeout', { type: 'number', describe: `ZooKeeper session timeout in seconds (default ${EXECUTOR_DEFAULTS.sessionTimeoutSeconds})` })
  .option('connect-timeout', { type: 'number', describe: `seconds to wait for ZooKeeper at start (default ${EXECUTOR_DEFAULTS.connectTimeoutSeconds})` })
  .option('cancel-poll', { type: 'number', describe: `seconds between checks for canceled running jobs (default ${EXECUTOR_DEFAULTS.cancelPollSeconds})` })
  .option('queue-path', { type: 'string', describe: `ZooKeeper queue root (default ${EXECUTOR_DEFAULTS.queuePath})` })
  .option('name', { type: 'string', describe: 'this executor\'s name, unique among live executors (default <host>-<pid>)' })
  .option('log-level', { choices: LOG_LEVELS, describe: 'error, warn, info (default) or debug' })
  .option('log-file', { type: 'string', describe: 'also log to this file (rotated at 10 MB, 5 kept)' })
  .strict()
  .help()
  .version(false)
  .fail((message: string | undefined, error: Error | undefined) => {
    fail(`${error === undefined ? (message ?? 'bad arguments') : error.message}\nRun job-executor --help for usage.`);
  })
  .parseAsync();

const options = await compileExecutorOptions(args).catch((error: unknown) => fail(messageOf(error)));
const logger = createWinstonLogger({ level: options.logLevel, file: options.logFile, defaultMeta: { daemon: 'job-executor', executor: options.name } });

let executor: Executor;
try {
  executor = await Executor.start(options, logger);
} catch (error) {
  logger.error('executor could not start', { error: messageOf(error) });
  logger.close();
  fail(messageOf(error), 1);
}

const stop = (signal: NodeJS.Signals): void => {
  logger.info('signal received', { signal });
  void executor.stop().then(
    () => {
      logger.close();
    },
    (error: unknown) => {
      logger.error('clean stop failed', { error: messageOf(error) });
      process.exitCode = 1;
      logger.close();
    },
  );
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
// Replaces Node's default for SIGUSR1 (starting the inspector on a port), as design.md §7 notes.
process.on('SIGUSR1', () => {
  void executor.dumpStacks().catch((error: unknown) => {
    logger.error('stack dump failed', { error: messageOf(error) });
  });
});
