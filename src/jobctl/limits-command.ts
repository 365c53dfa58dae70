/**
 * `jobctl limits`: each limited action's fleet-wide limits as ZooKeeper holds them (the semaphore's
 * max and its leases with their holders, the token bucket's rate, the operator's override).
 * `jobctl limits set <action> --max-concurrent N --rate R` overrides an action's own limits on every
 * running executor (`unlimited` lifts one); `jobctl limits clear <action>` removes the override.
 */
import { ACTION_NAME } from '../api/job/parse.js';
import {
  SEMAPHORE_LOCK_SUFFIX,
  limitPaths,
  maxConcurrentProblem,
  ratePerSecondProblem,
  type LimitOverride,
} from '../recipes/limit-layout.js';
import { readOverrides, removeOverride, writeOverride } from '../recipes/limit-overrides.js';
import { RateBucket } from '../recipes/rate-bucket.js';
import { ZkSemaphore } from '../recipes/semaphore.js';
import type { ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import type { JobctlCommand } from './command.js';
import { EXIT, usageError } from './errors.js';
import { renderTable } from './table.js';

export interface ActionLimitsReport {
  readonly action: string;
  /** The semaphore's max as the last executor to use it wrote it; null without a semaphore. */
  readonly maxConcurrent: number | null;
  /** Identifiers of the lease holders (`<executor> <job id>` for ours). */
  readonly leases: string[];
  /** The bucket's rate at the last start; null without a bucket. */
  readonly ratePerSecond: number | null;
  readonly override: LimitOverride | { readonly invalid: string } | null;
}

export const limitsCommand: JobctlCommand = {
  command: 'limits [verb] [action]',
  describe:
    "fleet-wide limits per action: each semaphore's max and leases, each bucket's rate, the operator's overrides; " +
    '"limits set <action>" overrides an action\'s own limits on every executor, "limits clear <action>" removes that (needs --zk-hosts)',
  builder: (argv) =>
    argv
      .positional('verb', { type: 'string', choices: ['set', 'clear'], describe: 'set or clear the override of the action named next' })
      .positional('action', { type: 'string', describe: 'an action name' })
      .option('max-concurrent', {
        type: 'string',
        describe: 'with set: at most N jobs of the action at once, fleet-wide ("unlimited": none)',
      })
      .option('rate', { type: 'string', describe: 'with set: at most R starts per second, fleet-wide ("unlimited": none)' })
      .example('$0 limits set cleanup_jobs --max-concurrent 2', 'two cleanup_jobs at once across the fleet')
      .example('$0 limits set mail --rate 5', 'five starts of mail a second')
      .example('$0 limits clear mail', "back to the action's own limits"),
  async run(ctx, args) {
    const paths = limitPaths(ctx.options.zk.queuePath);
    if (args.verb === undefined) {
      const zk = await ctx.zk('read the limits (jobctl limits)');
      const reports = await readLimits(zk, ctx.options.zk.queuePath);
      if (ctx.options.json) {
        ctx.out.json({ path: ctx.options.zk.queuePath, actions: reports });
        return EXIT.ok;
      }
      if (reports.length === 0) {
        ctx.out.line(`no action limits under ${ctx.options.zk.queuePath}`);
        return EXIT.ok;
      }
      ctx.out.lines(
        renderTable(
          [
            { header: 'ACTION', value: (row) => row.action },
            { header: 'MAX CONCURRENT', value: (row) => (row.maxConcurrent === null ? '-' : String(row.maxConcurrent)) },
            { header: 'LEASES', value: (row) => String(row.leases.length) },
            { header: 'RATE/S', value: (row) => (row.ratePerSecond === null ? '-' : String(row.ratePerSecond)) },
            { header: 'OVERRIDE', value: (row) => describeOverride(row.override) },
            { header: 'HOLDERS', value: (row) => (row.leases.length === 0 ? '-' : row.leases.join(', ')) },
          ],
          reports,
        ),
      );
      return EXIT.ok;
    }
    const action = actionArgument(args.action);
    if (args.verb === 'clear') {
      const zk = await ctx.zk('clear a limit override (jobctl limits clear)');
      const removed = await removeOverride(zk, paths.overrides, action);
      ctx.out.line(removed ? `override of ${action} removed: its own limits apply` : `${action} had no override`);
      return EXIT.ok;
    }
    if (args.verb !== 'set') throw usageError(`unknown limits command ${JSON.stringify(args.verb)}: jobctl limits [set|clear] <action>`);
    const change = overrideArguments(args['max-concurrent'], args.rate);
    const zk = await ctx.zk('set a limit override (jobctl limits set)');
    const current = (await readOverrides(zk, paths.overrides)).get(action);
    const next = { ...(current instanceof Error || current === undefined ? {} : current), ...change };
    await writeOverride(zk, paths.overrides, action, next);
    ctx.out.line(`override of ${action}: ${describeOverride(next)}`);
    return EXIT.ok;
  },
};

function actionArgument(value: unknown): string {
  if (typeof value !== 'string' || !ACTION_NAME.test(value))
    throw usageError(
      `name an action: 1-128 characters of letters, digits, _ . : - starting with a letter or digit, got ${JSON.stringify(value)}`,
    );
  return value;
}

/** The fields `set` changes; throws a usage error naming a bad value. */
export function overrideArguments(maxConcurrent: unknown, rate: unknown): LimitOverride {
  if (maxConcurrent === undefined && rate === undefined) throw usageError('limits set needs --max-concurrent N and/or --rate R');
  const read = (flag: string, value: unknown, problemOf: (value: unknown) => string | undefined): number | null => {
    if (value === 'unlimited') return null;
    const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : Number.NaN;
    const problem = problemOf(number);
    if (problem !== undefined) throw usageError(`--${flag} ${JSON.stringify(value)}: ${problem.replace(/, got .*$/, '')}, or "unlimited"`);
    return number;
  };
  return {
    ...(maxConcurrent === undefined ? {} : { maxConcurrent: read('max-concurrent', maxConcurrent, maxConcurrentProblem) }),
    ...(rate === undefined ? {} : { ratePerSecond: read('rate', rate, ratePerSecondProblem) }),
  };
}

function describeOverride(override: ActionLimitsReport['override']): string {
  if (override === null) return '-';
  if ('invalid' in override) return `invalid: ${override.invalid}`;
  const parts: string[] = [];
  if (override.maxConcurrent !== undefined) parts.push(`max-concurrent ${override.maxConcurrent ?? 'unlimited'}`);
  if (override.ratePerSecond !== undefined) parts.push(`rate ${override.ratePerSecond ?? 'unlimited'}/s`);
  return parts.length === 0 ? '(none)' : parts.join(', ');
}

export async function readLimits(zk: ZkClient, root: string): Promise<ActionLimitsReport[]> {
  const paths = limitPaths(root);
  const children = async (path: string): Promise<string[]> =>
    zk.getChildren(path).catch((error: unknown) => {
      if (isZkError(error, 'NO_NODE')) return [];
      throw error;
    });
  const [semaphores, rates, overrideNames] = await Promise.all([
    children(paths.semaphores),
    children(paths.rates),
    children(paths.overrides),
  ]);
  const actions = new Set([...semaphores.filter((name) => !name.endsWith(SEMAPHORE_LOCK_SUFFIX)), ...rates, ...overrideNames]);
  const overrides = await readOverrides(zk, paths.overrides);
  return Promise.all(
    [...actions].sort().map(async (action): Promise<ActionLimitsReport> => {
      const semaphore = new ZkSemaphore(zk, `${paths.semaphores}/${action}`);
      const [max, leases, bucket] = await Promise.all([
        zk.getData(semaphore.path).then(
          ({ data }) => {
            const value = Number(data.toString('utf8'));
            return Number.isInteger(value) ? value : null;
          },
          () => null,
        ),
        semaphore.holders(),
        new RateBucket(zk, `${paths.rates}/${action}`).state(),
      ]);
      const override = overrides.get(action);
      return {
        action,
        maxConcurrent: max,
        leases,
        ratePerSecond: bucket?.ratePerSecond ?? null,
        override: override === undefined ? null : override instanceof Error ? { invalid: override.message } : override,
      };
    }),
  );
}
