/**
 * BullMQ's side of the peer benchmark, in the same shapes and by the same rules as our side
 * (bench/e2e.bench.ts): worker processes (bullmq-worker.ts) on a private Redis; a producer in this
 * process keeping a standing backlog with `addBulk`; the slots primed, then a ramp-up until the
 * completion rate is steady, then a window over which completed jobs and the CPU of every process
 * (workers, Redis, the producer) are measured. Paced: one `add` per job at a fixed rate, latency from
 * the moment the add is issued to the moment the processor starts (it returns that moment).
 * Completed jobs are kept in Redis (BullMQ's default), as ours are kept in the job API.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Queue } from 'bullmq';
import { ChildDaemon } from '../../src/harness/child-daemon.js';
import { waitFor } from '../../src/harness/wait-for.js';
import { delay } from '../../src/util/delay.js';
import { messageOf } from '../../src/util/errors.js';
import { cpuMeter, systemCpuMsPerJob, type CpuReport, type Tracked } from '../e2e-processes.js';
import { type CountSample, now, percentile, rampNote, rampUp, round2, sampleCount } from '../rate.js';
import type { RedisServer } from './redis-server.js';

export type BullmqMode = 'sandboxed' | 'in-process';

export interface PeerFigures {
  readonly jobsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  readonly cpuMsPerJob: number;
  /** CPU ms per job of each process, by label. */
  readonly cpuByProcess: Readonly<Record<string, number>>;
}

const WORKER_SCRIPT = fileURLToPath(new URL('./bullmq-worker.ts', import.meta.url));
const PRIME_PER_SLOT = 2;
const PRIME_TIMEOUT_MS = 120_000;
const BACKLOG_MARGIN = 500;
const REFILL_MIN = 200;
const PRODUCER_POLL_MS = 5;
const DRAIN_TIMEOUT_MS = 60_000;
const READY_TIMEOUT_MS = 30_000;
const PAGE = 1000;

/** Everything that went wrong in BullMQ's runs; the benchmark reports them and exits 1. */
export const bullmqProblems: string[] = [];

interface Run {
  readonly label: string;
  readonly queue: Queue;
  readonly workers: readonly ChildDaemon[];
  readonly tracked: readonly Tracked[];
  readonly gone: AbortSignal;
  readonly addedAt: Map<string, number>;
  close(): Promise<void>;
}

/** The sandboxed processor: a plain module BullMQ loads in its worker threads. */
async function writeProcessor(dir: string): Promise<string> {
  const file = join(dir, 'noop-processor.mjs');
  await writeFile(file, 'export default async () => String(performance.timeOrigin + performance.now());\n');
  return file;
}

async function startRun(redis: RedisServer, label: string, processes: number, concurrency: number, mode: BullmqMode): Promise<Run> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-peer-'));
  const name = `bench-${randomUUID()}`;
  const queue = new Queue(name, { connection: { host: redis.host, port: redis.port } });
  const workers: ChildDaemon[] = [];
  const close = async (): Promise<void> => {
    for (const worker of workers) {
      const exit = await worker.stop();
      if (exit.code !== 0) bullmqProblems.push(`${label}: a BullMQ worker exited with ${String(exit.code)} ${String(exit.signal)}`);
    }
    await queue.obliterate({ force: true }).catch((error: unknown) => {
      bullmqProblems.push(`${label}: obliterating the queue failed: ${messageOf(error)}`);
    });
    await queue.close();
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const processor = mode === 'sandboxed' ? ['--processor', await writeProcessor(dir)] : ['--in-process'];
    for (let i = 0; i < processes; i++) {
      workers.push(
        ChildDaemon.spawn({
          name: 'bullmq-worker',
          command: process.execPath,
          args: [
            '--import',
            'tsx',
            WORKER_SCRIPT,
            '--port',
            String(redis.port),
            '--queue',
            name,
            '--concurrency',
            String(concurrency),
            ...processor,
          ],
          stdout: 'collect',
          stderr: 'collect',
          parentDeathSignal: 'SIGKILL',
        }),
      );
    }
    await Promise.all(workers.map((worker) => worker.stdout.waitForLine(/^ready$/, READY_TIMEOUT_MS)));
    const gone = new AbortController();
    for (const worker of workers) {
      void worker.exited.then((exit) => {
        gone.abort(new Error(`a BullMQ worker exited (${String(exit.code)}): ${worker.stderr.tail(3).join(' | ')}`));
      });
    }
    const tracked: Tracked[] = [
      ...workers.map((worker, i) => ({ label: processes === 1 ? 'worker' : `worker ${String(i + 1)}`, pid: worker.pid, mainThread: true })),
      { label: 'redis', pid: redis.pid },
    ];
    return { label, queue, workers, tracked, gone: gone.signal, addedAt: new Map(), close };
  } catch (error) {
    await close();
    throw error;
  }
}

async function addMany(run: Run, count: number): Promise<void> {
  const at = now();
  const jobs = await run.queue.addBulk(Array.from({ length: count }, () => ({ name: 'noop', data: {} })));
  for (const job of jobs) if (job.id !== undefined) run.addedAt.set(job.id, at);
}

/** Waiting plus active jobs: what the producer keeps at the backlog, as ours counts entries taken or not. */
async function inQueue(run: Run): Promise<number> {
  const counts = await run.queue.getJobCounts('waiting', 'active', 'prioritized');
  return (counts.waiting ?? 0) + (counts.active ?? 0) + (counts.prioritized ?? 0);
}

function backlogProducer(run: Run, backlog: number): { stop(): Promise<void> } {
  const stopped = new AbortController();
  const done = (async () => {
    while (!stopped.signal.aborted) {
      const missing = backlog - (await inQueue(run));
      if (missing >= REFILL_MIN) await addMany(run, missing);
      else await delay(PRODUCER_POLL_MS, stopped.signal).catch(() => undefined);
    }
  })();
  done.catch(() => undefined);
  return {
    stop: async () => {
      stopped.abort();
      await done;
    },
  };
}

const completed = (run: Run): Promise<CountSample> => sampleCount(() => run.queue.getCompletedCount());

async function primeSlots(run: Run, slots: number): Promise<number> {
  const started = performance.now();
  await addMany(run, slots * PRIME_PER_SLOT);
  await waitFor(async () => (await inQueue(run)) === 0, {
    timeoutMs: PRIME_TIMEOUT_MS,
    intervalMs: 20,
    message: 'the priming jobs to complete',
    signal: run.gone,
  });
  return performance.now() - started;
}

async function drainAndCheck(run: Run): Promise<void> {
  try {
    await waitFor(async () => (await inQueue(run)) === 0, { timeoutMs: DRAIN_TIMEOUT_MS, message: 'the queue to drain', signal: run.gone });
  } catch (error) {
    bullmqProblems.push(`${run.label}: ${messageOf(error)}`);
  }
  const counts = await run.queue.getJobCounts('completed', 'failed');
  if (counts.completed !== run.addedAt.size || (counts.failed ?? 0) > 0)
    bullmqProblems.push(
      `${run.label}: ${String(run.addedAt.size)} jobs added, ${String(counts.completed)} completed, ${String(counts.failed)} failed`,
    );
}

/** Add to processor start (ms) of the completed jobs `include` selects, sorted. */
async function latencies(run: Run, include: (id: string, start: number) => boolean): Promise<number[]> {
  const found: number[] = [];
  for (let first = 0; ; first += PAGE) {
    const jobs = await run.queue.getJobs(['completed'], first, first + PAGE - 1, true);
    for (const job of jobs) {
      const start = Number(job.returnvalue);
      const added = job.id === undefined ? undefined : run.addedAt.get(job.id);
      if (job.id !== undefined && added !== undefined && Number.isFinite(start) && include(job.id, start)) found.push(start - added);
    }
    if (jobs.length < PAGE) break;
  }
  return found.sort((a, b) => a - b);
}

function figuresOf(cpu: CpuReport, jobs: number, jobsPerSec: number, sorted: readonly number[]): PeerFigures {
  const cpuByProcess: Record<string, number> = {};
  for (const share of [...cpu.shares, { ...cpu.bench, label: 'producer' }])
    cpuByProcess[share.label] = round2((1000 * share.seconds) / jobs);
  return {
    jobsPerSec,
    p50Ms: round2(percentile(sorted, 0.5)),
    p99Ms: round2(percentile(sorted, 0.99)),
    cpuMsPerJob: round2(systemCpuMsPerJob(cpu, jobs)),
    cpuByProcess,
  };
}

/** Jobs/s with a standing backlog, over `seconds` once the rate is steady. */
export async function bullmqThroughput(
  redis: RedisServer,
  processes: number,
  concurrency: number,
  mode: BullmqMode,
  seconds: number,
  log: (line: string) => void,
): Promise<PeerFigures> {
  const label = `BullMQ ${mode} ${String(processes)} x ${String(concurrency)}`;
  const run = await startRun(redis, label, processes, concurrency, mode);
  try {
    const primeMs = await primeSlots(run, processes * concurrency);
    const producer = backlogProducer(run, processes * concurrency + BACKLOG_MARGIN);
    let begin: CountSample;
    let end: CountSample;
    let cpu: CpuReport;
    let ramp: { ms: number; steady: boolean };
    try {
      ramp = await rampUp(() => completed(run), run.gone);
      begin = await completed(run);
      const meter = cpuMeter(run.tracked);
      await delay(seconds * 1000, run.gone);
      cpu = meter.stop();
      end = await completed(run);
    } finally {
      await producer.stop();
    }
    await drainAndCheck(run);
    const jobs = end.count - begin.count;
    const jobsPerSec = Math.round((jobs * 1000) / (end.at - begin.at));
    const sorted = await latencies(run, (_id, start) => start >= begin.at && start <= end.at);
    const figures = figuresOf(cpu, jobs, jobsPerSec, sorted);
    log(
      `${label}: ${String(jobsPerSec).padStart(5)} jobs/s, cpu ${figures.cpuMsPerJob.toFixed(3)} ms per job (${describeCpu(figures)}); ` +
        `add -> start p50 ${figures.p50Ms.toFixed(1)} ms, p99 ${figures.p99Ms.toFixed(1)} ms (primed in ${(primeMs / 1000).toFixed(1)} s, ramp-up ${rampNote(ramp)})`,
    );
    return figures;
  } finally {
    await run.close();
  }
}

/** `rate` jobs/s for `seconds`, one add each, against `processes` x `concurrency`: latency from add to start. */
export async function bullmqPaced(
  redis: RedisServer,
  concurrency: number,
  mode: BullmqMode,
  rate: number,
  seconds: number,
  log: (line: string) => void,
): Promise<PeerFigures> {
  const label = `BullMQ ${mode} paced 1 x ${String(concurrency)}`;
  const run = await startRun(redis, label, 1, concurrency, mode);
  try {
    await primeSlots(run, concurrency);
    const producer = backlogProducer(run, concurrency + BACKLOG_MARGIN);
    try {
      await rampUp(() => completed(run), run.gone);
    } finally {
      await producer.stop();
    }
    await waitFor(async () => (await inQueue(run)) === 0, {
      timeoutMs: DRAIN_TIMEOUT_MS,
      message: 'the ramp-up jobs to drain',
      signal: run.gone,
    });
    const count = rate * seconds;
    const paced = new Set<string>();
    const meter = cpuMeter(run.tracked);
    const launches: Promise<void>[] = [];
    const begin = now() + 20;
    for (let i = 0; i < count; i++) {
      const wait = begin + (i * 1000) / rate - now();
      if (wait > 0) await delay(wait, run.gone, { keepProcessAlive: true });
      launches.push(
        (async () => {
          const at = now();
          const job = await run.queue.add('noop', {});
          if (job.id === undefined) throw new Error('BullMQ gave no job id');
          run.addedAt.set(job.id, at);
          paced.add(job.id);
        })(),
      );
    }
    const failed = (await Promise.allSettled(launches)).filter((outcome) => outcome.status === 'rejected');
    if (failed.length > 0) bullmqProblems.push(`${label}: ${String(failed.length)} adds failed, e.g. ${messageOf(failed[0]?.reason)}`);
    await drainAndCheck(run);
    const cpu = meter.stop();
    const sorted = await latencies(run, (id) => paced.has(id));
    if (sorted.length !== count) bullmqProblems.push(`${label}: ${String(count)} jobs added, ${String(sorted.length)} with a start time`);
    const figures = figuresOf(cpu, count, rate, sorted);
    log(
      `${label} at ${String(rate)} jobs/s for ${String(seconds)} s: add -> start p50 ${figures.p50Ms.toFixed(2)} ms, p99 ${figures.p99Ms.toFixed(2)} ms, ` +
        `max ${round2(sorted.at(-1) ?? Number.NaN).toFixed(2)} ms; cpu ${figures.cpuMsPerJob.toFixed(3)} ms per job (${describeCpu(figures)})`,
    );
    return figures;
  } finally {
    await run.close();
  }
}

function describeCpu(figures: PeerFigures): string {
  return Object.entries(figures.cpuByProcess)
    .map(([label, value]) => `${label} ${value.toFixed(3)}`)
    .join(', ');
}
