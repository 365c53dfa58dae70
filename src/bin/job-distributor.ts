#!/usr/bin/env node
/**
 * `job-distributor <name...>`: the engine's distributed cron. For each named distribution it stands in
 * that distribution's election; the leader creates the distribution's jobs on its schedule. Options
 * come from flags, JOB_DISTRIBUTOR_* environment variables, or a JSON config file (--config). SIGTERM
 * and SIGINT stop it at once (a tick in progress is abandoned; its jobs are idempotent).
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { Distributor } from '../distributor/distributor.js';
import { BUNDLED_DISTRIBUTORS_DIR, DISTRIBUTOR_DEFAULTS, compileDistributorOptions } from '../distributor/options.js';
import { DEFAULT_API_URL } from '../cli/option-readers.js';
import { messageOf } from '../util/errors.js';
import { LOG_LEVELS, createWinstonLogger } from '../util/winston-logger.js';

const fail = (message: string, code = 2): never => {
  process.stderr.write(`job-distributor: ${message}\n`);
  process.exit(code);
};

const args = await yargs(hideBin(process.argv))
  .scriptName('job-distributor')
  .usage(
    '$0 <distribution...> --zk-hosts H:P[,H:P][/chroot] [--api-url URL] ...\n' +
      '$0 --all --zk-hosts H:P ...\n\n' +
      'Creates the jobs of each named distribution on its schedule, when this process leads that distribution\'s election.',
  )
  .command('$0 [names..]', false, (argv) => argv.positional('names', { type: 'string', array: true, describe: 'distributions to run' }))
  .env('JOB_DISTRIBUTOR')
  .config('config', 'JSON file with any of these options')
  .option('all', { type: 'boolean', describe: 'run every distribution enabled by default (dummy_test_action is not)' })
  .option('zk-hosts', { type: 'string', describe: 'ZooKeeper connection string (required)' })
  .option('api-url', { type: 'string', describe: `job API root (default ${DEFAULT_API_URL})` })
  .option('api-key', { type: 'string', describe: 'API key (prefer --api-key-file or JOB_DISTRIBUTOR_API_KEY)' })
  .option('api-secret', { type: 'string', describe: 'API secret (prefer --api-key-file or JOB_DISTRIBUTOR_API_SECRET)' })
  .option('api-key-file', { type: 'string', describe: 'file with the API key: JSON {key, secret} or "key: ..." and "secret: ..." lines' })
  .option('api-compatibility', { choices: ['auto', 'engine', 'nuvla'], describe: 'job API flavour (default auto: detected)' })
  .option('api-timeout', { type: 'number', describe: `seconds per API request (default ${DISTRIBUTOR_DEFAULTS.apiTimeoutSeconds})` })
  .option('distributors-dir', { type: 'string', array: true, describe: `extra folder of drop-in distribution modules, besides ${BUNDLED_DISTRIBUTORS_DIR}; repeatable` })
  .option('schedule', { type: 'string', array: true, describe: 'override a schedule: <name>=<15s|5m|1h|1d|cron expression[@zone]>; repeatable' })
  .option('session-timeout', { type: 'number', describe: `ZooKeeper session timeout in seconds (default ${DISTRIBUTOR_DEFAULTS.sessionTimeoutSeconds})` })
  .option('connect-timeout', { type: 'number', describe: `seconds to wait for ZooKeeper at start (default ${DISTRIBUTOR_DEFAULTS.connectTimeoutSeconds})` })
  .option('queue-path', { type: 'string', describe: `ZooKeeper queue root (default ${DISTRIBUTOR_DEFAULTS.queuePath})` })
  .option('election-path', { type: 'string', describe: `ZooKeeper parent of the elections (default ${DISTRIBUTOR_DEFAULTS.electionPath})` })
  .option('name', { type: 'string', describe: 'this process\'s identifier in the elections (default <host>-<pid>)' })
  .option('log-level', { choices: LOG_LEVELS, describe: 'error, warn, info (default) or debug' })
  .option('log-file', { type: 'string', describe: 'also log to this file (rotated at 10 MB, 5 kept)' })
  .strict()
  .help()
  .version(false)
  .fail((message: string | undefined, error: Error | undefined) => {
    fail(`${error === undefined ? (message ?? 'bad arguments') : error.message}\nRun job-distributor --help for usage.`);
  })
  .parseAsync();

const options = await compileDistributorOptions(args).catch((error: unknown) => fail(messageOf(error)));
const logger = createWinstonLogger({ level: options.logLevel, file: options.logFile, defaultMeta: { daemon: 'job-distributor', distributor: options.name } });

let distributor: Distributor;
try {
  distributor = await Distributor.start(options, logger);
} catch (error) {
  logger.error('distributor could not start', { error: messageOf(error) });
  logger.close();
  fail(messageOf(error), 1);
}

const stop = (signal: NodeJS.Signals): void => {
  logger.info('signal received', { signal });
  void distributor.stop().then(
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
