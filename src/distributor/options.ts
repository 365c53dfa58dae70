/**
 * The distributor's options, compiled once (docs/style.md habit 1) from what the command line, the
 * environment (JOB_DISTRIBUTOR_*) and a config file gave: checked with messages naming the option,
 * defaults filled in, durations in milliseconds, frozen. Which distributions exist is only known once
 * their modules are loaded, so names are checked against them later, by the distributor.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  DEFAULT_QUEUE_PATH,
  fail,
  readApiOptions,
  readMetricsOptions,
  readDirectories,
  readLogLevel,
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
import type { LogLevel } from '../util/logger.js';
import { DISTRIBUTION_NAME } from '../sdk/distribution.js';
import { scheduleProblems, type ScheduleSpec } from '../sdk/schedule-spec.js';
import { parseScheduleText } from './schedule.js';

/** The top-level distributors/ folder of this package (dist/distributors once built). */
export const BUNDLED_DISTRIBUTORS_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../distributors');
/** The top-level batches/ folder of this package: task generators for `batch_feeder` (docs/batches.md). */
export const BUNDLED_BATCHES_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../batches');

export interface DistributorOptions {
  /** Distributions to run, as named; empty with `all`. */
  readonly names: readonly string[];
  /** Run every distribution that is enabled by default (plus the named ones). */
  readonly all: boolean;
  /** The bundled folder first, then every --distributors-dir. */
  readonly distributorsDirs: readonly string[];
  /** Where `batch_feeder` finds task generators: the bundled folder first, then every --batches-dir. */
  readonly batchesDirs: readonly string[];
  /** Operators' schedule overrides, by distribution name. */
  readonly schedules: ReadonlyMap<string, ScheduleSpec>;
  readonly zkHosts: string;
  /** `--zk-auth-file`: the engine's ZooKeeper identity; every znode created then names it alone. */
  readonly zkAuth?: DigestAuth;
  readonly sessionTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly queuePath: string;
  /** Parent of one election node per distribution (`/election/<name>`, as Nuvla's distributors use). */
  readonly electionPath: string;
  /** Shown to other contenders (and `jobctl leaders`) as this process's identifier. */
  readonly name: string;
  readonly api: ApiOptions;
  readonly logLevel: LogLevel;
  readonly logFile: string | undefined;
  /** Where /metrics, /healthz and /readyz are served; undefined: not at all. */
  readonly metrics: MetricsOptions | undefined;
}

export const DISTRIBUTOR_DEFAULTS = Object.freeze({
  sessionTimeoutSeconds: 10,
  connectTimeoutSeconds: 30,
  queuePath: DEFAULT_QUEUE_PATH,
  electionPath: '/election',
  apiTimeoutSeconds: 30,
});

function namesOf(args: OptionArgs): string[] {
  const names = readStrings(args, 'names', 'a distribution name') ?? [];
  for (const name of names) {
    if (!DISTRIBUTION_NAME.test(name))
      fail(`distribution name ${JSON.stringify(name)} must be letters, digits, _ . - starting with a letter or digit`);
  }
  return [...new Set(names)];
}

/** `--schedule <name>=<15s | 5m | cron expression[@time zone]>`, repeatable. */
function schedulesOf(args: OptionArgs): Map<string, ScheduleSpec> {
  const schedules = new Map<string, ScheduleSpec>();
  for (const text of readStrings(args, 'schedule', 'name=schedule') ?? []) {
    const equals = text.indexOf('=');
    const name = text.slice(0, equals).trim();
    if (equals < 1 || !DISTRIBUTION_NAME.test(name)) {
      fail(
        `--schedule must be <distribution>=<schedule>, e.g. queue_reconciler=30s or cleanup_jobs="0 3 * * *", got ${JSON.stringify(text)}`,
      );
    }
    const spec = parseScheduleText(text.slice(equals + 1));
    const problems = scheduleProblems(spec);
    if (problems.length > 0) fail(`--schedule ${name}: ${problems.join('; ')} (an interval is written 15s, 5m, 1h or 1d)`);
    if (schedules.has(name)) fail(`--schedule ${name} is given twice`);
    schedules.set(name, spec);
  }
  return schedules;
}

export async function compileDistributorOptions(args: OptionArgs): Promise<DistributorOptions> {
  const names = namesOf(args);
  const all = args.all === true || args.all === 'true';
  if (names.length === 0 && !all) fail('name the distributions to run (e.g. job-distributor cleanup_jobs), or give --all');
  const name = readString(args, 'name') ?? defaultExecutorName();
  const zkAuth = await readZkAuth(args);
  if (!EXECUTOR_NAME.test(name))
    fail(`--name must be 1-128 characters of letters, digits, _ . : - starting with a letter or digit, got ${JSON.stringify(name)}`);
  return Object.freeze({
    names: Object.freeze(names),
    all,
    distributorsDirs: Object.freeze([BUNDLED_DISTRIBUTORS_DIR, ...(readDirectories(args, 'distributors-dir') ?? [])]),
    batchesDirs: Object.freeze([BUNDLED_BATCHES_DIR, ...(readDirectories(args, 'batches-dir') ?? [])]),
    schedules: schedulesOf(args),
    zkHosts: readZkHosts(args),
    ...(zkAuth === undefined ? {} : { zkAuth }),
    sessionTimeoutMs: readSeconds(args, 'session-timeout', DISTRIBUTOR_DEFAULTS.sessionTimeoutSeconds, 1, 600),
    connectTimeoutMs: readSeconds(args, 'connect-timeout', DISTRIBUTOR_DEFAULTS.connectTimeoutSeconds, 0.1, 3600),
    queuePath: readZkPath(args, 'queue-path', DISTRIBUTOR_DEFAULTS.queuePath, true),
    electionPath: readZkPath(args, 'election-path', DISTRIBUTOR_DEFAULTS.electionPath),
    name,
    api: await readApiOptions(args, DISTRIBUTOR_DEFAULTS.apiTimeoutSeconds),
    logLevel: readLogLevel(args),
    logFile: readString(args, 'log-file'),
    metrics: readMetricsOptions(args),
  });
}
