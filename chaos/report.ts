/** A chaos run's report as lines for a terminal, and as one JSON object for machines. */
import type { ChaosReport } from './run.js';

const SHOWN = 10;

export function renderReport(report: ChaosReport): string[] {
  const { verdict, workload } = report;
  const lines: string[] = [];
  lines.push(
    `chaos run seed ${String(report.seed)} (${report.store}, ${String(report.minutes)} min): ${
      verdict.ok ? 'PASSED' : `FAILED: ${verdict.violations.join('; ')}`
    }`,
  );
  const states = Object.entries(verdict.states)
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([state, count]) => `${state} ${count.toLocaleString('en')}`)
    .join(', ');
  lines.push(`  jobs ${verdict.jobs.toLocaleString('en')}: ${states}`);
  lines.push(
    `  lost ${String(verdict.lost.length)}, concurrent double runs ${String(verdict.concurrentDoubleRuns.length)}, ` +
      `engine failures ${String(verdict.engineFailures.length)}, duplicate tick jobs ${String(verdict.duplicateTickJobs.length)}`,
  );
  lines.push(`  re-runs after faults ${String(verdict.reRuns)} (runs beyond a job's first that no retry asked for)`);
  lines.push(
    `  workload: ${String(workload.submitted)} submitted (${String(workload.leftForReconciler)} left for the reconciler), ` +
      `${String(workload.cancelRequests)} cancels, ${String(workload.retries)} retries, ${String(workload.errors)} errors while faults lasted`,
  );
  const faults = Object.entries(verdict.faultsByKind).sort(([a], [b]) => a.localeCompare(b));
  const faultCount = faults.reduce((sum, [, count]) => sum + count, 0);
  lines.push(`  faults ${String(faultCount)}: ${faults.map(([kind, count]) => `${kind} ${String(count)}`).join(', ')}`);
  lines.push(`  daemons that exited on their own (restarted): ${String(report.unexpectedExits.length)}`);
  for (const exit of report.unexpectedExits.slice(0, SHOWN))
    lines.push(`    ${exit.daemon} ${exit.how} at ${new Date(exit.at).toISOString()}`);
  lines.push(`  drained in ${report.drainSeconds.toFixed(1)} s`);

  for (const id of verdict.lost.slice(0, SHOWN)) lines.push(`  lost: ${id}`);
  for (const overlap of verdict.concurrentDoubleRuns.slice(0, SHOWN)) {
    const [a, b] = overlap.runs;
    lines.push(
      `  double run: ${overlap.job} for ${String(overlap.overlapMs)} ms: pid ${String(a.pid)} ${iso(a.first)}..${iso(a.last)}` +
        ` and pid ${String(b.pid)} ${iso(b.first)}..${iso(b.last)}`,
    );
  }
  for (const failure of verdict.engineFailures.slice(0, SHOWN))
    lines.push(`  engine failure: ${failure.job}: expected ${failure.expected}, got ${failure.got}`);
  for (const duplicate of verdict.duplicateTickJobs.slice(0, SHOWN))
    lines.push(`  duplicate tick job: ${duplicate.tick} ${duplicate.target}: ${duplicate.jobs.join(', ')}`);
  if (report.kept) lines.push(`  logs, side effects, faults and report.json kept in ${report.dir}`);
  lines.push(`  replay: npm run chaos -- --seed ${String(report.seed)} --minutes ${String(report.minutes)} --store ${report.store}`);
  return lines;
}

/** The figures for --json: one object per run. */
export function reportJson(report: ChaosReport): Record<string, unknown> {
  const { verdict } = report;
  return {
    seed: report.seed,
    store: report.store,
    minutes: report.minutes,
    ok: verdict.ok,
    violations: verdict.violations,
    jobs: verdict.jobs,
    states: verdict.states,
    lost: verdict.lost.length,
    concurrentDoubleRuns: verdict.concurrentDoubleRuns.length,
    reRuns: verdict.reRuns,
    engineFailures: verdict.engineFailures.length,
    duplicateTickJobs: verdict.duplicateTickJobs.length,
    faultsByKind: verdict.faultsByKind,
    workload: report.workload,
    unexpectedExits: report.unexpectedExits.length,
    drainSeconds: report.drainSeconds,
    dir: report.kept ? report.dir : null,
  };
}

function iso(at: number): string {
  return new Date(at).toISOString().slice(11, 23);
}
