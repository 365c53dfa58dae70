/**
 * The job API server's options, compiled once from what the command line, the environment
 * (JOB_API_*) and a config file gave: checked with messages that name the option, defaults filled
 * in, frozen. The database URL may hold a password, so it may also come from a file
 * (--database-file, JOB_API_DATABASE_FILE) rather than the command line.
 */
import { readFile } from 'node:fs/promises';
import {
  DEFAULT_QUEUE_PATH,
  fail,
  readLogLevel,
  readMetricsOptions,
  readSeconds,
  readString,
  readZkHosts,
  readZkPath,
  type MetricsOptions,
  type OptionArgs,
} from '../../cli/option-readers.js';
import { resolve } from 'node:path';
import { readZkAuth } from '../../cli/zk-auth.js';
import type { DigestAuth } from '../../zk/types.js';
import { toError } from '../../util/errors.js';
import { isPostgresUrl } from '../backends.js';
import { DEFAULT_CREDENTIAL_LIMITS, type CredentialLimits } from './credential-limits.js';
import type { LogLevel } from '../../util/logger.js';

export interface JobApiServerOptions {
  /** A SQLite file, or a postgres:// URL shared by replicas. */
  readonly database: string;
  /** The address the API listens on. */
  readonly host: string;
  /** 0 lets the system choose (the server's `address` says which it got). */
  readonly port: number;
  /** Largest request body in bytes; larger ones get 413. */
  readonly bodyLimitBytes: number;
  /** Most jobs in one bulk create (and operations in one bulk operation). */
  readonly maxBulkCreate: number;
  readonly logLevel: LogLevel;
  readonly logFile: string | undefined;
  /** Where /metrics, /healthz and /readyz are served; undefined: not at all. */
  readonly metrics: MetricsOptions | undefined;
  /** Where created jobs are enqueued (`--zk-hosts`); undefined: not at all, the reconciler does it. */
  readonly queue: QueueOptions | undefined;
  /**
   * The file holding the session signing key, created 0600 if absent. By default next to a SQLite
   * database (`<database>.session-secret`); undefined on PostgreSQL when not given, where each
   * process then signs with a random key of its own (replicas must share a file to share sessions).
   */
  readonly sessionSecretFile: string | undefined;
  /** Limits on failed credential checks and logins per window (credential-limits.ts). */
  readonly credentialLimits: CredentialLimits;
  /** Whose X-Forwarded-* headers to believe: false (none, the default), true (any), or addresses/CIDRs. */
  readonly trustProxy: boolean | string;
  /** PEM files to serve HTTPS with (--tls-cert, --tls-key): both, or neither for plain HTTP. */
  readonly tls: { readonly certFile: string; readonly keyFile: string } | undefined;
}

/** The ZooKeeper queue the server enqueues created jobs in. */
export interface QueueOptions {
  readonly zkHosts: string;
  readonly queuePath: string;
  readonly sessionTimeoutMs: number;
  /** How long one attempt to reach ZooKeeper waits; the server keeps trying in the background. */
  readonly connectTimeoutMs: number;
  /** The engine's ZooKeeper identity (`--zk-auth-file`): its entries then carry the engine's ACL. */
  readonly auth?: DigestAuth;
  /** Where the distributions' elections live, for the dashboard's read-only view of their leaders. */
  readonly electionPath: string;
}

/** The ZooKeeper options that mean something only with --zk-hosts. */
const QUEUE_FLAGS = ['queue-path', 'election-path', 'session-timeout', 'connect-timeout', 'zk-auth-file'] as const;

export const JOB_API_DEFAULTS = Object.freeze({
  database: 'job-api.sqlite',
  // Loopback unless told otherwise: the API is not meant to face a network by accident.
  host: '127.0.0.1',
  port: 8200,
  bodyLimitBytes: 4 * 1024 * 1024,
  maxBulkCreate: 10_000,
  queuePath: DEFAULT_QUEUE_PATH,
  electionPath: '/election',
  sessionTimeoutSeconds: 10,
  connectTimeoutSeconds: 10,
});

/** `--database`, else the URL in `--database-file`, else the default SQLite file. */
export async function readDatabase(args: OptionArgs): Promise<string> {
  const flag = args.database;
  if (typeof flag === 'string' && flag !== '') return flag;
  const file = args['database-file'];
  if (typeof file === 'string' && file !== '') {
    const text = await readFile(file, 'utf8').catch((error: unknown) =>
      fail(`database file ${file} cannot be read: ${toError(error).message}`),
    );
    const url = text.trim();
    if (url === '') fail(`database file ${file} is empty`);
    return url;
  }
  return JOB_API_DEFAULTS.database;
}

/** A value as given: text quoted (so `abc` and an empty value are visible as such), numbers as they are. */
function shown(value: unknown): string {
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : JSON.stringify(value);
}

/** A number given as text (the environment, a flag yargs left as text because it is not numeric) is parsed here. */
function numeric(value: unknown): unknown {
  return typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
}

/** A count of at least one. */
function readPositiveInteger(args: OptionArgs, key: string, fallback: number): number {
  const raw = args[key] ?? fallback;
  const value = numeric(raw);
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    return fail(`--${key} must be a positive integer, got ${shown(raw)}`);
  return value;
}

function readPort(args: OptionArgs): number {
  const raw = args.port ?? JOB_API_DEFAULTS.port;
  const value = numeric(raw);
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535)
    return fail(`--port must be 0-65535, got ${shown(raw)}`);
  return value;
}

/** `--zk-hosts` and its companions; without it the server enqueues nothing, as before. */
async function readQueueOptions(args: OptionArgs): Promise<QueueOptions | undefined> {
  if (args['zk-hosts'] === undefined) {
    const stray = QUEUE_FLAGS.find((flag) => args[flag] !== undefined);
    if (stray !== undefined) fail(`--${stray} needs --zk-hosts (the server enqueues created jobs only when given ZooKeeper)`);
    return undefined;
  }
  const auth = await readZkAuth(args);
  return Object.freeze({
    ...(auth === undefined ? {} : { auth }),
    zkHosts: readZkHosts(args),
    queuePath: readZkPath(args, 'queue-path', JOB_API_DEFAULTS.queuePath, true),
    electionPath: readZkPath(args, 'election-path', JOB_API_DEFAULTS.electionPath),
    sessionTimeoutMs: readSeconds(args, 'session-timeout', JOB_API_DEFAULTS.sessionTimeoutSeconds, 1, 600),
    connectTimeoutMs: readSeconds(args, 'connect-timeout', JOB_API_DEFAULTS.connectTimeoutSeconds, 0.1, 3600),
  });
}

/** `--trust-proxy` alone (or true) trusts any hop; a list of addresses or CIDRs trusts those. */
function readTrustProxy(args: OptionArgs): boolean | string {
  const value = args['trust-proxy'];
  if (value === undefined || value === false || value === 'false') return false;
  if (value === true || value === 'true' || value === '') return true;
  if (typeof value === 'string') return value;
  return fail(`--trust-proxy must be true, false, or addresses/CIDRs separated by commas, got ${shown(value)}`);
}

function readTls(args: OptionArgs): JobApiServerOptions['tls'] {
  const certFile = readString(args, 'tls-cert');
  const keyFile = readString(args, 'tls-key');
  if ((certFile === undefined) !== (keyFile === undefined)) fail('--tls-cert and --tls-key go together');
  return certFile === undefined || keyFile === undefined
    ? undefined
    : Object.freeze({ certFile: resolve(certFile), keyFile: resolve(keyFile) });
}

function readSessionSecretFile(args: OptionArgs, database: string): string | undefined {
  const given = readString(args, 'session-secret-file');
  if (given !== undefined) return resolve(given);
  return isPostgresUrl(database) ? undefined : `${resolve(database)}.session-secret`;
}

export async function compileJobApiServerOptions(args: OptionArgs): Promise<JobApiServerOptions> {
  const database = await readDatabase(args);
  return Object.freeze({
    database,
    bodyLimitBytes: readPositiveInteger(args, 'body-limit', JOB_API_DEFAULTS.bodyLimitBytes),
    maxBulkCreate: readPositiveInteger(args, 'max-bulk-create', JOB_API_DEFAULTS.maxBulkCreate),
    metrics: readMetricsOptions(args),
    queue: await readQueueOptions(args),
    host: readString(args, 'host') ?? JOB_API_DEFAULTS.host,
    port: readPort(args),
    logLevel: readLogLevel(args),
    logFile: readString(args, 'log-file'),
    sessionSecretFile: readSessionSecretFile(args, database),
    credentialLimits: Object.freeze({
      ...DEFAULT_CREDENTIAL_LIMITS,
      failuresPerClient: readPositiveInteger(args, 'auth-failures-per-client', DEFAULT_CREDENTIAL_LIMITS.failuresPerClient),
      failuresPerKey: readPositiveInteger(args, 'auth-failures-per-key', DEFAULT_CREDENTIAL_LIMITS.failuresPerKey),
    }),
    trustProxy: readTrustProxy(args),
    tls: readTls(args),
  });
}
