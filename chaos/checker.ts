/**
 * The verdict of a chaos run, from what the job API says of every job at the end, the side-effect
 * log, and what the workload did (cancels, retries). Pure: the run collects, this judges, so that the
 * judging itself is tested on made-up histories (test/chaos-checker.test.ts).
 *
 * Violations (any one fails the run):
 * - lost: a job not final once the faults are healed and the engine has stopped making progress;
 * - concurrent double run: two runs of one job with effects at the same time (invariant 2);
 * - engine failure: a job whose final state is not what its action made of it (a job asked to
 *   succeed that ended FAILED or CANCELED without anyone cancelling it, a failure with the wrong code);
 * - duplicate tick job: two jobs for one target of one distribution tick (invariant 4).
 */
import { overlapsOf, type Overlap, type SideEffects } from './side-effects.js';

export const FINAL_STATES: ReadonlySet<string> = new Set(['SUCCESS', 'FAILED', 'CANCELED']);
/** What the chaos action returns when asked to fail (chaos/actions/chaos-work.ts). */
export const ASKED_FAILURE_CODE = 3;
export const TIMED_OUT_CODE = 124;

export interface ObservedJob {
  readonly id: string;
  readonly state: string;
  readonly returnCode: number | undefined;
  readonly statusMessage: string | undefined;
  /** The chaos payload: what the job was asked to do. */
  readonly outcome: string | undefined;
  /** Set on the jobs of the chaos_tick distribution. */
  readonly tick: string | undefined;
  readonly target: string | undefined;
}

export interface WorkloadRecord {
  /** Jobs someone asked to cancel (whether or not the cancel came before the end). */
  readonly cancelled: ReadonlySet<string>;
  /** Jobs sent back to the queue by a retry. */
  readonly retried: ReadonlySet<string>;
}

export interface FaultRecord {
  readonly kind: string;
  readonly target: string;
  readonly at: number;
  readonly heldMs: number;
}

export interface EngineFailure {
  readonly job: string;
  readonly expected: string;
  readonly got: string;
}

export interface Verdict {
  readonly ok: boolean;
  readonly jobs: number;
  readonly states: Readonly<Record<string, number>>;
  readonly lost: readonly string[];
  readonly concurrentDoubleRuns: readonly Overlap[];
  /** Runs beyond a job's first, not counting those a retry asked for: the engine ran it again after a fault. */
  readonly reRuns: number;
  readonly engineFailures: readonly EngineFailure[];
  readonly duplicateTickJobs: readonly { readonly tick: string; readonly target: string; readonly jobs: readonly string[] }[];
  readonly faultsByKind: Readonly<Record<string, number>>;
  readonly malformedEffects: number;
  readonly violations: readonly string[];
}

export function judge(
  jobs: readonly ObservedJob[],
  effects: SideEffects,
  workload: WorkloadRecord,
  faults: readonly FaultRecord[],
): Verdict {
  const states: Record<string, number> = {};
  for (const job of jobs) states[job.state] = (states[job.state] ?? 0) + 1;

  const lost = jobs.filter((job) => !FINAL_STATES.has(job.state)).map((job) => job.id);

  const concurrentDoubleRuns: Overlap[] = [];
  let reRuns = 0;
  for (const [job, runs] of effects.runsByJob) {
    concurrentDoubleRuns.push(...overlapsOf(runs));
    if (!workload.retried.has(job)) reRuns += Math.max(0, runs.length - 1);
  }

  const engineFailures: EngineFailure[] = [];
  for (const job of jobs) {
    if (!FINAL_STATES.has(job.state)) continue;
    const failure = engineFailureOf(job, workload.cancelled.has(job.id));
    if (failure !== undefined) engineFailures.push(failure);
  }

  const byTickTarget = new Map<string, string[]>();
  for (const job of jobs) {
    if (job.tick === undefined) continue;
    const key = `${job.tick} ${job.target ?? '-'}`;
    const list = byTickTarget.get(key);
    if (list === undefined) byTickTarget.set(key, [job.id]);
    else list.push(job.id);
  }
  const duplicateTickJobs = [...byTickTarget.entries()]
    .filter(([, ids]) => ids.length > 1)
    .map(([key, ids]) => {
      const [tick = '', target = ''] = key.split(' ');
      return { tick, target, jobs: ids };
    });

  const faultsByKind: Record<string, number> = {};
  for (const fault of faults) faultsByKind[fault.kind] = (faultsByKind[fault.kind] ?? 0) + 1;

  const violations: string[] = [];
  if (lost.length > 0) violations.push(`${String(lost.length)} job(s) lost (not final after the drain)`);
  if (concurrentDoubleRuns.length > 0) violations.push(`${String(concurrentDoubleRuns.length)} concurrent double run(s)`);
  if (engineFailures.length > 0) violations.push(`${String(engineFailures.length)} job(s) failed by the engine`);
  if (duplicateTickJobs.length > 0) violations.push(`${String(duplicateTickJobs.length)} duplicate tick job(s)`);
  if (effects.malformed > 0) violations.push(`${String(effects.malformed)} malformed side-effect line(s)`);

  return {
    ok: violations.length === 0,
    jobs: jobs.length,
    states,
    lost,
    concurrentDoubleRuns,
    reRuns,
    engineFailures,
    duplicateTickJobs,
    faultsByKind,
    malformedEffects: effects.malformed,
    violations,
  };
}

/** What the action itself would have made of the job, unless someone cancelled it. */
function engineFailureOf(job: ObservedJob, cancelled: boolean): EngineFailure | undefined {
  if (cancelled && job.state === 'CANCELED') return undefined;
  const got = `${job.state}${job.returnCode === undefined ? '' : ` rc ${String(job.returnCode)}`}${
    job.statusMessage === undefined ? '' : `: ${job.statusMessage.slice(0, 200)}`
  }`;
  switch (job.outcome) {
    case 'succeed':
      return job.state === 'SUCCESS' ? undefined : { job: job.id, expected: 'SUCCESS', got };
    case 'fail':
      return job.state === 'FAILED' && job.returnCode === ASKED_FAILURE_CODE
        ? undefined
        : { job: job.id, expected: `FAILED rc ${String(ASKED_FAILURE_CODE)}`, got };
    case 'timeout':
    case 'hang':
      return job.state === 'FAILED' && job.returnCode === TIMED_OUT_CODE
        ? undefined
        : { job: job.id, expected: `FAILED rc ${String(TIMED_OUT_CODE)} (timed out)`, got };
    default:
      return { job: job.id, expected: 'a chaos payload', got: `no outcome in the payload; ${got}` };
  }
}
