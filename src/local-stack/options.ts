/**
 * The local stack's options, compiled once (docs/style.md habit 1): what the command line and the
 * JOB_LOCAL_* environment gave, checked with messages that name the option, defaults filled in,
 * durations in milliseconds, frozen.
 */
import path from 'node:path';
import { LOG_LEVELS, type LogLevel } from '../util/logger.js';

export interface LocalStackOptions {
  /** Absolute; holds the database, ZooKeeper's data, the API key files and the logs. */
  readonly dir: string;
  /** 0: any free port. */
  readonly apiPort: number;
  /** undefined: 2181 when free, else any free port. */
  readonly zkPort: number | undefined;
  readonly threads: number;
  /** Run on top of the distributions that are on by default. */
  readonly distributions: readonly string[];
  readonly logLevel: LogLevel;
  /** How long the executor lets running jobs finish when the stack stops. */
  readonly shutdownTimeoutMs: number;
}

/** The options as yargs hands them over. */
export interface LocalStackArgs {
  readonly dir?: unknown;
  readonly 'api-port'?: unknown;
  readonly 'zk-port'?: unknown;
  readonly threads?: unknown;
  readonly distribution?: unknown;
  readonly 'log-level'?: unknown;
  readonly 'shutdown-timeout'?: unknown;
}

export const LOCAL_STACK_DEFAULTS = Object.freeze({
  dir: '.local-stack',
  apiPort: 8200,
  // ZooKeeper's usual port, so that zkCli.sh finds it without arguments; any port does when it is taken.
  preferredZkPort: 2181,
  threads: 4,
  logLevel: 'info',
  // Short, unlike a production executor's 120 s: at a developer's Ctrl-C a dummy job may be cut short.
  shutdownTimeoutSeconds: 10,
});

// A distribution name goes on the distributor's command line: one starting with "-" would read as a flag.
const DISTRIBUTION_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/;

export class LocalStackOptionsError extends Error {
  override readonly name = 'LocalStackOptionsError';
  readonly code = 'bad-option';
}

const fail = (message: string): never => {
  throw new LocalStackOptionsError(message);
};

function show(value: unknown): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

function integerOf(args: LocalStackArgs, key: keyof LocalStackArgs, min: number, max: number): number | undefined {
  const raw = args[key];
  if (raw === undefined) return undefined;
  const value = typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : raw;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    return fail(`--${key} must be an integer from ${min} to ${max}, got ${show(raw)}`);
  }
  return value;
}

function stringOf(args: LocalStackArgs, key: keyof LocalStackArgs): string | undefined {
  const raw = args[key];
  if (raw === undefined) return undefined;
  if (typeof raw !== 'string' || raw.trim() === '') return fail(`--${key} must be a non-empty string, got ${show(raw)}`);
  return raw.trim();
}

function distributionsOf(raw: unknown): string[] {
  if (raw === undefined) return [];
  const values = Array.isArray(raw) ? (raw as unknown[]) : [raw];
  const names = values.map((value) => {
    if (typeof value !== 'string' || !DISTRIBUTION_NAME.test(value)) {
      return fail(`--distribution must be a distribution name such as dummy_test_action, got ${show(value)}`);
    }
    return value;
  });
  return [...new Set(names)];
}

/** `cwd` resolves a relative --dir: the directory the user ran the command in. */
export function compileLocalStackOptions(args: LocalStackArgs, cwd: string): LocalStackOptions {
  const logLevel = stringOf(args, 'log-level') ?? LOCAL_STACK_DEFAULTS.logLevel;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel))
    fail(`--log-level must be one of ${LOG_LEVELS.join(', ')}, got ${show(logLevel)}`);
  return Object.freeze({
    dir: path.resolve(cwd, stringOf(args, 'dir') ?? LOCAL_STACK_DEFAULTS.dir),
    apiPort: integerOf(args, 'api-port', 0, 65_535) ?? LOCAL_STACK_DEFAULTS.apiPort,
    zkPort: integerOf(args, 'zk-port', 0, 65_535),
    threads: integerOf(args, 'threads', 1, 1024) ?? LOCAL_STACK_DEFAULTS.threads,
    distributions: Object.freeze(distributionsOf(args.distribution)),
    logLevel: logLevel as LogLevel,
    shutdownTimeoutMs: (integerOf(args, 'shutdown-timeout', 0, 86_400) ?? LOCAL_STACK_DEFAULTS.shutdownTimeoutSeconds) * 1000,
  });
}
