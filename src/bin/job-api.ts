#!/usr/bin/env node
/**
 * `job-api`: the job resource's REST server, and the key management that has to work before anyone
 * can log in. Options come from flags, JOB_API_* environment variables, or a JSON config file
 * (--config); the database URL, which may hold a password, also from JOB_API_DATABASE_FILE.
 */
import { readFile } from 'node:fs/promises';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { buildJobApi } from '../api/server/app.js';
import { Authenticator } from '../api/auth/authenticator.js';
import { AdminKeyExistsError, createAdminKey } from '../api/auth/admin-key-cli.js';
import { isRole } from '../api/auth/credentials.js';
import { describeDatabase, isPostgresUrl, openBackends } from '../api/backends.js';
import { JobEventHub } from '../api/server/event-hub.js';
import { PgEventRelay } from '../api/server/pg-event-relay.js';
import { DEFAULT_METRICS_HOST, readMetricsOptions } from '../cli/option-readers.js';
import { startMetricsEndpoint } from '../metrics/metrics-server.js';
import { createWinstonLogger, LOG_LEVELS, type LogLevel } from '../util/winston-logger.js';

const DEFAULT_DATABASE = 'job-api.sqlite';

const common = (argv: Argv) =>
  argv
    .option('database', { type: 'string', describe: `SQLite file, or a postgres:// URL (default ${DEFAULT_DATABASE})` })
    .option('database-file', {
      type: 'string',
      describe: 'a file holding the database URL, so a password need not be on the command line (JOB_API_DATABASE_FILE)',
    })
    .option('log-level', { choices: LOG_LEVELS, default: 'info', describe: 'error, warn, info or debug' })
    .option('log-file', { type: 'string', describe: 'also log to this file (rotated at 10 MB, 5 kept)' });

async function databaseOf(flag: string | undefined, file: string | undefined): Promise<string> {
  if (flag !== undefined && flag !== '') return flag;
  if (file !== undefined && file !== '') {
    const url = (await readFile(file, 'utf8').catch((error: unknown) => {
      throw new Error(`database file ${file} cannot be read: ${error instanceof Error ? error.message : String(error)}`);
    })).trim();
    if (url === '') throw new Error(`database file ${file} is empty`);
    return url;
  }
  return DEFAULT_DATABASE;
}

function logLevelOf(value: string): LogLevel {
  const level = LOG_LEVELS.find((candidate) => candidate === value);
  if (level === undefined) throw new Error(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got "${value}"`);
  return level;
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1) throw new Error(`--${name} must be a positive integer, got ${String(value)}`);
  return value;
}

async function serve(args: { database: string | undefined; 'database-file': string | undefined; host: string; port: number; 'body-limit': number; 'max-bulk-create': number; 'log-level': string; 'log-file': string | undefined; 'metrics-port': number | undefined; 'metrics-host': string | undefined }): Promise<void> {
  const options = Object.freeze({
    database: await databaseOf(args.database, args['database-file']),
    host: args.host,
    port: args.port,
    bodyLimitBytes: positiveInteger('body-limit', args['body-limit']),
    maxBulkCreate: positiveInteger('max-bulk-create', args['max-bulk-create']),
    metrics: readMetricsOptions(args),
  });
  if (!Number.isInteger(options.port) || options.port < 0 || options.port > 65535) throw new Error(`--port must be 0-65535, got ${String(options.port)}`);
  const logger = createWinstonLogger({ level: logLevelOf(args['log-level']), file: args['log-file'], defaultMeta: { daemon: 'job-api' } });
  const backends = await openBackends(options.database);
  // prom-client (13 MB of a daemon's memory) is loaded only when metrics are asked for.
  const metrics =
    options.metrics === undefined
      ? undefined
      : await import('../metrics/api-metrics.js').then(async ({ ApiMetrics }) => new ApiMetrics((await import('../metrics/registry.js')).createDaemonRegistry(), backends.jobs, logger));
  const events = new JobEventHub(logger);
  // Replicas sharing a PostgreSQL database pass each other their job events (one SQLite file has one server).
  const relay = isPostgresUrl(options.database)
    ? await PgEventRelay.start(options.database, events, logger).catch(async (error: unknown) => {
        await backends.close();
        throw error;
      })
    : undefined;
  const app = await buildJobApi({
    events,
    ...(metrics === undefined ? {} : { requests: metrics }),
    store: backends.jobs,
    access: new Authenticator(backends.credentials),
    logger,
    bodyLimitBytes: options.bodyLimitBytes,
    maxBulkCreate: options.maxBulkCreate,
  });
  // On its own port, so /metrics is never public where the API is.
  const endpoint = options.metrics === undefined || metrics === undefined
    ? undefined
    : await startMetricsEndpoint({ ...options.metrics, registry: metrics.registry, readiness: () => metrics.readiness(), logger }).catch(async (error: unknown) => {
        await backends.close();
        throw error;
      });
  const address = await app.listen({ host: options.host, port: options.port });
  if ((await backends.credentials.count()) === 0) {
    logger.warn('no API key exists yet: nobody can log in; create one with `job-api create-admin-key`');
  }
  logger.info('job api listening', { address, database: describeDatabase(options.database), store: backends.jobs.kind });

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    void app
      .close()
      .then(() => relay?.close())
      .then(() => endpoint?.close())
      .then(() => backends.close())
      .then(
        () => {
          logger.close();
        },
        (error: unknown) => {
          logger.error('clean stop failed', { error });
          process.exitCode = 1;
        },
      );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  // Replaces Node's default for SIGUSR1, which would open the inspector to anyone on the host.
  process.on('SIGUSR1', () => {
    logger.info('SIGUSR1: the job API has no running jobs to dump; send it to job-executor or job-distributor');
  });
}

async function withCredentials<T>(
  args: { database: string | undefined; 'database-file': string | undefined },
  run: (backends: Awaited<ReturnType<typeof openBackends>>) => Promise<T>,
): Promise<T> {
  const backends = await openBackends(await databaseOf(args.database, args['database-file']));
  try {
    return await run(backends);
  } finally {
    await backends.close();
  }
}

const print = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

await yargs(hideBin(process.argv))
  .scriptName('job-api')
  .env('JOB_API')
  .config('config', 'JSON file with any of these options')
  .command(
    ['serve', '$0'],
    'run the REST server',
    (argv) =>
      common(argv)
        .option('host', { type: 'string', default: '127.0.0.1', describe: 'address to listen on (loopback unless told otherwise)' })
        .option('port', { type: 'number', default: 8200, describe: 'port to listen on' })
        .option('body-limit', { type: 'number', default: 4 * 1024 * 1024, describe: 'largest request body in bytes (413 beyond)' })
        .option('max-bulk-create', { type: 'number', default: 10_000, describe: 'most jobs in one bulk create' })
        .option('metrics-port', { type: 'number', describe: 'serve /metrics (Prometheus), /healthz and /readyz on this port (default: none)' })
        .option('metrics-host', { type: 'string', describe: `address of the metrics port (default ${DEFAULT_METRICS_HOST})` }),
    (args) => serve(args),
  )
  .command(
    'create-admin-key',
    'create an admin API key and print its secret once',
    (argv) => common(argv).option('force', { type: 'boolean', default: false, describe: 'create one even if an admin key exists' }),
    (args) =>
      withCredentials(args, async ({ credentials }) => {
        await createAdminKey(credentials, print, { force: args.force });
      }),
  )
  .command(
    'create-key <role>',
    'create an API key with a role (admin, executor, viewer) and print its secret once',
    (argv) => common(argv).positional('role', { type: 'string', demandOption: true }).option('description', { type: 'string' }),
    (args) =>
      withCredentials(args, async ({ credentials }) => {
        if (!isRole(args.role)) throw new Error(`role must be admin, executor or viewer, got "${args.role}"`);
        const created = await credentials.create(args.role, args.description);
        print(`key:    ${created.key}`);
        print(`secret: ${created.secret}`);
        print('The secret is not stored and cannot be shown again.');
      }),
  )
  .command(
    'list-keys',
    'list API keys (never their secrets)',
    (argv) => common(argv),
    (args) =>
      withCredentials(args, async ({ credentials }) => {
        for (const key of await credentials.list()) print(`${key.key}\t${key.role}\t${key.created}\t${key.description ?? ''}`);
      }),
  )
  .command(
    'revoke-key <key>',
    'revoke an API key',
    (argv) => common(argv).positional('key', { type: 'string', demandOption: true }),
    (args) =>
      withCredentials(args, async ({ credentials }) => {
        if (!(await credentials.revoke(args.key))) throw new Error(`no API key ${args.key}`);
        print(`revoked ${args.key}`);
      }),
  )
  .strict()
  .help()
  .fail((message: string | undefined, error: Error | undefined) => {
    // One line for a user's mistake; the message of an unexpected failure, without a stack.
    process.stderr.write(`job-api: ${error === undefined ? (message ?? 'failed') : error.message}\n`);
    if (error === undefined) process.stderr.write('Run job-api --help for usage.\n');
    process.exit(error instanceof AdminKeyExistsError ? 3 : 2);
  })
  .parseAsync();
