/**
 * The executor's options, compiled once (style.md habit 1): what the command line, the environment
 * and a config file gave, checked with messages that name the option, defaults filled in, durations
 * in milliseconds, frozen. Nothing downstream reads process.env.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ApiCredentials, Compatibility } from '../api/client/options.js';
import { parseConnectionString } from '../zk/connection-string.js';
import { EXECUTOR_NAME, defaultExecutorName } from '../recipes/executor-registry.js';
import { toError } from '../util/errors.js';
import { LOG_LEVELS, type LogLevel } from '../util/logger.js';

/** The top-level actions/ folder of this package (dist/actions once built). */
export const BUNDLED_ACTIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../actions');

export interface ExecutorOptions {
  readonly zkHosts: string;
  readonly sessionTimeoutMs: number;
  /** How long the start waits for a first ZooKeeper session before giving up. */
  readonly connectTimeoutMs: number;
  readonly queuePath: string;
  /** Jobs run at once, each in its own worker thread. */
  readonly threads: number;
  readonly actionsDirs: readonly string[];
  readonly shutdownTimeoutMs: number;
  /** From an action's abort signal to terminating its thread. */
  readonly killGraceMs: number;
  readonly name: string;
  readonly api: {
    readonly baseUrl: string;
    readonly credentials: ApiCredentials | undefined;
    readonly compatibility: Compatibility;
    readonly timeoutMs: number;
  };
  /** How often running jobs are checked for cancellation. */
  readonly cancelPollMs: number;
  readonly progressIntervalMs: number;
  /** A slot's thread left idle this long is stopped (a new one starts with the next job). */
  readonly idleThreadMs: number;
  readonly logLevel: LogLevel;
  readonly logFile: string | undefined;
}

/** The options as yargs hands them over (flags, JOB_EXECUTOR_* variables, --config file). */
export interface ExecutorArgs {
  readonly 'zk-hosts'?: unknown;
  readonly 'session-timeout'?: unknown;
  readonly 'connect-timeout'?: unknown;
  readonly 'queue-path'?: unknown;
  readonly threads?: unknown;
  readonly 'actions-dir'?: unknown;
  readonly 'shutdown-timeout'?: unknown;
  readonly 'kill-grace'?: unknown;
  readonly name?: unknown;
  readonly 'api-url'?: unknown;
  readonly 'api-key'?: unknown;
  readonly 'api-secret'?: unknown;
  readonly 'api-key-file'?: unknown;
  readonly 'api-compatibility'?: unknown;
  readonly 'api-timeout'?: unknown;
  readonly 'cancel-poll'?: unknown;
  readonly 'log-level'?: unknown;
  readonly 'log-file'?: unknown;
}

export const EXECUTOR_DEFAULTS = Object.freeze({
  apiUrl: 'http://127.0.0.1:8200',
  sessionTimeoutSeconds: 10,
  connectTimeoutSeconds: 30,
  queuePath: '/job',
  threads: 4,
  shutdownTimeoutSeconds: 120,
  killGraceSeconds: 5,
  apiTimeoutSeconds: 30,
  cancelPollSeconds: 1,
  progressIntervalMs: 1000,
  idleThreadMs: 60_000,
});

export class ExecutorOptionsError extends Error {
  override readonly name = 'ExecutorOptionsError';
  readonly code = 'bad-option';
}

const fail = (message: string): never => {
  throw new ExecutorOptionsError(message);
};

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function numberOf(args: ExecutorArgs, key: keyof ExecutorArgs, fallback: number, min: number, max: number, integer = false): number {
  const raw = args[key];
  if (raw === undefined) return fallback;
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max || (integer && !Number.isInteger(value))) {
    return fail(`--${key} must be ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got ${show(raw)}`);
  }
  return value;
}

function stringOf(args: ExecutorArgs, key: keyof ExecutorArgs): string | undefined {
  const raw = args[key];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || raw.trim() === '') return fail(`--${key} must be a non-empty string, got ${show(raw)}`);
  return raw.trim();
}

function listOf(args: ExecutorArgs, key: keyof ExecutorArgs): string[] | undefined {
  const raw = args[key];
  if (raw === undefined) return undefined;
  const values = Array.isArray(raw) ? (raw as unknown[]) : [raw];
  return values.map((value) => {
    if (typeof value !== 'string' || value.trim() === '') return fail(`--${key} must be a directory path, got ${show(value)}`);
    return path.resolve(value);
  });
}

/** `{"key":...,"secret":...}` or the two on separate lines, as `job-api create-key` prints them. */
export function parseCredentialsFile(text: string, file: string): ApiCredentials {
  const trimmed = text.trim();
  if (trimmed.startsWith('{')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(trimmed);
    } catch (error) {
      return fail(`API key file ${file} is not valid JSON: ${toError(error).message}`);
    }
    const { key, secret } = (typeof parsed === 'object' && parsed !== null ? parsed : {}) as Record<string, unknown>;
    if (typeof key !== 'string' || key === '' || typeof secret !== 'string' || secret === '') {
      return fail(`API key file ${file} must hold {"key": "...", "secret": "..."}`);
    }
    return { key, secret };
  }
  const fields = new Map<string, string>();
  for (const line of trimmed.split('\n')) {
    const match = /^\s*(key|secret)\s*[:=]\s*(\S+)\s*$/.exec(line);
    if (match?.[1] !== undefined && match[2] !== undefined) fields.set(match[1], match[2]);
  }
  const key = fields.get('key');
  const secret = fields.get('secret');
  if (key === undefined || secret === undefined) return fail(`API key file ${file} must hold "key: ..." and "secret: ..." lines, or JSON`);
  return { key, secret };
}

async function credentialsOf(args: ExecutorArgs): Promise<ApiCredentials | undefined> {
  const file = stringOf(args, 'api-key-file');
  const key = stringOf(args, 'api-key');
  const secret = stringOf(args, 'api-secret');
  if (file !== undefined) {
    if (key !== undefined || secret !== undefined) fail('give the API key either with --api-key-file or with --api-key and --api-secret, not both');
    const text = await readFile(file, 'utf8').catch((error: unknown) => fail(`API key file ${file} cannot be read: ${toError(error).message}`));
    return parseCredentialsFile(text, file);
  }
  if ((key === undefined) !== (secret === undefined)) fail('--api-key and --api-secret go together (or use --api-key-file)');
  return key === undefined || secret === undefined ? undefined : { key, secret };
}

export async function compileExecutorOptions(args: ExecutorArgs): Promise<ExecutorOptions> {
  const zkHosts = stringOf(args, 'zk-hosts') ?? fail('--zk-hosts is required, e.g. --zk-hosts 127.0.0.1:2181');
  try {
    parseConnectionString(zkHosts);
  } catch (error) {
    fail(`--zk-hosts ${JSON.stringify(zkHosts)} is not a ZooKeeper connection string: ${toError(error).message}`);
  }
  const queuePath = stringOf(args, 'queue-path') ?? EXECUTOR_DEFAULTS.queuePath;
  if (!/^\/[^/](.*[^/])?$/.test(queuePath) && queuePath !== '/') fail(`--queue-path must be an absolute ZooKeeper path, got ${JSON.stringify(queuePath)}`);
  const name = stringOf(args, 'name') ?? defaultExecutorName();
  if (!EXECUTOR_NAME.test(name)) fail(`--name must be 1-128 characters of letters, digits, _ . : - starting with a letter or digit, got ${JSON.stringify(name)}`);
  const compatibility = stringOf(args, 'api-compatibility') ?? 'auto';
  if (compatibility !== 'auto' && compatibility !== 'engine' && compatibility !== 'nuvla') {
    fail(`--api-compatibility must be auto, engine or nuvla, got ${JSON.stringify(compatibility)}`);
  }
  const logLevel = stringOf(args, 'log-level') ?? 'info';
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel)) fail(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(logLevel)}`);
  const seconds = (key: keyof ExecutorArgs, fallback: number, min: number, max: number): number => Math.round(numberOf(args, key, fallback, min, max) * 1000);
  return Object.freeze({
    zkHosts,
    sessionTimeoutMs: seconds('session-timeout', EXECUTOR_DEFAULTS.sessionTimeoutSeconds, 1, 600),
    connectTimeoutMs: seconds('connect-timeout', EXECUTOR_DEFAULTS.connectTimeoutSeconds, 0.1, 3600),
    queuePath,
    threads: numberOf(args, 'threads', EXECUTOR_DEFAULTS.threads, 1, 1024, true),
    actionsDirs: Object.freeze(listOf(args, 'actions-dir') ?? [BUNDLED_ACTIONS_DIR]),
    shutdownTimeoutMs: seconds('shutdown-timeout', EXECUTOR_DEFAULTS.shutdownTimeoutSeconds, 0, 86_400),
    killGraceMs: seconds('kill-grace', EXECUTOR_DEFAULTS.killGraceSeconds, 0, 3600),
    name,
    api: Object.freeze({
      baseUrl: stringOf(args, 'api-url') ?? EXECUTOR_DEFAULTS.apiUrl,
      credentials: await credentialsOf(args),
      compatibility: compatibility as Compatibility,
      timeoutMs: seconds('api-timeout', EXECUTOR_DEFAULTS.apiTimeoutSeconds, 0.1, 3600),
    }),
    cancelPollMs: seconds('cancel-poll', EXECUTOR_DEFAULTS.cancelPollSeconds, 0.05, 60),
    progressIntervalMs: EXECUTOR_DEFAULTS.progressIntervalMs,
    idleThreadMs: EXECUTOR_DEFAULTS.idleThreadMs,
    logLevel: logLevel as LogLevel,
    logFile: stringOf(args, 'log-file'),
  });
}
