/**
 * The contract between `job-distributor` and drop-in distribution modules (docs/contracts.md). Authors write
 *
 *   export default defineDistribution({
 *     name: 'cleanup_jobs',
 *     schedule: { cron: '0 3 * * *' },
 *     jobs: () => [{ action: 'cleanup_jobs' }],
 *   });
 *
 * and the elected leader of the distribution calls `jobs` once per tick with one context object, then
 * persists and enqueues what it yields. A distribution that creates no jobs of its own (the queue
 * reconciler) gives `run` instead: a leader-only task on the same schedule.
 */
import type { JobApi } from '../api/client/job-api.js';
import type { Logger } from '../util/logger.js';
import { defineChecked, definitionProblems, fieldsOf, unknownFieldsProblem, type DefinitionKind } from './define.js';
import { describeValue } from './describe-value.js';
import type { JobSpecs } from './job-spec.js';
import { scheduleProblems, type ScheduleSpec } from './schedule-spec.js';

/** Also the election's znode name and the systemd instance name (`job-distributor@<name>`). */
export const DISTRIBUTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** How late a tick may still be made up by a new leader, unless the distribution says otherwise. */
export const DEFAULT_CATCH_UP_SECONDS = 300;

/** The queue as a leader-only task sees it. */
export interface QueueAccess {
  /** The ids of every job that has a queue entry, waiting or taken, in any queue (the default and every named one). */
  jobIds(): Promise<ReadonlySet<string>>;
  /**
   * Enqueues the jobs' ids with their priorities, each into the queue it names (the default queue
   * when `queue` is absent), in a few transactions (announcing `enqueued` on the job event stream).
   */
  enqueue(
    jobs: readonly { readonly id: string; readonly priority: number; readonly action: string; readonly queue?: string }[],
  ): Promise<void>;
  /** Whether the owner written into a RUNNING job (`<executor>@<session>`) is a live executor. */
  isExecutorAlive(owner: string): Promise<boolean>;
  /** Every queue under the root: `default`, then the named ones. */
  names(): Promise<string[]>;
  /** How many more entries queue `name` may hold before its window is full (0 when it is). */
  room(name: string): Promise<number>;
  /**
   * Enqueues up to `limit` of the jobs parked for queue `name` (waiting in the job API for room), best
   * priority first, then oldest; resolves with how many. The engine's job API only.
   */
  feedParked(name: string, limit: number): Promise<number>;
}

export interface DistributionContext {
  /** The scheduled moment this tick stands for (the same in every distributor), not when it started. */
  readonly tick: Date;
  /** Aborted when leadership is lost or the distributor stops: stop at once. */
  readonly signal: AbortSignal;
  /** Carries the distribution and tick in every record. */
  readonly log: Logger;
  readonly api: JobApi;
  readonly queue: QueueAccess;
  /** Folders of batch generator modules (`batches/` and every `--batches-dir`), for the batch feeder. */
  readonly batchesDirs: readonly string[];
}

export interface DistributionSpec {
  readonly name: string;
  readonly description?: string;
  readonly schedule: ScheduleSpec;
  /** False for a distribution that runs only when named (`dummy_test_action`); default true. */
  readonly enabledByDefault?: boolean;
  /** A leader that finds the latest tick missed by at most this much runs it at once (default 300 s). */
  readonly catchUpSeconds?: number;
  /** The jobs of one tick; the distributor creates each once, then enqueues it. */
  readonly jobs?: (context: DistributionContext) => JobSpecs | Promise<JobSpecs>;
  /** A leader-only task instead of jobs. */
  readonly run?: (context: DistributionContext) => Promise<void> | void;
}

/** Marks what `defineDistribution` made (see DefinitionKind.brand for why it is a global symbol). */
export const DISTRIBUTION_BRAND: unique symbol = Symbol.for('zk-job-engine.distribution-definition');

export interface DistributionDefinition extends DistributionSpec {
  readonly enabledByDefault: boolean;
  readonly catchUpSeconds: number;
  readonly [DISTRIBUTION_BRAND]: true;
}

const KNOWN_FIELDS: ReadonlySet<string> = new Set(['name', 'description', 'schedule', 'enabledByDefault', 'catchUpSeconds', 'jobs', 'run']);

export class DistributionDefinitionError extends TypeError {
  override readonly name = 'DistributionDefinitionError';
  readonly code = 'invalid-distribution-definition';
}

/** Every problem at once, so an author fixes a definition in one pass. */
export function distributionSpecProblems(spec: unknown): string[] {
  const fields = fieldsOf(spec);
  if (fields === undefined) return [`a distribution definition must be an object, got ${describeValue(spec)}`];
  const problems: string[] = [];
  const { name, description, schedule, enabledByDefault, catchUpSeconds, jobs, run } = fields;
  if (typeof name !== 'string' || !DISTRIBUTION_NAME.test(name)) {
    problems.push(`name must be 1-128 characters of letters, digits, _ . - starting with a letter or digit, got ${describeValue(name)}`);
  }
  if (description !== undefined && typeof description !== 'string')
    problems.push(`description must be a string when given, got ${describeValue(description)}`);
  problems.push(...scheduleProblems(schedule));
  if (enabledByDefault !== undefined && typeof enabledByDefault !== 'boolean') {
    problems.push(`enabledByDefault must be true or false when given, got ${describeValue(enabledByDefault)}`);
  }
  if (catchUpSeconds !== undefined && (typeof catchUpSeconds !== 'number' || !Number.isFinite(catchUpSeconds) || catchUpSeconds < 0)) {
    problems.push(`catchUpSeconds must be a number of seconds (0 or more) when given, got ${describeValue(catchUpSeconds)}`);
  }
  if (jobs !== undefined && typeof jobs !== 'function') problems.push(`jobs must be a function when given, got ${describeValue(jobs)}`);
  if (run !== undefined && typeof run !== 'function') problems.push(`run must be a function when given, got ${describeValue(run)}`);
  if ((jobs === undefined) === (run === undefined)) {
    problems.push('give exactly one of jobs (the jobs of a tick) or run (a leader-only task)');
  }
  const unknown = unknownFieldsProblem(fields, KNOWN_FIELDS);
  if (unknown !== undefined) problems.push(unknown);
  return problems;
}

const DISTRIBUTION_KIND: DefinitionKind<typeof DISTRIBUTION_BRAND> = Object.freeze({
  noun: 'distribution',
  definer: 'defineDistribution',
  brand: DISTRIBUTION_BRAND,
  problemsOf: distributionSpecProblems,
  errorOf: (message: string) => new DistributionDefinitionError(message),
});

/** Validates eagerly, so a bad definition fails when its module is imported, naming what is wrong. */
export function defineDistribution(spec: DistributionSpec): DistributionDefinition {
  return defineChecked(DISTRIBUTION_KIND, spec, () => ({
    name: spec.name,
    ...(spec.description === undefined ? {} : { description: spec.description }),
    schedule: Object.freeze({ ...spec.schedule }),
    enabledByDefault: spec.enabledByDefault ?? true,
    catchUpSeconds: spec.catchUpSeconds ?? DEFAULT_CATCH_UP_SECONDS,
    // Called as `definition.jobs(context)`: `this` is the definition, which holds the same fields.
    ...(spec.jobs === undefined ? {} : { jobs: spec.jobs }),
    ...(spec.run === undefined ? {} : { run: spec.run }),
  }));
}

/** Why a value is not a usable definition (empty when it is one), for the loader's message. */
export function distributionDefinitionProblems(value: unknown): string[] {
  return definitionProblems(DISTRIBUTION_KIND, value);
}
