/**
 * Side by side with BullMQ, in one run on this machine: our engine end to end (bench/e2e.bench.ts:
 * job API on SQLite, ZooKeeper, job-executor processes), its action both in worker threads (one per
 * slot) and in-process (`isolation: 'in-process'`: the executor's event loop), against BullMQ 5 on a
 * private Redis (bench/peer/), BullMQ both sandboxed (its worker threads, the fair match of our thread
 * per job) and in-process (the processor in the worker's event loop, the match of ours in-process).
 * Same shapes as `bench:e2e`: 1 x 16, 1 x 64 and 2 x 16 (processes x concurrent jobs) with a producer
 * keeping a standing backlog in bulk, then 200 jobs/s paced against 1 x 16 for latency. The four
 * contenders run alternately, shape by shape.
 *
 *   npm run bench:peer [-- --json] [-- --seconds N] [-- --only 1x16,1x64,2x16,paced]
 *
 * Printed: jobs/s, CPU ms per job of every process (ours: executors, job-api, ZooKeeper, producer;
 * BullMQ: workers, Redis, producer), add -> start p50/p99, the ratios, and the issue's targets.
 * --json: one JSON object on the last line.
 */
import { loadavg } from 'node:os';
import { parseBenchArgs } from './bench-args.js';
import { checkBuilt } from './e2e-processes.js';
import { bullmqPaced, bullmqProblems, bullmqThroughput, type PeerFigures } from './peer/bullmq-runs.js';
import { oursRun, type OursResult } from './peer/ours-runs.js';
import { startRedis } from './peer/redis-server.js';
import { round2 } from './rate.js';

const SHAPES = [
  { name: '1x16', processes: 1, concurrency: 16 },
  { name: '1x64', processes: 1, concurrency: 64 },
  { name: '2x16', processes: 2, concurrency: 16 },
] as const;
const PACED_RATE = 200;

interface PeerRun {
  readonly shape: string;
  /** How our no-op action ran: in worker threads, or in-process (`isolation: 'in-process'`). */
  readonly mode: 'thread' | 'inline';
  readonly ours: number;
  readonly bullmqSandboxed: number;
  readonly bullmqInProcess: number;
  readonly oursCpuMsPerJob: number;
  readonly bullmqSandboxedCpuMsPerJob: number;
  readonly bullmqInProcessCpuMsPerJob: number;
}

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}x` : '-');

function oneRun(result: OursResult, shape: string): OursResult['runs'][number] {
  const run = result.runs[0];
  if (run === undefined) throw new Error(`the e2e benchmark reported no run for ${shape}`);
  return run;
}

function verdict(name: string, value: number | undefined, ok: (value: number) => boolean): string {
  return `${name}: ${value === undefined || Number.isNaN(value) ? 'not run' : `${ok(value) ? 'met' : 'NOT met'} (${String(round2(value))})`}`;
}

async function main(): Promise<void> {
  const { json, seconds, only } = parseBenchArgs(process.argv.slice(2), 8);
  const wanted = (name: string): boolean => only === undefined || only.has(name);
  checkBuilt();
  const redis = await startRedis();
  const runs: PeerRun[] = [];
  let paced: { oursP50Ms: number; oursP99Ms: number; bullmqP50Ms: number; bullmqP99Ms: number; bullmqInProcessP50Ms: number } | null = null;
  let rssIdleMb: number | null = null;
  try {
    log(
      `ours (e2e benchmark per shape: ZooKeeper, job-api on SQLite, job-executor from dist/) vs BullMQ 5 on redis-server ${String(redis.port)} ` +
        `(no persistence); window ${String(seconds)} s once the rate is steady; load average ${loadavg()
          .map((value) => value.toFixed(2))
          .join(' ')}`,
    );
    for (const shape of SHAPES) {
      if (!wanted(shape.name)) continue;
      log(`\n${shape.name}`);
      const oursResult = await oursRun(shape.name, seconds, log);
      if (shape.name === '1x64') rssIdleMb = oursResult.rssIdleMb;
      const ours = oneRun(oursResult, shape.name);
      const sandboxed = await bullmqThroughput(redis, shape.processes, shape.concurrency, 'sandboxed', seconds, log);
      const oursInline = oneRun(await oursRun(shape.name, seconds, log, true), shape.name);
      const inProcess = await bullmqThroughput(redis, shape.processes, shape.concurrency, 'in-process', seconds, log);
      for (const [mode, figures] of [
        ['thread', ours],
        ['inline', oursInline],
      ] as const) {
        runs.push({
          shape: shape.name,
          mode,
          ours: figures.jobsPerSec,
          bullmqSandboxed: sandboxed.jobsPerSec,
          bullmqInProcess: inProcess.jobsPerSec,
          oursCpuMsPerJob: figures.cpuMsPerJob,
          bullmqSandboxedCpuMsPerJob: sandboxed.cpuMsPerJob,
          bullmqInProcessCpuMsPerJob: inProcess.cpuMsPerJob,
        });
      }
      log(
        `${shape.name}: ours threads ${String(ours.jobsPerSec)} jobs/s (${ours.cpuMsPerJob.toFixed(3)} ms cpu/job), in-process ${String(oursInline.jobsPerSec)} ` +
          `(${oursInline.cpuMsPerJob.toFixed(3)}) | BullMQ sandboxed ${String(sandboxed.jobsPerSec)} ` +
          `(${sandboxed.cpuMsPerJob.toFixed(3)}), in-process ${String(inProcess.jobsPerSec)} (${inProcess.cpuMsPerJob.toFixed(3)}) | ` +
          `threads/sandboxed ${ratio(ours.jobsPerSec, sandboxed.jobsPerSec)}, in-process/in-process ${ratio(oursInline.jobsPerSec, inProcess.jobsPerSec)}`,
      );
    }
    if (wanted('paced')) {
      log('\npaced');
      const oursResult = await oursRun('paced', seconds, log);
      const sandboxed: PeerFigures = await bullmqPaced(redis, 16, 'sandboxed', PACED_RATE, Math.round(seconds * 1.25), log);
      const inProcess: PeerFigures = await bullmqPaced(redis, 16, 'in-process', PACED_RATE, Math.round(seconds * 1.25), log);
      if (oursResult.paced === null) throw new Error('the e2e benchmark reported no paced run');
      paced = {
        oursP50Ms: oursResult.paced.p50Ms,
        oursP99Ms: oursResult.paced.p99Ms,
        bullmqP50Ms: sandboxed.p50Ms,
        bullmqP99Ms: sandboxed.p99Ms,
        bullmqInProcessP50Ms: inProcess.p50Ms,
      };
      log(
        `paced ${String(PACED_RATE)} jobs/s, 1 x 16, enqueue -> start: ours p50 ${paced.oursP50Ms.toFixed(2)} ms, p99 ${paced.oursP99Ms.toFixed(2)} ms | ` +
          `BullMQ sandboxed p50 ${paced.bullmqP50Ms.toFixed(2)}, p99 ${paced.bullmqP99Ms.toFixed(2)} | in-process p50 ${paced.bullmqInProcessP50Ms.toFixed(2)}`,
      );
    }
  } finally {
    await redis.stop();
  }
  reportTargets(runs, paced, rssIdleMb);
  if (bullmqProblems.length > 0) {
    process.stderr.write(
      `\n${String(bullmqProblems.length)} problem(s) in BullMQ's runs:\n${bullmqProblems.map((p) => `- ${p}`).join('\n')}\n`,
    );
    process.exitCode = 1;
  }
  if (json) log(JSON.stringify({ runs, paced, rssIdleMb }));
}

function reportTargets(
  runs: readonly PeerRun[],
  paced: { oursP50Ms: number; oursP99Ms: number; bullmqP50Ms: number } | null,
  rssIdleMb: number | null,
): void {
  const at = (shape: string, mode: PeerRun['mode'] = 'thread'): PeerRun | undefined =>
    runs.find((run) => run.shape === shape && run.mode === mode);
  const big = at('1x64');
  const small = at('1x16');
  const bigInline = at('1x64', 'inline');
  const leanest = Math.min(big?.oursCpuMsPerJob ?? Infinity, bigInline?.oursCpuMsPerJob ?? Infinity);
  log(
    `\ntargets: ${verdict('cpu per job at 1 x 64 <= 0.30 ms', Number.isFinite(leanest) ? leanest : undefined, (v) => v <= 0.3)}; ` +
      `${verdict('threads vs BullMQ sandboxed at 1 x 16 >= 1.5x', small === undefined ? undefined : small.ours / small.bullmqSandboxed, (v) => v >= 1.5)}; ` +
      `${verdict('at 1 x 64 >= 1.5x', big === undefined ? undefined : big.ours / big.bullmqSandboxed, (v) => v >= 1.5)}; ` +
      `${verdict('in-process vs BullMQ in-process at 1 x 64 >= 1.0x', bigInline === undefined ? undefined : bigInline.ours / bigInline.bullmqInProcess, (v) => v >= 1)}; ` +
      `${verdict('paced p50 <= BullMQ p50 + 1 ms', paced === null ? undefined : paced.oursP50Ms - paced.bullmqP50Ms, (v) => v <= 1)}; ` +
      `${verdict('paced p99 <= 10 ms', paced?.oursP99Ms, (v) => v <= 10)}; ${verdict('executor idle RSS <= 80 MB', rssIdleMb ?? undefined, (v) => v <= 80)}`,
  );
}

await main();
