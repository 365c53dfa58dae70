#!/usr/bin/env node
/**
 * `job-api`: the job resource's REST server, and the key management that has to work before anyone
 * can log in. Options come from flags, JOB_API_* environment variables, or a JSON config file
 * (--config); the database URL, which may hold a password, also from JOB_API_DATABASE_FILE.
 */
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { AdminKeyExistsError, createAdminKey } from '../api/auth/admin-key-cli.js';
import { ROLES, isRole } from '../api/auth/credentials.js';
import { openBackends, type Backends } from '../api/backends.js';
import { JobApiServer } from '../api/server/job-api-server.js';
import { DEFAULT_CREDENTIAL_LIMITS } from '../api/server/credential-limits.js';
import { JOB_API_DEFAULTS, compileJobApiServerOptions, readDatabase } from '../api/server/options.js';
import { DATABASE_URL_WARNING, secretFlagsOnArgv, urlHasPassword } from '../cli/argv-secrets.js';
import { DEFAULT_METRICS_HOST, numberFlag, type OptionArgs } from '../cli/option-readers.js';
import { toError } from '../util/errors.js';
import { createWinstonLogger, LOG_LEVELS } from '../util/winston-logger.js';
import { packageVersion } from '../cli/package-version.js';

const common = (argv: Argv) =>
  argv
    .option('database', { type: 'string', describe: `SQLite file, or a postgres:// URL (default ${JOB_API_DEFAULTS.database})` })
    .option('database-file', {
      type: 'string',
      describe: 'a file holding the database URL, so a password need not be on the command line (JOB_API_DATABASE_FILE)',
    })
    .option('log-level', { choices: LOG_LEVELS, default: 'info', describe: 'error, warn, info or debug' })
    .option('log-file', { type: 'string', describe: 'also log to this file (rotated at 10 MB, 5 kept)' });

/** Runs the server until SIGTERM or SIGINT; a failed start is thrown (one line from yargs' fail handler). */
async function serve(args: OptionArgs): Promise<void> {
  const options = await compileJobApiServerOptions(args);
  const logger = createWinstonLogger({ level: options.logLevel, file: options.logFile, defaultMeta: { daemon: 'job-api' } });
  if (secretFlagsOnArgv(hideBin(process.argv), ['database']).length > 0 && urlHasPassword(args.database)) logger.warn(DATABASE_URL_WARNING);
  const server = await JobApiServer.start(options, logger);

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', { signal });
    void server.stop().then(
      () => {
        logger.close();
      },
      (error: unknown) => {
        logger.error('clean stop failed', { error: toError(error) });
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

async function withCredentials<T>(args: OptionArgs, run: (backends: Backends) => Promise<T>): Promise<T> {
  const backends = await openBackends(await readDatabase(args));
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
        .option('host', {
          type: 'string',
          default: JOB_API_DEFAULTS.host,
          describe: 'address to listen on (loopback unless told otherwise)',
        })
        .option('port', { ...numberFlag('port to listen on'), default: JOB_API_DEFAULTS.port })
        .option('body-limit', { ...numberFlag('largest request body in bytes (413 beyond)'), default: JOB_API_DEFAULTS.bodyLimitBytes })
        .option('max-bulk-create', { ...numberFlag('most jobs in one bulk create'), default: JOB_API_DEFAULTS.maxBulkCreate })
        .option('metrics-port', numberFlag('serve /metrics (Prometheus), /healthz and /readyz on this port (default: none)'))
        .option('metrics-host', { type: 'string', describe: `address of the metrics port (default ${DEFAULT_METRICS_HOST})` })
        .option('zk-hosts', {
          type: 'string',
          describe: 'ZooKeeper H:P[,H:P][/chroot]: enqueue the jobs the API creates (default: none; the queue reconciler does)',
        })
        .option('queue-path', { type: 'string', describe: `ZooKeeper queue root, with --zk-hosts (default ${JOB_API_DEFAULTS.queuePath})` })
        .option('election-path', {
          type: 'string',
          describe: `ZooKeeper election root the dashboard shows the leaders of, with --zk-hosts (default ${JOB_API_DEFAULTS.electionPath})`,
        })
        .option('zk-auth-file', {
          type: 'string',
          describe:
            "with --zk-hosts: a file (mode 0600) with the engine's ZooKeeper identity user:password, as the other daemons are given",
        })
        .option(
          'session-timeout',
          numberFlag(`ZooKeeper session timeout in seconds, with --zk-hosts (default ${String(JOB_API_DEFAULTS.sessionTimeoutSeconds)})`),
        )
        .option(
          'connect-timeout',
          numberFlag(
            `seconds per attempt to reach ZooKeeper, with --zk-hosts; the API serves meanwhile (default ${String(JOB_API_DEFAULTS.connectTimeoutSeconds)})`,
          ),
        )
        .option('session-secret-file', {
          type: 'string',
          describe:
            'file with the key that signs session cookies, created 0600 if absent (default: <database>.session-secret for SQLite; ' +
            'on PostgreSQL give every replica the same file)',
        })
        .option('trust-proxy', {
          type: 'string',
          describe:
            'believe X-Forwarded-For/-Proto from a reverse proxy: "true" for any, or its addresses/CIDRs (comma-separated); ' +
            'decides the client address of the rate limits and whether cookies are Secure',
        })
        .option('tls-cert', { type: 'string', describe: 'serve HTTPS with this certificate chain (PEM); with --tls-key' })
        .option('tls-key', { type: 'string', describe: 'the private key (PEM) of --tls-cert' })
        .option(
          'auth-failures-per-client',
          numberFlag(
            `failed credential checks a client may make per minute before 429 (default ${DEFAULT_CREDENTIAL_LIMITS.failuresPerClient})`,
          ),
        )
        .option(
          'auth-failures-per-key',
          numberFlag(
            `failed credential checks naming one key per minute, from all clients, before 429 (default ${DEFAULT_CREDENTIAL_LIMITS.failuresPerKey})`,
          ),
        ),
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
    'create an API key with a role (admin, operator, distributor, maintenance, executor, producer, viewer) and print its secret once',
    (argv) =>
      common(argv)
        .positional('role', { type: 'string', demandOption: true })
        .option('description', { type: 'string' })
        .option('actions', { type: 'string', describe: 'comma-separated actions the key may create jobs of (default: every action)' }),
    (args) =>
      withCredentials(args, async ({ credentials }) => {
        if (!isRole(args.role)) throw new Error(`role must be one of ${ROLES.join(', ')}, got "${args.role}"`);
        const actions = args.actions?.split(',').map((action) => action.trim());
        const created = await credentials.create(args.role, args.description, actions === undefined ? {} : { actions });
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
        for (const key of await credentials.list()) {
          print(
            `${key.key}\t${key.role}\t${key.created}\t${key.description ?? ''}${key.actions === undefined ? '' : `\tactions=${key.actions.join(',')}`}`,
          );
        }
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
  .version(packageVersion())
  .fail((message: string | undefined, error: Error | undefined) => {
    // One line for a user's mistake; the message of an unexpected failure, without a stack.
    process.stderr.write(`job-api: ${error === undefined ? (message ?? 'failed') : error.message}\n`);
    if (error === undefined) process.stderr.write('Run job-api --help for usage.\n');
    process.exit(error instanceof AdminKeyExistsError ? 3 : 2);
  })
  .parseAsync();
