/**
 * Our side of the peer benchmark: one shape of `bench/e2e.bench.ts` in a process of its own (its own
 * ZooKeeper, warmed up, its own job-api and executors from dist/), its report passed through with a
 * prefix, its figures read from the JSON object on its last line.
 */
import { fileURLToPath } from 'node:url';
import { ChildDaemon } from '../../src/harness/child-daemon.js';

const E2E_SCRIPT = fileURLToPath(new URL('../e2e.bench.ts', import.meta.url));
const OUTPUT_CHARS = 1 << 20;

export interface OursRun {
  readonly executors: number;
  readonly threads: number;
  readonly jobsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuMsPerJob: number;
}

export interface OursResult {
  readonly runs: readonly OursRun[];
  readonly paced: { readonly p50Ms: number; readonly p99Ms: number; readonly cpuMsPerJob: number } | null;
  readonly rssIdleMb: number | null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function numberIn(record: Record<string, unknown>, key: string, where: string): number {
  const value = record[key];
  // JSON has no NaN: a figure that could not be computed comes as null.
  if (value === null) return Number.NaN;
  if (typeof value !== 'number') throw new Error(`${where}: "${key}" is not a number in the e2e benchmark's JSON`);
  return value;
}

export function parseOursResult(line: string): OursResult {
  const parsed: unknown = JSON.parse(line);
  if (!isRecord(parsed) || !Array.isArray(parsed.runs))
    throw new Error(`the e2e benchmark's last line is not its JSON report: ${line.slice(0, 200)}`);
  const runs = parsed.runs.map((run: unknown, i) => {
    if (!isRecord(run)) throw new Error(`run ${String(i)} of the e2e benchmark's JSON is not an object`);
    const where = `run ${String(i)}`;
    return {
      executors: numberIn(run, 'executors', where),
      threads: numberIn(run, 'threads', where),
      jobsPerSec: numberIn(run, 'jobsPerSec', where),
      p50Ms: numberIn(run, 'p50Ms', where),
      p99Ms: numberIn(run, 'p99Ms', where),
      cpuMsPerJob: numberIn(run, 'cpuMsPerJob', where),
    };
  });
  const paced = isRecord(parsed.paced)
    ? {
        p50Ms: numberIn(parsed.paced, 'p50Ms', 'paced'),
        p99Ms: numberIn(parsed.paced, 'p99Ms', 'paced'),
        cpuMsPerJob: numberIn(parsed.paced, 'cpuMsPerJob', 'paced'),
      }
    : null;
  const rssIdleMb = typeof parsed.rssIdleMb === 'number' ? parsed.rssIdleMb : null;
  return { runs, paced, rssIdleMb };
}

/**
 * Runs `only` (e.g. `1x64` or `paced`) of the e2e benchmark; its lines go to `log` as they come.
 * `inProcess`: its no-op action runs in the executors' event loops instead of worker threads.
 */
export async function oursRun(only: string, seconds: number, log: (line: string) => void, inProcess = false): Promise<OursResult> {
  const child = ChildDaemon.spawn({
    name: 'e2e benchmark',
    command: process.execPath,
    args: ['--import', 'tsx', E2E_SCRIPT, '--json', '--only', only, '--seconds', String(seconds), ...(inProcess ? ['--in-process'] : [])],
    stdout: { collect: { keptChars: OUTPUT_CHARS } },
    stderr: 'inherit',
  });
  const lines: string[] = [];
  child.stdout.onLine((line) => {
    lines.push(line);
    if (!line.startsWith('{')) log(`  ours${inProcess ? ' in-process' : ''} | ${line}`);
  });
  const exit = await child.exited;
  const last = lines.at(-1);
  if (last === undefined || !last.startsWith('{')) {
    throw new Error(`the e2e benchmark (${only}) exited with code ${String(exit.code)} without its JSON report`);
  }
  if (exit.code !== 0) log(`  ours | the e2e benchmark (${only}) exited with code ${String(exit.code)}: see its PROBLEM lines above`);
  return parseOursResult(last);
}
