/**
 * The executor's options, compiled once (docs/style.md habit 1): what the command line, the environment
 * and a config file gave, checked with messages that name the option, defaults filled in, durations
 * in milliseconds, frozen. Nothing downstream reads process.env.
 */
import type { Stats } from 'node:fs';
import { stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_API_URL,
  DEFAULT_QUEUE_PATH,
  fail,
  readApiOptions,
  readMetricsOptions,
  readDirectories,
  readLogLevel,
  readNumber,
  readSeconds,
  readString,
  readStrings,
  readZkHosts,
  readZkPath,
  type ApiOptions,
  type MetricsOptions,
  type OptionArgs,
} from '../cli/option-readers.js';
import { readZkAuth } from '../cli/zk-auth.js';
import type { DigestAuth } from '../zk/types.js';
import { EXECUTOR_NAME, defaultExecutorName } from '../recipes/executor-registry.js';
import { MAX_ATTEMPTS_LIMIT } from '../api/job/document.js';
import { DEFAULT_QUEUE_NAME, QUEUE_NAME_RULE, isQueueName } from '../recipes/queue-layout.js';
import type { LogLevel } from '../util/logger.js';
import { toError } from '../util/errors.js';
import { originOf, type StageSettings } from './stage-policy.js';

/** The top-level actions/ folder of this package (dist/actions once built). */
export const BUNDLED_ACTIONS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../actions');

export interface ExecutorOptions {
  readonly zkHosts: string;
  /** `--zk-auth-file`: the engine's ZooKeeper identity; every znode created then names it alone. */
  readonly zkAuth?: DigestAuth;
  readonly sessionTimeoutMs: number;
  /** How long the start waits for a first ZooKeeper session before giving up. */
  readonly connectTimeoutMs: number;
  readonly queuePath: string;
  /** `--queue` (repeatable): the named queues served; `default` (the queue root) unless given. */
  readonly queues: readonly string[];
  /** Jobs run at once, each in its own worker thread. */
  readonly threads: number;
  readonly actionsDirs: readonly string[];
  /**
   * `--allow-command`: whether the `command` action, which runs any program, is offered. Off unless
   * the operator asks: otherwise every key that may create jobs could run code on this node.
   */
  readonly allowCommand: boolean;
  /**
   * `--command-allow PATH` (repeatable): the only programs actions may start, compared by real path
   * (program-allowlist.ts); empty: any. A list implies allowCommand.
   */
  readonly commandAllow: readonly string[];
  /**
   * What a `command` job may stage in and out (stage-policy.ts): `--command-stage-dir` (repeatable; none:
   * no file of the host), `--command-fetch-from` origins (none: no URL), `--command-input-max-bytes`,
   * `--command-fetch-timeout`, and `--command-work-dir` where working directories are made.
   */
  readonly commandStage: StageSettings;
  /**
   * `--in-process declared|never`: whether actions that declare `isolation: 'in-process'` run in this
   * event loop (in-process-runner.ts), or every action gets a worker thread whatever it declares.
   */
  readonly inProcess: InProcessPolicy;
  readonly shutdownTimeoutMs: number;
  /** From an action's abort signal to terminating its thread. */
  readonly killGraceMs: number;
  /** Attempts that may end without a result before a job is failed, unless the job or its action says. */
  readonly maxAttempts: number;
  readonly name: string;
  readonly api: ApiOptions;
  /** How often running jobs are checked for cancellation. */
  readonly cancelPollMs: number;
  readonly progressIntervalMs: number;
  /**
   * How long a job's action may be offered by no live executor before the job fails (127); meanwhile
   * its entry is left in the queue. Covers a rolling upgrade.
   */
  readonly unknownActionGraceMs: number;
  /** How long an entry left to another executor (its action is not here) is not taken again. */
  readonly setAsideMs: number;
  /** A slot's thread left idle this long is stopped (a new one starts with the next job). */
  readonly idleThreadMs: number;
  readonly logLevel: LogLevel;
  readonly logFile: string | undefined;
  /** Where /metrics, /healthz and /readyz are served; undefined: not at all. */
  readonly metrics: MetricsOptions | undefined;
}

export type InProcessPolicy = 'declared' | 'never';
const IN_PROCESS_POLICIES: readonly InProcessPolicy[] = ['declared', 'never'];

/** `--in-process`: 'declared' by default. */
function readInProcessPolicy(args: OptionArgs): InProcessPolicy {
  const given = readString(args, 'in-process') ?? 'declared';
  if (!(IN_PROCESS_POLICIES as readonly string[]).includes(given)) {
    fail(`--in-process must be declared or never, got ${JSON.stringify(given)}`);
  }
  return given as InProcessPolicy;
}

export const EXECUTOR_DEFAULTS = Object.freeze({
  apiUrl: DEFAULT_API_URL,
  sessionTimeoutSeconds: 10,
  connectTimeoutSeconds: 30,
  queuePath: DEFAULT_QUEUE_PATH,
  threads: 4,
  shutdownTimeoutSeconds: 120,
  killGraceSeconds: 5,
  maxAttempts: 5,
  apiTimeoutSeconds: 30,
  cancelPollSeconds: 1,
  progressIntervalMs: 1000,
  idleThreadMs: 60_000,
  unknownActionGraceSeconds: 30,
  commandInputMaxBytes: 1024 ** 3,
  commandFetchTimeoutSeconds: 60,
  /** An entry left to another executor is looked at again after this long at most (less with a short grace). */
  setAsideMs: 5000,
});

/** `--queue` names, each once, each a valid name (it becomes a znode): `default` alone when none is given. */
function readQueueNames(args: OptionArgs): readonly string[] {
  const given = readStrings(args, 'queue', 'a queue name') ?? [DEFAULT_QUEUE_NAME];
  for (const name of given) if (!isQueueName(name)) fail(`--queue: queue name ${JSON.stringify(name)} is not valid: ${QUEUE_NAME_RULE}`);
  return Object.freeze([...new Set(given)]);
}

/** A boolean flag: yargs gives a boolean; a config file or variable may give "true"/"false". */
function readFlag(args: OptionArgs, name: string): boolean {
  const value: unknown = args[name];
  if (value === undefined || value === false || value === 'false') return false;
  if (value === true || value === 'true') return true;
  return fail(`--${name} is a flag (true or false), got ${JSON.stringify(value)}`);
}

/** Absolute paths of programs that exist now (a typo would otherwise refuse every job at run time). */
async function readPrograms(args: OptionArgs, key: string): Promise<string[]> {
  const programs = readStrings(args, key, 'an absolute path of a program') ?? [];
  for (const program of programs) {
    if (!path.isAbsolute(program)) fail(`--${key} must be an absolute path of a program, got ${JSON.stringify(program)}`);
    let found: Stats;
    try {
      found = await stat(program);
    } catch (error) {
      const code = (toError(error) as NodeJS.ErrnoException).code;
      return fail(`--${key} ${program}: ${code === 'ENOENT' ? 'no such file' : toError(error).message}`);
    }
    if (!found.isFile()) fail(`--${key} ${program}: not a file (a program is expected)`);
  }
  return programs;
}

async function readStageSettings(args: OptionArgs): Promise<StageSettings> {
  const dirs = readStrings(args, 'command-stage-dir', 'an absolute directory path') ?? [];
  for (const dir of dirs) {
    if (!path.isAbsolute(dir)) fail(`--command-stage-dir must be an absolute directory path, got ${JSON.stringify(dir)}`);
    const found = await stat(dir).catch(() => undefined);
    if (found === undefined || !found.isDirectory()) fail(`--command-stage-dir ${dir}: not an existing directory`);
  }
  const fetchFrom = readStrings(args, 'command-fetch-from', 'an origin such as https://data.example.org') ?? [];
  for (const origin of fetchFrom) {
    let parsed: URL | undefined;
    try {
      parsed = new URL(origin);
    } catch {
      parsed = undefined;
    }
    if (
      parsed === undefined ||
      (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') ||
      originOf(origin) !== origin.replace(/\/$/, '')
    ) {
      fail(
        `--command-fetch-from must be an http(s) origin (scheme, host and port, no path), e.g. https://data.example.org:8443, got ${JSON.stringify(origin)}`,
      );
    }
  }
  const workRoot = readString(args, 'command-work-dir') ?? tmpdir();
  if (!path.isAbsolute(workRoot)) fail(`--command-work-dir must be an absolute directory path, got ${JSON.stringify(workRoot)}`);
  return Object.freeze({
    workRoot,
    dirs: Object.freeze(dirs),
    fetchFrom: Object.freeze(fetchFrom),
    maxInputBytes: readNumber(args, 'command-input-max-bytes', EXECUTOR_DEFAULTS.commandInputMaxBytes, 0, Number.MAX_SAFE_INTEGER, true),
    fetchTimeoutMs: readSeconds(args, 'command-fetch-timeout', EXECUTOR_DEFAULTS.commandFetchTimeoutSeconds, 0.1, 86_400),
  });
}

export async function compileExecutorOptions(args: OptionArgs): Promise<ExecutorOptions> {
  const zkHosts = readZkHosts(args);
  const queuePath = readZkPath(args, 'queue-path', EXECUTOR_DEFAULTS.queuePath, true);
  const name = readString(args, 'name') ?? defaultExecutorName();
  if (!EXECUTOR_NAME.test(name))
    fail(`--name must be 1-128 characters of letters, digits, _ . : - starting with a letter or digit, got ${JSON.stringify(name)}`);
  const logLevel = readLogLevel(args);
  const unknownActionGraceMs = readSeconds(args, 'unknown-action-grace', EXECUTOR_DEFAULTS.unknownActionGraceSeconds, 0, 86_400);
  const zkAuth = await readZkAuth(args);
  const commandAllow = Object.freeze(await readPrograms(args, 'command-allow'));
  return Object.freeze({
    zkHosts,
    ...(zkAuth === undefined ? {} : { zkAuth }),
    sessionTimeoutMs: readSeconds(args, 'session-timeout', EXECUTOR_DEFAULTS.sessionTimeoutSeconds, 1, 600),
    connectTimeoutMs: readSeconds(args, 'connect-timeout', EXECUTOR_DEFAULTS.connectTimeoutSeconds, 0.1, 3600),
    queuePath,
    queues: readQueueNames(args),
    threads: readNumber(args, 'threads', EXECUTOR_DEFAULTS.threads, 1, 1024, true),
    actionsDirs: Object.freeze(readDirectories(args, 'actions-dir') ?? [BUNDLED_ACTIONS_DIR]),
    allowCommand: readFlag(args, 'allow-command') || commandAllow.length > 0,
    commandAllow,
    commandStage: await readStageSettings(args),
    inProcess: readInProcessPolicy(args),
    shutdownTimeoutMs: readSeconds(args, 'shutdown-timeout', EXECUTOR_DEFAULTS.shutdownTimeoutSeconds, 0, 86_400),
    killGraceMs: readSeconds(args, 'kill-grace', EXECUTOR_DEFAULTS.killGraceSeconds, 0, 3600),
    maxAttempts: readNumber(args, 'max-attempts', EXECUTOR_DEFAULTS.maxAttempts, 1, MAX_ATTEMPTS_LIMIT, true),
    name,
    api: await readApiOptions(args, EXECUTOR_DEFAULTS.apiTimeoutSeconds),
    cancelPollMs: readSeconds(args, 'cancel-poll', EXECUTOR_DEFAULTS.cancelPollSeconds, 0.05, 60),
    progressIntervalMs: EXECUTOR_DEFAULTS.progressIntervalMs,
    idleThreadMs: EXECUTOR_DEFAULTS.idleThreadMs,
    unknownActionGraceMs,
    // Several looks within the grace, so a job is failed soon after it runs out; never a hot loop.
    setAsideMs: Math.max(250, Math.min(EXECUTOR_DEFAULTS.setAsideMs, unknownActionGraceMs / 3)),
    logLevel,
    logFile: readString(args, 'log-file'),
    metrics: readMetricsOptions(args),
  });
}
