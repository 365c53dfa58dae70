/**
 * Where the fleet-wide limits of an action live under the queue root (docs/contracts.md §2), and what
 * their nodes hold:
 *   `<root>/semaphores/<action>`          kazoo's Semaphore: data the max leases, one ephemeral child per lease
 *   `<root>/semaphores/<action>-__lock__` kazoo's Lock guarding that semaphore (kazoo puts it beside the path)
 *   `<root>/rates/<action>`               the action's token bucket (rate-bucket.ts)
 *   `<root>/limits/<action>`              the operator's override of the action's own limits (jobctl limits)
 * Parsed as unknown: anyone with access to ZooKeeper may write these nodes.
 */
import { isRecord } from '../util/is-record.js';

export const SEMAPHORES_NODE = 'semaphores';
export const RATES_NODE = 'rates';
export const LIMITS_NODE = 'limits';
/** kazoo's Semaphore keeps its lock at `path + "-__lock__"`. */
export const SEMAPHORE_LOCK_SUFFIX = '-__lock__';

/** The most leases a semaphore may have and the highest rate: far above what one ZooKeeper can serve. */
export const MAX_CONCURRENT_LIMIT = 100_000;
export const MAX_RATE_PER_SECOND = 10_000;

export interface LimitPaths {
  readonly semaphores: string;
  readonly rates: string;
  readonly overrides: string;
}

export function limitPaths(root: string): LimitPaths {
  const base = root === '/' ? '' : root;
  return { semaphores: `${base}/${SEMAPHORES_NODE}`, rates: `${base}/${RATES_NODE}`, overrides: `${base}/${LIMITS_NODE}` };
}

/** An action's limits; absent: none. */
export interface ActionLimitValues {
  readonly maxConcurrent?: number;
  readonly ratePerSecond?: number;
}

/**
 * An operator's override: a number replaces the action's own value, `null` lifts the action's own
 * limit, absent keeps it.
 */
export interface LimitOverride {
  readonly maxConcurrent?: number | null;
  readonly ratePerSecond?: number | null;
}

/** The problem with a `maxConcurrent` value, or undefined when it is a valid one. */
export function maxConcurrentProblem(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isInteger(value) && value >= 1 && value <= MAX_CONCURRENT_LIMIT) return undefined;
  return `maxConcurrent must be an integer from 1 to ${MAX_CONCURRENT_LIMIT}, got ${describe(value)}`;
}

/** The problem with a `ratePerSecond` value, or undefined when it is a valid one. */
export function ratePerSecondProblem(value: unknown): string | undefined {
  if (typeof value === 'number' && Number.isFinite(value) && value > 0 && value <= MAX_RATE_PER_SECOND) return undefined;
  return `ratePerSecond must be a number of starts per second above 0 and at most ${MAX_RATE_PER_SECOND}, got ${describe(value)}`;
}

/** The override a node holds; throws naming the problem when it is not one. */
export function parseLimitOverride(data: Buffer): LimitOverride {
  let value: unknown;
  try {
    value = JSON.parse(data.toString('utf8'));
  } catch {
    throw new Error(`not JSON: ${JSON.stringify(data.toString('utf8').slice(0, 80))}`);
  }
  if (!isRecord(value)) throw new Error(`expected an object of maxConcurrent and ratePerSecond, got ${describe(value)}`);
  const problems: string[] = [];
  const { maxConcurrent, ratePerSecond, ...rest } = value;
  if (maxConcurrent !== undefined && maxConcurrent !== null) {
    const problem = maxConcurrentProblem(maxConcurrent);
    if (problem !== undefined) problems.push(problem);
  }
  if (ratePerSecond !== undefined && ratePerSecond !== null) {
    const problem = ratePerSecondProblem(ratePerSecond);
    if (problem !== undefined) problems.push(problem);
  }
  const unknown = Object.keys(rest);
  if (unknown.length > 0) problems.push(`unknown field(s) ${unknown.join(', ')}`);
  if (problems.length > 0) throw new Error(problems.join('; '));
  return {
    ...(maxConcurrent === undefined ? {} : { maxConcurrent: maxConcurrent as number | null }),
    ...(ratePerSecond === undefined ? {} : { ratePerSecond: ratePerSecond as number | null }),
  };
}

export function encodeLimitOverride(override: LimitOverride): Buffer {
  return Buffer.from(JSON.stringify(override), 'utf8');
}

/** The limits that apply: the override's values over the action's own. */
export function effectiveLimits(own: ActionLimitValues, override: LimitOverride | undefined): ActionLimitValues {
  const maxConcurrent = override?.maxConcurrent === undefined ? own.maxConcurrent : override.maxConcurrent;
  const ratePerSecond = override?.ratePerSecond === undefined ? own.ratePerSecond : override.ratePerSecond;
  return {
    ...(maxConcurrent === null || maxConcurrent === undefined ? {} : { maxConcurrent }),
    ...(ratePerSecond === null || ratePerSecond === undefined ? {} : { ratePerSecond }),
  };
}

function describe(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean' || value === null || value === undefined) return String(value);
  return Array.isArray(value) ? 'an array' : typeof value;
}
