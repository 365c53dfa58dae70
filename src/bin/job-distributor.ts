#!/usr/bin/env node
/**
 * `job-distributor <name...>`: the engine's distributed cron. For each named distribution it stands in
 * that distribution's election; the leader creates the distribution's jobs on its schedule. Options
 * come from flags, JOB_DISTRIBUTOR_* environment variables, or a JSON config file (--config). SIGTERM
 * and SIGINT stop it at once (a tick in progress is abandoned; its jobs are idempotent); SIGUSR1 logs
 * each distribution's state.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { Distributor } from '../distributor/distributor.js';
import { BUNDLED_DISTRIBUTORS_DIR, BUNDLED_BATCHES_DIR, DISTRIBUTOR_DEFAULTS, compileDistributorOptions } from '../distributor/options.js';
import { API_SECRET_FLAGS, argvSecretWarning, secretFlagsOnArgv } from '../cli/argv-secrets.js';
import { messageOf, toError } from '../util/errors.js';
import { Releasers } from '../util/releasers.js';
import { createWinstonLogger } from '../util/winston-logger.js';
import { failer, releaseOnSignals, serveMetrics, withEngineOptions } from './daemon-cli.js';
import { packageVersion } from '../cli/package-version.js';

const fail = failer('job-distributor');

const args = await withEngineOptions(yargs(hideBin(process.argv)), 'JOB_DISTRIBUTOR', DISTRIBUTOR_DEFAULTS)
  .scriptName('job-distributor')
  .usage(
    '$0 <distribution...> --zk-hosts H:P[,H:P][/chroot] [--api-url URL] ...\n' +
      '$0 --all --zk-hosts H:P ...\n\n' +
      "Creates the jobs of each named distribution on its schedule, when this process leads that distribution's election.",
  )
  .command('$0 [names..]', false, (argv) => argv.positional('names', { type: 'string', array: true, describe: 'distributions to run' }))
  .env('JOB_DISTRIBUTOR')
  .config('config', 'JSON file with any of these options')
  .option('all', { type: 'boolean', describe: 'run every distribution enabled by default (dummy_test_action is not)' })
  .option('distributors-dir', {
    type: 'string',
    array: true,
    describe: `extra folder of drop-in distribution modules, besides ${BUNDLED_DISTRIBUTORS_DIR}; repeatable`,
  })
  .option('batches-dir', {
    type: 'string',
    array: true,
    describe: `extra folder of batch generator modules (defineBatch) for batch_feeder, besides ${BUNDLED_BATCHES_DIR}; repeatable`,
  })
  .option('schedule', {
    type: 'string',
    array: true,
    describe: 'override a schedule: <name>=<15s|5m|1h|1d|cron expression[@zone]>; repeatable',
  })
  .option('election-path', { type: 'string', describe: `ZooKeeper parent of the elections (default ${DISTRIBUTOR_DEFAULTS.electionPath})` })
  .option('name', { type: 'string', describe: "this process's identifier in the elections (default <host>-<pid>)" })
  .strict()
  .help()
  .version(packageVersion())
  .fail((message: string | undefined, error: Error | undefined) => {
    fail(`${error === undefined ? (message ?? 'bad arguments') : error.message}\nRun job-distributor --help for usage.`);
  })
  .parseAsync();

const options = await compileDistributorOptions(args).catch((error: unknown) => fail(messageOf(error)));
const logger = createWinstonLogger({
  level: options.logLevel,
  file: options.logFile,
  defaultMeta: { daemon: 'job-distributor', distributor: options.name },
});
for (const flag of secretFlagsOnArgv(hideBin(process.argv), API_SECRET_FLAGS)) logger.warn(argvSecretWarning(flag, 'JOB_DISTRIBUTOR'));

// prom-client (13 MB of a daemon's memory) is loaded only when metrics are asked for.
const metrics =
  options.metrics === undefined
    ? undefined
    : await import('../metrics/distributor-metrics.js').then(
        async ({ DistributorMetrics }) => new DistributorMetrics((await import('../metrics/registry.js')).createDaemonRegistry()),
      );
// What the daemon holds, released last-opened-first on SIGTERM/SIGINT or when its start fails.
const releasers = new Releasers();
const endpoint = await serveMetrics(options.metrics, metrics, logger, fail);
if (endpoint !== undefined) releasers.add('metrics endpoint', () => endpoint.close());

const distributor = await Distributor.start(options, logger, metrics?.events).catch(async (error: unknown) => {
  logger.error('distributor could not start', { error: toError(error) });
  await releasers.releaseAll().catch((releaseError: unknown) => {
    logger.warn('closing what a failed start had opened failed', { error: toError(releaseError) });
  });
  logger.close();
  return fail(messageOf(error), 1);
});
if (metrics !== undefined) {
  metrics.attach(distributor);
  releasers.add('metrics', () => {
    metrics.detach();
  });
}
// Released first: the metrics stay served until the distributor has stopped, so a drain can be watched to its end.
releasers.add('distributor', () => distributor.stop());
releaseOnSignals(releasers, distributor, logger);
// Replaces Node's default for SIGUSR1 (starting the inspector): an operator's "what are you doing?".
process.on('SIGUSR1', () => {
  distributor.logStatus();
});
