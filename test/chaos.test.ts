/**
 * The short chaos run of `npm test` (the long one is `npm run chaos -- --minutes 15`): the whole
 * engine (3-node ZooKeeper ensemble, job API, executors, distributors) under randomized faults for
 * about a minute per database, then the checker's verdict. A failure prints the report, whose seed
 * replays the run's faults and workload (`npm run chaos -- --seed N`), and keeps the run's logs.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { ChildDaemon } from '../src/harness/child-daemon.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const MINUTES = 0.75;
/** Fixed, so that CI runs the same faults every time; CHAOS_SEED tries another. */
const SEEDS = { sqlite: 1301, postgres: 1302 } as const;
// About 2 minutes on a quiet machine (start, 45 s of faults, drain, stop); far more under heavy load.
const RUN_TIMEOUT_MS = 450_000;

async function chaosRun(store: keyof typeof SEEDS): Promise<{ code: number | null; report: string; json: unknown }> {
  const seed = process.env.CHAOS_SEED ?? String(SEEDS[store]);
  const child = ChildDaemon.spawn({
    name: 'npm run chaos',
    command: process.execPath,
    args: ['--import', 'tsx', 'chaos/main.ts', '--minutes', String(MINUTES), '--seed', seed, '--store', store, '--drain', '120', '--json'],
    cwd: ROOT,
    stdout: 'collect',
    stderr: 'collect',
    parentDeathSignal: 'SIGTERM',
    stopGraceMs: 30_000,
  });
  const timer = setTimeout(() => void child.stop(), RUN_TIMEOUT_MS);
  try {
    const { code } = await child.exited;
    const lines = child.stdout.lines;
    const last = lines.at(-1) ?? '';
    let json: unknown;
    try {
      json = JSON.parse(last);
    } catch {
      json = undefined;
    }
    return { code, report: [...lines.slice(0, -1), ...child.stderr.tail(20)].join('\n'), json };
  } finally {
    clearTimeout(timer);
  }
}

function firstRun(json: unknown): Record<string, unknown> {
  const runs = (json as { runs?: unknown } | undefined)?.runs;
  const run: unknown = Array.isArray(runs) ? runs[0] : undefined;
  if (typeof run !== 'object' || run === null) assert.fail(`no run in the JSON line: ${JSON.stringify(json)}`);
  return run as Record<string, unknown>;
}

describe('npm run chaos (short)', () => {
  for (const store of ['sqlite', 'postgres'] as const) {
    test(
      `on ${store}: no job lost, none run twice at once, none failed by the engine, no duplicate tick job`,
      { timeout: RUN_TIMEOUT_MS + 30_000 },
      async () => {
        const { code, report, json } = await chaosRun(store);
        assert.equal(code, 0, `the chaos run failed:\n${report}`);
        const run = firstRun(json);
        assert.equal(run.ok, true, report);
        assert.ok(typeof run.jobs === 'number' && run.jobs > 50, `too few jobs for a meaningful run:\n${report}`);
        const faults = Object.values(run.faultsByKind as Record<string, number>).reduce((sum, count) => sum + count, 0);
        assert.ok(faults >= 5, `too few faults for a meaningful run:\n${report}`);
      },
    );
  }
});
