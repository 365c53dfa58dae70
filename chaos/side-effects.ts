/**
 * The side-effect log of a chaos run: what every run of the chaos action did and when, as
 * "<job> <run> <pid> start|beat|end <epoch ms>" lines appended by the executors' threads, and the
 * runs read back from it.
 */

/** One run of one job: from its first to its last effect. */
export interface Run {
  readonly job: string;
  readonly run: string;
  readonly pid: number;
  readonly first: number;
  readonly last: number;
  readonly effects: number;
  /** It reached its own end (not stopped, killed or frozen before). */
  readonly ended: boolean;
}

export interface SideEffects {
  /** By job id, each job's runs ordered by their first effect. */
  readonly runsByJob: ReadonlyMap<string, readonly Run[]>;
  /** Lines that are not effects (there should be none: each line is one append). */
  readonly malformed: number;
}

const KINDS: ReadonlySet<string> = new Set(['start', 'beat', 'end']);

export function parseSideEffects(text: string): SideEffects {
  const runs = new Map<string, { job: string; run: string; pid: number; first: number; last: number; effects: number; ended: boolean }>();
  let malformed = 0;
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const [job, run, pidText, kind, atText, ...rest] = line.split(' ');
    const pid = Number(pidText);
    const at = Number(atText);
    if (job === undefined || run === undefined || kind === undefined || !KINDS.has(kind) || rest.length > 0) {
      malformed++;
      continue;
    }
    if (!Number.isInteger(pid) || !Number.isFinite(at)) {
      malformed++;
      continue;
    }
    const seen = runs.get(run);
    if (seen === undefined) {
      runs.set(run, { job, run, pid, first: at, last: at, effects: 1, ended: kind === 'end' });
      continue;
    }
    seen.first = Math.min(seen.first, at);
    seen.last = Math.max(seen.last, at);
    seen.effects++;
    if (kind === 'end') seen.ended = true;
  }
  const runsByJob = new Map<string, Run[]>();
  for (const run of runs.values()) {
    const list = runsByJob.get(run.job);
    if (list === undefined) runsByJob.set(run.job, [run]);
    else list.push(run);
  }
  for (const list of runsByJob.values()) list.sort((a, b) => a.first - b.first);
  return { runsByJob, malformed };
}

export interface Overlap {
  readonly job: string;
  readonly runs: readonly [Run, Run];
  /** How long both had effects. */
  readonly overlapMs: number;
}

/** Pairs of runs of one job whose effects interleave in time: the job ran twice at once. */
export function overlapsOf(runs: readonly Run[]): Overlap[] {
  const overlaps: Overlap[] = [];
  for (let i = 0; i < runs.length; i++) {
    for (let j = i + 1; j < runs.length; j++) {
      const a = runs[i];
      const b = runs[j];
      if (a === undefined || b === undefined) continue;
      if (a.first < b.last && b.first < a.last) {
        overlaps.push({ job: a.job, runs: [a, b], overlapMs: Math.min(a.last, b.last) - Math.max(a.first, b.first) });
      }
    }
  }
  return overlaps;
}
