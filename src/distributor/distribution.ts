/**
 * The contract between `job-distributor` and drop-in distribution modules (design.md §7). Authors write
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
import { ACTION_NAME } from '../api/job/parse.js';
import { MAX_PRIORITY } from '../recipes/queue-layout.js';
import type { Logger } from '../util/logger.js';
import { MAX_ACTION_TIMEOUT_SECONDS as MAX_JOB_TIMEOUT_SECONDS, describeValue } from '../executor/action.js';
import { scheduleProblems, type ScheduleSpec } from './schedule.js';

/** Also the election's znode name and the systemd instance name (`job-distributor@<name>`). */
export const DISTRIBUTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$/;
/** How late a tick may still be made up by a new leader, unless the distribution says otherwise. */
export const DEFAULT_CATCH_UP_SECONDS = 300;

/** One job a tick asks for. */
export interface JobSpec {
  readonly action: string;
  /** The resource the job acts on (`target-resource.href`); a tick creates at most one job per target. */
  readonly target?: string;
  /** 0-999, lower runs first; the job API's default (999) when absent. */
  readonly priority?: number;
  /** Any JSON value; the action receives it as its payload. */
  readonly payload?: unknown;
  /** Overrides the action's own timeout. */
  readonly timeoutSeconds?: number;
  readonly tags?: readonly string[];
}

/** The queue as a leader-only task sees it. */
export interface QueueAccess {
  /** The ids of every job that has a queue entry, waiting or taken. */
  jobIds(): Promise<ReadonlySet<string>>;
  /** Enqueues the jobs' ids with their priorities, in a few transactions (announcing `enqueued` on the job event stream). */
  enqueue(jobs: readonly { readonly id: string; readonly priority: number; readonly action: string }[]): Promise<void>;
  /** Whether the owner written into a RUNNING job (`<executor>@<session>`) is a live executor. */
  isExecutorAlive(owner: string): Promise<boolean>;
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
}

export type JobSpecs = Iterable<JobSpec> | AsyncIterable<JobSpec>;

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
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    return [`a distribution definition must be an object, got ${describeValue(spec)}`];
  }
  const fields = spec as Record<string, unknown>;
  const problems: string[] = [];
  const { name, description, schedule, enabledByDefault, catchUpSeconds, jobs, run } = fields;
  if (typeof name !== 'string' || !DISTRIBUTION_NAME.test(name)) {
    problems.push(`name must be 1-128 characters of letters, digits, _ . - starting with a letter or digit, got ${describeValue(name)}`);
  }
  if (description !== undefined && typeof description !== 'string') problems.push(`description must be a string when given, got ${describeValue(description)}`);
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
  const unknown = Object.keys(fields).filter((key) => !KNOWN_FIELDS.has(key));
  if (unknown.length > 0) problems.push(`unknown field(s) ${unknown.join(', ')}; expected ${[...KNOWN_FIELDS].join(', ')}`);
  return problems;
}

/** Validates eagerly, so a bad definition fails when its module is imported, naming what is wrong. */
export function defineDistribution(spec: DistributionSpec): DistributionDefinition {
  const problems = distributionSpecProblems(spec);
  if (problems.length > 0) {
    const label = typeof spec.name === 'string' ? `distribution ${JSON.stringify(spec.name)}` : 'distribution';
    throw new DistributionDefinitionError(`invalid ${label} definition: ${problems.join('; ')}`);
  }
  // A copy, so later mutation of the author's object cannot change what was validated.
  return Object.freeze({
    name: spec.name,
    ...(spec.description === undefined ? {} : { description: spec.description }),
    schedule: Object.freeze({ ...spec.schedule }),
    enabledByDefault: spec.enabledByDefault ?? true,
    catchUpSeconds: spec.catchUpSeconds ?? DEFAULT_CATCH_UP_SECONDS,
    // Called as `definition.jobs(context)`: `this` is the definition, which holds the same fields.
    ...(spec.jobs === undefined ? {} : { jobs: spec.jobs }),
    ...(spec.run === undefined ? {} : { run: spec.run }),
    [DISTRIBUTION_BRAND]: true as const,
  });
}

/** Why a value is not a usable definition (empty when it is one), for the loader's message. */
export function distributionDefinitionProblems(value: unknown): string[] {
  if (typeof value !== 'object' || value === null || (value as Record<PropertyKey, unknown>)[DISTRIBUTION_BRAND] !== true) {
    return [`not made by defineDistribution, got ${describeValue(value)}`];
  }
  const { [DISTRIBUTION_BRAND]: _brand, ...spec } = value as Record<PropertyKey, unknown>;
  return distributionSpecProblems(spec);
}

/** Every problem of one job spec a tick yielded, or none. */
export function jobSpecProblems(spec: unknown): string[] {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) return [`a job spec must be an object, got ${describeValue(spec)}`];
  const { action, target, priority, payload, timeoutSeconds, tags, ...rest } = spec as Record<string, unknown>;
  const problems: string[] = [];
  if (typeof action !== 'string' || !ACTION_NAME.test(action)) problems.push(`action must be an action name, got ${describeValue(action)}`);
  if (target !== undefined && (typeof target !== 'string' || target.trim() === '')) problems.push(`target must be a resource href, got ${describeValue(target)}`);
  if (priority !== undefined && (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY)) {
    problems.push(`priority must be an integer from 0 to ${MAX_PRIORITY}, got ${describeValue(priority)}`);
  }
  if (payload !== undefined) {
    try {
      // undefined for a function or a symbol, whatever the typings say.
      if (typeof JSON.stringify(payload) !== 'string') problems.push(`payload must be a JSON value, got ${describeValue(payload)}`);
    } catch (error) {
      problems.push(`payload cannot be serialised as JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (timeoutSeconds !== undefined && (typeof timeoutSeconds !== 'number' || !Number.isInteger(timeoutSeconds) || timeoutSeconds < 1 || timeoutSeconds > MAX_JOB_TIMEOUT_SECONDS)) {
    problems.push(`timeoutSeconds must be a whole number of seconds from 1 to ${MAX_JOB_TIMEOUT_SECONDS}, got ${describeValue(timeoutSeconds)}`);
  }
  if (tags !== undefined && (!Array.isArray(tags) || !tags.every((tag) => typeof tag === 'string'))) problems.push('tags must be a list of strings');
  const unknown = Object.keys(rest);
  if (unknown.length > 0) problems.push(`unknown field(s) ${unknown.join(', ')}; expected action, target, priority, payload, timeoutSeconds, tags`);
  return problems;
}
