/**
 * The job API server's options, compiled once from what the command line, the environment
 * (JOB_API_*) and a config file gave: checked with messages that name the option, defaults filled
 * in, frozen. The database URL may hold a password, so it may also come from a file
 * (--database-file, JOB_API_DATABASE_FILE) rather than the command line.
 */
import { readFile } from 'node:fs/promises';
import { fail, readLogLevel, readMetricsOptions, readString, type MetricsOptions, type OptionArgs } from '../../cli/option-readers.js';
import { resolve } from 'node:path';
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

export const JOB_API_DEFAULTS = Object.freeze({
  database: 'job-api.sqlite',
  // Loopback unless told otherwise: the API is not meant to face a network by accident.
  host: '127.0.0.1',
  port: 8200,
  bodyLimitBytes: 4 * 1024 * 1024,
  maxBulkCreate: 10_000,
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

/** As the messages have always shown a value: numbers (NaN included) and text as they are. */
function shown(value: unknown): string {
  return typeof value === 'number' || typeof value === 'string' || typeof value === 'boolean' ? String(value) : JSON.stringify(value);
}

/** A count of at least one; yargs has already turned a non-number into NaN, shown as such. */
function readPositiveInteger(args: OptionArgs, key: string, fallback: number): number {
  const value = args[key] ?? fallback;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1)
    return fail(`--${key} must be a positive integer, got ${shown(value)}`);
  return value;
}

function readPort(args: OptionArgs): number {
  const value = args.port ?? JOB_API_DEFAULTS.port;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 0 || value > 65535)
    return fail(`--port must be 0-65535, got ${shown(value)}`);
  return value;
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
