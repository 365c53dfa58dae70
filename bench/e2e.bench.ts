/**
 * End-to-end benchmark: no-op jobs from creation through the job API to the consumed queue entry
 * (create, enqueue, take, claim, run in a worker thread, final write, consume), everything on this
 * machine: a private ZooKeeper (forceSync=no), `job-api serve` on SQLite in its own process, and
 * `job-executor` processes started from the built JavaScript (dist/) as production starts them.
 *
 *   npm run bench:e2e [-- --json] [-- --seconds N] [-- --only 1x16,1x64,2x16,paced] [-- --no-warmup] [-- --in-process]
 *
 * Throughput runs (1 x 16, 1 x 64, 2 x 16 executor processes x threads): a producer in this process
 * keeps a backlog (bulk creates, then putMany of their ids, whenever the queue runs short), and jobs/s
 * completed is measured over a window (--seconds, default 8) after the slots' threads are started and
 * the rate has settled. Paced run: 200 jobs/s for 1.25 x the window, one create and one put per job,
 * against 1 x 16. Latency is from the moment the producer issues the put to the moment the action
 * starts in its worker thread: the no-op action returns that moment as its status message, read back
 * from the API afterwards, with the API's own `started` (claim) and `updated` (final write) stamps to
 * split it. Each run has its own job-api process and database, executors and queue path; the
 * ZooKeeper server is shared and warmed up first (not reported). Also printed: CPU of each process over
 * the window (from /proc), ZooKeeper requests per job by client (the server's `cons` counters), and for
 * 1 x 64 the executor's VmRSS idle and at its busiest, and what it costs while idle. With --in-process
 * the no-op action declares `isolation: 'in-process'`: it runs in the executors' event loops, no thread.
 *
 * --json prints one JSON object on the last line; with --only, figures of runs left out are null.
 * Any job not SUCCESS, unclean executor exit or error logged is reported as a PROBLEM (exit code 1).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobApiClient } from '../src/api/client/index.js';
import type { NewJob } from '../src/api/client/inputs.js';
import { JOB_STATES } from '../src/api/job/document.js';
import { startZooKeeper, type ZooKeeperServer } from '../src/harness/zookeeper-server.js';
import { waitFor } from '../src/harness/wait-for.js';
import { LockingQueue } from '../src/recipes/locking-queue.js';
import { delay } from '../src/util/delay.js';
import { messageOf } from '../src/util/errors.js';
import { ZkClient } from '../src/zk/client.js';
import { removeTree } from '../test/fixtures/zk-cleanup.js';
import { parseBenchArgs } from './bench-args.js';
import { type CountSample, RAMP_UP, now, percentile, rampNote, rampUp, sampleCount } from './rate.js';
import {
  NOOP_ACTION,
  checkBuilt,
  cpuMeter,
  rssMb,
  rssPeak,
  spawnExecutor,
  systemCpuMsPerJob,
  startJobApi,
  writeNoopAction,
  type CpuReport,
  type CpuShare,
  type Daemon,
  type JobApiProcess,
  type Tracked,
  type ZkTraffic,
  zkTrafficMeter,
} from './e2e-processes.js';

interface RunFigures {
  executors: number;
  threads: number;
  jobsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  /** CPU of every process of the system (executors, job-api, ZooKeeper, the producer) per job, in ms. */
  cpuMsPerJob: number;
}

interface PacedFigures {
  jobsPerSec: number;
  p50Ms: number;
  p99Ms: number;
  cpuMsPerJob: number;
}

const { json, seconds: windowSeconds, only, has } = parseBenchArgs(process.argv.slice(2), 8);
const withWarmup = !has('--no-warmup');
/** The no-op action runs in the executors' event loops (`isolation: 'in-process'`) instead of worker threads. */
const inProcess = has('--in-process');
/**
 * Each slot starts its worker thread with its first job, and a thread costs a few hundred ms of CPU
 * to start: 64 of them take seconds, during which the rate is low but may look steady. So every run
 * first primes the slots (PRIME_PER_SLOT jobs per slot, all taken at once, as no slot can take a
 * second job before its thread is up) and waits for them; then the ramp-up (bench/rate.ts): at least
 * two seconds of full rate, then until the completion rate of the last second is within 15 % of the
 * second before, at most 30 s.
 */
const PRIME_PER_SLOT = 2;
const PRIME_TIMEOUT_MS = 120_000;
const WARMUP_SECONDS = 5;
const PACED_RATE = 200;
/**
 * How long the 1 x 64 executor stays idle before any job: its idle cost (CPU, ZooKeeper requests) is
 * measured over this time, and its idle RSS at its end. Long enough for V8's memory reducer to give
 * back the start-up heap (it runs some seconds after allocation stops), as in an executor that waits
 * for work in production; the RSS one second after start is reported beside it.
 */
const IDLE_SECONDS = 15;
/** 10 s at the default window of 8 s. */
const PACED_SECONDS = Math.max(1, Math.round(windowSeconds * 1.25));
/** The producer holds the queue (entries taken or not) at the executors' threads plus this. */
const BACKLOG_MARGIN = 500;
/** It refills when at least this many entries are missing, in one bulk create and one putMany. */
const REFILL_MIN = 200;
/** How often it reads the depth otherwise; each read is a request ZooKeeper also serves. */
const PRODUCER_POLL_MS = 5;
const DRAIN_TIMEOUT_MS = 60_000;
const READY_TIMEOUT_MS = 30_000;
/** The server's largest page. */
const PAGE = 10_000;
const NOOP_JOB: NewJob = { action: NOOP_ACTION };

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

/** Everything that went wrong, reported at once and again at the end; any makes the exit code 1. */
const problems: string[] = [];
const problem = (message: string): void => {
  problems.push(message);
  process.stderr.write(`PROBLEM: ${message}\n`);
};

interface Shared {
  readonly zk: ZooKeeperServer;
  readonly zkClient: ZkClient;
  readonly actionsDir: string;
}

/** One run's own job-api process and database, queue path and executors. */
interface Run {
  readonly label: string;
  readonly api: JobApiProcess;
  readonly client: JobApiClient;
  readonly queue: LockingQueue;
  readonly executors: readonly Daemon[];
  /** Aborted when any executor or the job-api exits on its own. */
  readonly gone: AbortSignal;
  /** When the producer issued the put of each job. */
  readonly enqueuedAt: Map<string, number>;
  readonly tracked: readonly Tracked[];
  close(): Promise<void>;
}

async function startRun(shared: Shared, label: string, executorCount: number, threads: number): Promise<Run> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-e2e-'));
  const undo: (() => Promise<unknown>)[] = [() => rm(dir, { recursive: true, force: true })];
  const unwind = async (): Promise<void> => {
    for (const step of undo.splice(0).reverse()) {
      try {
        await step();
      } catch (error) {
        problem(`${label}: cleaning up failed: ${messageOf(error)}`);
      }
    }
  };
  try {
    const api = await startJobApi(join(dir, 'jobs.sqlite'));
    undo.push(async () => {
      await stopAndCheck(label, api.daemon);
    });
    const client = await JobApiClient.create({ baseUrl: api.baseUrl, credentials: api.admin, compatibility: 'engine' });
    undo.push(() => client.close());
    const queuePath = `/bench-e2e-${randomUUID()}`;
    const queue = new LockingQueue(shared.zkClient, { path: queuePath });
    undo.push(() => removeTree(shared.zkClient, queuePath));
    undo.push(() => queue.close());
    const executors: Daemon[] = [];
    undo.push(() => Promise.all(executors.map((executor) => stopAndCheck(label, executor))));
    for (let i = 0; i < executorCount; i++) {
      executors.push(
        spawnExecutor({
          zkHosts: shared.zk.connectionString,
          queuePath,
          apiUrl: api.baseUrl,
          credentials: api.executor,
          threads,
          actionsDir: shared.actionsDir,
        }),
      );
    }
    const gone = AbortSignal.any([api.daemon.gone, ...executors.map((executor) => executor.gone)]);
    // Started: registered under <queue>/executors, and its slots taking (joined <queue>/consumers).
    const children = (path: string): Promise<number> =>
      shared.zkClient.getChildren(path).then(
        (names) => names.length,
        () => 0,
      );
    await waitFor(
      async () =>
        (await children(`${queuePath}/executors`)) >= executorCount && (await children(`${queuePath}/consumers`)) >= executorCount,
      { timeoutMs: READY_TIMEOUT_MS, message: `${String(executorCount)} executor(s) registered and taking`, signal: gone },
    );
    const tracked: Tracked[] = [
      ...executors.map((executor, i) => ({
        label: executorCount === 1 ? 'executor' : `executor ${String(i + 1)}`,
        pid: executor.pid,
        mainThread: true,
      })),
      { label: 'job-api', pid: api.daemon.pid, mainThread: true },
      { label: 'zookeeper', pid: shared.zk.pid },
    ];
    return { label, api, client, queue, executors, gone, enqueuedAt: new Map(), tracked, close: unwind };
  } catch (error) {
    await unwind();
    throw error;
  }
}

/** SIGTERM, awaited; an unclean exit and whatever the process logged (it logs at warn) are reported. */
async function stopAndCheck(label: string, daemon: Daemon): Promise<void> {
  const started = performance.now();
  const exit = await daemon.stop();
  const tookMs = performance.now() - started;
  if (exit.code !== 0)
    problem(`${label}: ${daemon.name} ${String(daemon.pid)} exited with code ${String(exit.code)}, signal ${String(exit.signal)}`);
  if (tookMs > 5000) problem(`${label}: ${daemon.name} ${String(daemon.pid)} took ${(tookMs / 1000).toFixed(1)} s to stop after SIGTERM`);
  const count = daemon.lineCount();
  if (count === 0) return;
  const errors = daemon.lines.filter((line) => / error /.test(line)).length;
  const report = `${label}: ${daemon.name} ${String(daemon.pid)} logged ${String(count)} line(s) at warn or error:\n  ${daemon.lines.slice(0, 10).join('\n  ')}`;
  if (errors > 0) problem(report);
  else process.stderr.write(`${report}\n`);
}

async function enqueue(run: Run, count: number): Promise<void> {
  const created = await run.client.createMany(Array.from({ length: count }, () => NOOP_JOB));
  const at = now();
  for (const { id } of created) run.enqueuedAt.set(id, at);
  await run.queue.putMany(created.map(({ id }) => ({ jobId: id })));
}

/** Keeps the queue at `backlog` entries until stopped; a refill once begun is completed. */
function backlogProducer(run: Run, backlog: number): { stop(): Promise<void> } {
  const stopped = new AbortController();
  const done = (async () => {
    while (!stopped.signal.aborted) {
      const missing = backlog - (await run.queue.length());
      if (missing >= REFILL_MIN) await enqueue(run, missing);
      else await delay(PRODUCER_POLL_MS, stopped.signal).catch(() => undefined);
    }
  })();
  // Seen at stop(); without this a failure before then would be an unhandled rejection.
  done.catch(() => undefined);
  return {
    stop: async () => {
      stopped.abort();
      await done;
    },
  };
}

/** SUCCESS jobs now, stamped with the middle of the request. */
function successCount(run: Run): Promise<CountSample> {
  return sampleCount(() => run.client.count("state='SUCCESS'"));
}

/** Every slot's thread started (see PRIME_PER_SLOT); how long that took. */
async function primeSlots(run: Run, slots: number): Promise<number> {
  const started = performance.now();
  await enqueue(run, slots * PRIME_PER_SLOT);
  await waitFor(async () => (await run.queue.length()) === 0, {
    timeoutMs: PRIME_TIMEOUT_MS,
    intervalMs: 20,
    message: 'the priming jobs to complete',
    signal: run.gone,
  });
  return performance.now() - started;
}

/** Waits for every entry to be consumed, then checks every job the run made ended SUCCESS. */
async function drainAndCheck(run: Run): Promise<void> {
  try {
    await waitFor(async () => (await run.queue.length()) === 0, {
      timeoutMs: DRAIN_TIMEOUT_MS,
      message: 'the queue to drain',
      signal: run.gone,
    });
  } catch (error) {
    problem(`${run.label}: ${messageOf(error)}; ${String(await run.queue.length().catch(() => -1))} entries left`);
  }
  const byState = await run.client.countByState();
  const notSuccess = JOB_STATES.filter((state) => state !== 'SUCCESS' && byState[state] > 0);
  if (byState.SUCCESS !== run.enqueuedAt.size || notSuccess.length > 0) {
    const sample = await run.client.search({ filter: "state!='SUCCESS'", last: 5 });
    problem(
      `${run.label}: ${String(run.enqueuedAt.size)} jobs enqueued, ${String(byState.SUCCESS)} SUCCESS; ` +
        (notSuccess.map((state) => `${state} ${String(byState[state])}`).join(', ') || 'no other state') +
        sample.jobs.map((job) => `\n  ${job.id} ${job.state} rc=${String(job['return-code'])} ${job['status-message'] ?? ''}`).join(''),
    );
  }
}

/**
 * Each SUCCESS job's timeline (epoch ms): the action's start, from the status message the no-op action
 * returned; and, as the job API stamped them (to the millisecond), the claim (`started`, the move to
 * RUNNING) and the final write (`updated`).
 */
interface Timeline {
  readonly start: number;
  readonly claimed: number;
  readonly finished: number;
}

async function timelines(run: Run): Promise<Map<string, Timeline>> {
  const found = new Map<string, Timeline>();
  let unreadable = 0;
  for (let first = 1; ; first += PAGE) {
    const page = await run.client.search({
      filter: "state='SUCCESS'",
      orderby: 'created:asc',
      first,
      last: first + PAGE - 1,
      select: ['status-message', 'started', 'updated'],
    });
    for (const job of page.jobs) {
      const start = Number(job['status-message'] ?? Number.NaN);
      const claimed = Date.parse(job.started ?? '');
      const finished = Date.parse(job.updated);
      if (Number.isFinite(start) && Number.isFinite(claimed) && Number.isFinite(finished)) found.set(job.id, { start, claimed, finished });
      else unreadable++;
    }
    if (page.jobs.length < PAGE) break;
  }
  if (unreadable > 0)
    problem(
      `${run.label}: ${String(unreadable)} SUCCESS job(s) without the action's start time as status message, or without started/updated`,
    );
  return found;
}

interface Latencies {
  /** Enqueue to action start, sorted: the benchmark's latency. */
  readonly toStart: number[];
  /** Its parts, each sorted: enqueue to claim, claim to action start; then action start to final write. */
  readonly toClaim: number[];
  readonly claimToStart: number[];
  readonly startToFinal: number[];
}

/** The latencies of the jobs `include` selects. */
function latencies(run: Run, found: ReadonlyMap<string, Timeline>, include: (id: string, timeline: Timeline) => boolean): Latencies {
  const result: Latencies = { toStart: [], toClaim: [], claimToStart: [], startToFinal: [] };
  let unknown = 0;
  for (const [id, timeline] of found) {
    if (!include(id, timeline)) continue;
    const enqueued = run.enqueuedAt.get(id);
    if (enqueued === undefined) {
      unknown++;
      continue;
    }
    result.toStart.push(timeline.start - enqueued);
    result.toClaim.push(timeline.claimed - enqueued);
    result.claimToStart.push(timeline.start - timeline.claimed);
    result.startToFinal.push(timeline.finished - timeline.start);
  }
  if (unknown > 0) problem(`${run.label}: ${String(unknown)} job(s) ran that this benchmark did not enqueue`);
  for (const values of [result.toStart, result.toClaim, result.claimToStart, result.startToFinal]) values.sort((a, b) => a - b);
  return result;
}

/** The parts of the latency, p50 and p99 each (the API's stamps are whole milliseconds). */
function partsLine(lat: Latencies): string {
  const part = (name: string, values: readonly number[]): string =>
    `${name} ${percentile(values, 0.5).toFixed(1)} / ${percentile(values, 0.99).toFixed(1)}`;
  return `  ms p50 / p99: ${part('enqueue -> claimed', lat.toClaim)} | ${part('claimed -> action start', lat.claimToStart)} | ${part('action start -> final write', lat.startToFinal)}`;
}

const primeNote = (primeMs: number, slots: number): string => `${String(slots)} slot threads started in ${(primeMs / 1000).toFixed(1)} s`;
const ms = (value: number): number => Math.round(value * 100) / 100;
const mb = (value: number): number => Math.round(value * 10) / 10;

/** ZooKeeper's clients: the executors and this process (the producer). */
function zkClients(run: Run): Tracked[] {
  return [...run.tracked.filter((t) => t.label.startsWith('executor')), { label: 'bench', pid: process.pid }];
}

function zkLine(traffic: ZkTraffic, jobs: number): string {
  const per = (requests: number): string => (jobs > 0 ? (requests / jobs).toFixed(2) : '-');
  return `  zookeeper requests per job: ${traffic.byProcess.map(({ label, requests }) => `${label} ${per(requests)}`).join(' | ')} | all ${per(traffic.total)}`;
}

function idleLine(cpu: CpuReport, traffic: ZkTraffic): string {
  const cpuOf = (label: string): string => {
    const share = cpu.shares.find((s) => s.label === label);
    return share === undefined
      ? '-'
      : `${share.percent.toFixed(0)}%${share.mainThreadPercent === undefined ? '' : ` (main thread ${share.mainThreadPercent.toFixed(0)}%)`}`;
  };
  const requests = traffic.byProcess.map(({ label, requests }) => `${label} ${(requests / IDLE_SECONDS).toFixed(0)}`).join(' | ');
  return `  idle executor (started, empty queue, ${String(IDLE_SECONDS)} s): cpu executor ${cpuOf('executor')}, zookeeper ${cpuOf('zookeeper')}; zookeeper requests/s: ${requests}`;
}

function cpuLines(cpu: CpuReport, jobs: number): string[] {
  const shares = [...cpu.shares, cpu.bench];
  const mainThread = (share: CpuShare): string =>
    share.mainThreadPercent === undefined
      ? ''
      : ` (main thread ${share.mainThreadPercent.toFixed(0)} + ${(share.mainThreadWaitPercent ?? 0).toFixed(0)} waiting for a cpu)`;
  const percent = shares.map((share) => `${share.label} ${share.percent.toFixed(0)}${mainThread(share)}`).join(' | ');
  const perJob = jobs > 0 ? shares.map((share) => `${share.label} ${((1000 * share.seconds) / jobs).toFixed(3)}`).join(' | ') : 'no job';
  return [
    `  cpu, % of one core: ${percent} | machine ${cpu.machinePercent.toFixed(0)} of ${String(cpu.machineCapacityPercent)}, others ${cpu.othersPercent.toFixed(0)}`,
    `  cpu ms per job: ${perJob}`,
  ];
}

interface ThroughputResult {
  figures: RunFigures;
  rssIdleMb: number | undefined;
  rssBusyMb: number | undefined;
}

async function throughput(
  shared: Shared,
  executorCount: number,
  threads: number,
  seconds: number,
  options: { rss?: boolean; warmup?: boolean } = {},
): Promise<ThroughputResult> {
  const label = `${options.warmup === true ? 'warm-up ' : ''}${String(executorCount)} x ${String(threads)}`;
  const run = await startRun(shared, label, executorCount, threads);
  try {
    const [first] = run.executors;
    if (first === undefined) throw new Error('no executor');
    let rssIdleMb: number | undefined;
    let rssStartMb: number | undefined;
    let idle: string | undefined;
    if (options.rss === true) {
      await delay(1000, run.gone);
      rssStartMb = rssMb(first.pid);
      // What a started executor costs with nothing to do.
      const meter = cpuMeter(run.tracked);
      const zkMeter = await zkTrafficMeter(shared.zk, zkClients(run));
      await delay(IDLE_SECONDS * 1000, run.gone);
      rssIdleMb = rssMb(first.pid);
      idle = idleLine(meter.stop(), await zkMeter.stop());
    }
    const peak = options.rss === true ? rssPeak(first.pid) : undefined;
    const primeMs = await primeSlots(run, executorCount * threads);
    const backlog = executorCount * threads + BACKLOG_MARGIN;
    const producer = backlogProducer(run, backlog);
    let begin: CountSample;
    let end: CountSample;
    let cpu: CpuReport;
    let traffic: ZkTraffic;
    let ramp: { ms: number; steady: boolean };
    try {
      ramp = await rampUp(() => successCount(run), run.gone);
      begin = await successCount(run);
      const meter = cpuMeter(run.tracked);
      const zkMeter = await zkTrafficMeter(shared.zk, zkClients(run));
      await delay(seconds * 1000, run.gone);
      cpu = meter.stop();
      traffic = await zkMeter.stop();
      end = await successCount(run);
    } finally {
      await producer.stop();
    }
    await drainAndCheck(run);
    const rssBusyMb = peak?.stop();
    // The jobs that started within the window: with a standing backlog their latency is mostly queueing.
    const lat = latencies(run, await timelines(run), (_id, timeline) => timeline.start >= begin.at && timeline.start <= end.at);
    const sorted = lat.toStart;
    // Completed = SUCCESS in the system of record, counted by the API at both ends of the window: exact,
    // and free of races with the producer (a depth-based count of consumed entries is off by a refill
    // that is in flight). The consume follows each final write by one ZooKeeper round trip, which
    // shifts both ends of the window alike; drainAndCheck then confirms every entry was consumed.
    const completed = end.count - begin.count;
    const jobsPerSec = Math.round((completed * 1000) / (end.at - begin.at));
    const figures: RunFigures = {
      executors: executorCount,
      threads,
      jobsPerSec,
      p50Ms: ms(percentile(sorted, 0.5)),
      p99Ms: ms(percentile(sorted, 0.99)),
      cpuMsPerJob: ms(systemCpuMsPerJob(cpu, completed)),
    };
    log(
      `${label} threads: ${String(jobsPerSec).padStart(5)} jobs/s   enqueue -> action start p50 ${figures.p50Ms.toFixed(1)} ms, p99 ${figures.p99Ms.toFixed(1)} ms` +
        ` (standing backlog of ${String(backlog)}; ${String(sorted.length)} jobs started in the window; ${primeNote(primeMs, executorCount * threads)}, then ramp-up ${rampNote(ramp)})`,
    );
    log(partsLine(lat));
    for (const line of cpuLines(cpu, completed)) log(line);
    log(zkLine(traffic, completed));
    if (rssIdleMb !== undefined && rssBusyMb !== undefined) {
      const atStart = rssStartMb === undefined ? '' : `; 1 s after start ${rssStartMb.toFixed(1)} MB`;
      log(
        `  executor VmRSS: idle ${rssIdleMb.toFixed(1)} MB (no job yet, ${String(IDLE_SECONDS)} s after start${atStart}), busy peak ${rssBusyMb.toFixed(1)} MB`,
      );
    }
    if (idle !== undefined) log(idle);
    return { figures, rssIdleMb, rssBusyMb };
  } finally {
    await run.close();
  }
}

async function paced(shared: Shared): Promise<PacedFigures> {
  const threads = 16;
  const label = `paced 1 x ${String(threads)}`;
  const run = await startRun(shared, label, 1, threads);
  try {
    // The run's fresh processes first go through priming and a ramp-up at full rate, as in the throughput runs.
    const primeMs = await primeSlots(run, threads);
    const producer = backlogProducer(run, threads + BACKLOG_MARGIN);
    let ramp: { ms: number; steady: boolean };
    try {
      ramp = await rampUp(() => successCount(run), run.gone);
    } finally {
      await producer.stop();
    }
    await waitFor(async () => (await run.queue.length()) === 0, {
      timeoutMs: DRAIN_TIMEOUT_MS,
      message: 'the ramp-up jobs to drain',
      signal: run.gone,
    });

    const count = PACED_RATE * PACED_SECONDS;
    const interval = 1000 / PACED_RATE;
    const pacedIds = new Set<string>();
    const meter = cpuMeter(run.tracked);
    const zkMeter = await zkTrafficMeter(shared.zk, zkClients(run));
    const launches: Promise<void>[] = [];
    let worstLagMs = 0;
    const begin = now() + 20;
    for (let i = 0; i < count; i++) {
      const due = begin + i * interval;
      const wait = due - now();
      if (wait > 0) await delay(wait, run.gone, { keepProcessAlive: true });
      worstLagMs = Math.max(worstLagMs, now() - due);
      launches.push(
        (async () => {
          const { id } = await run.client.create(NOOP_JOB);
          pacedIds.add(id);
          run.enqueuedAt.set(id, now());
          await run.queue.put(id);
        })(),
      );
    }
    const lastLaunch = now();
    const outcomes = await Promise.allSettled(launches);
    const failed = outcomes.filter((outcome) => outcome.status === 'rejected');
    if (failed.length > 0) problem(`${label}: ${String(failed.length)} create or put failed, e.g. ${messageOf(failed[0]?.reason)}`);
    await drainAndCheck(run);
    const cpu = meter.stop();
    const traffic = await zkMeter.stop();
    const achieved = ((count - 1) * 1000) / (lastLaunch - begin);
    const lat = latencies(run, await timelines(run), (id) => pacedIds.has(id));
    const sorted = lat.toStart;
    if (sorted.length !== count) problem(`${label}: ${String(count)} jobs launched, ${String(sorted.length)} with a start time`);
    const figures: PacedFigures = {
      jobsPerSec: PACED_RATE,
      p50Ms: ms(percentile(sorted, 0.5)),
      p99Ms: ms(percentile(sorted, 0.99)),
      cpuMsPerJob: ms(systemCpuMsPerJob(cpu, count)),
    };
    log(
      `${label} threads at ${String(PACED_RATE)} jobs/s for ${String(PACED_SECONDS)} s: enqueue -> action start p50 ${figures.p50Ms.toFixed(2)} ms, ` +
        `p99 ${figures.p99Ms.toFixed(2)} ms, max ${ms(sorted.at(-1) ?? Number.NaN).toFixed(2)} ms ` +
        `(launched at ${achieved.toFixed(1)} jobs/s, at most ${worstLagMs.toFixed(1)} ms behind schedule; before: ${primeNote(primeMs, threads)}, full-rate ramp-up ${rampNote(ramp)})`,
    );
    log(partsLine(lat));
    for (const line of cpuLines(cpu, count)) log(line);
    log(zkLine(traffic, count));
    if (Math.abs(achieved - PACED_RATE) > PACED_RATE * 0.05)
      problem(`${label}: the producer launched ${achieved.toFixed(1)} jobs/s, not ${String(PACED_RATE)}`);
    return figures;
  } finally {
    await run.close();
  }
}

function verdict(name: string, value: number | undefined, ok: (value: number) => boolean): string {
  return `${name}: ${value === undefined ? 'not run' : ok(value) ? 'met' : 'NOT met'}`;
}

async function main(): Promise<void> {
  checkBuilt();
  const wanted = (name: string): boolean => only === undefined || only.has(name);
  const actionsDir = await mkdtemp(join(tmpdir(), 'bench-e2e-actions-'));
  try {
    await writeNoopAction(actionsDir, inProcess);
    const zk = await startZooKeeper();
    try {
      const zkClient = await ZkClient.connect({ connectionString: zk.connectionString });
      try {
        const shared: Shared = { zk, zkClient, actionsDir };
        log(
          `ZooKeeper ${zk.connectionString} (forceSync=no), job-api on SQLite and job-executor from dist/, each in its own process, ` +
            `the action ${inProcess ? 'in-process' : 'in worker threads'}; ` +
            `window ${String(windowSeconds)} s after a ramp-up of at least ${String(RAMP_UP.minMs)} ms, until the rate is steady; load average ${loadavg()
              .map((value) => value.toFixed(2))
              .join(' ')}`,
        );
        if (withWarmup) {
          // The ZooKeeper JVM's JIT needs a few thousand requests before its rate settles; not reported.
          const warm = await throughput(shared, 1, 16, WARMUP_SECONDS, { warmup: true });
          log(`  (warm-up: not reported; ${String(warm.figures.jobsPerSec)} jobs/s)`);
        }
        const runs: RunFigures[] = [];
        let rssIdleMb: number | null = null;
        let rssBusyMb: number | null = null;
        for (const [executors, threads] of [
          [1, 16],
          [1, 64],
          [2, 16],
        ] as const) {
          if (!wanted(`${String(executors)}x${String(threads)}`)) continue;
          const result = await throughput(shared, executors, threads, windowSeconds, { rss: executors === 1 && threads === 64 });
          runs.push(result.figures);
          if (result.rssIdleMb !== undefined) rssIdleMb = mb(result.rssIdleMb);
          if (result.rssBusyMb !== undefined) rssBusyMb = mb(result.rssBusyMb);
        }
        const pacedFigures = wanted('paced') ? await paced(shared) : null;
        const big = runs.find((run) => run.executors === 1 && run.threads === 64)?.jobsPerSec;
        log(
          `targets: ${verdict('1 x 64 >= 1,500 jobs/s', big, (v) => v >= 1500)}; ${verdict('paced p50 <= 5 ms', pacedFigures?.p50Ms, (v) => v <= 5)}; ` +
            `${verdict('paced p99 <= 25 ms', pacedFigures?.p99Ms, (v) => v <= 25)}; ${verdict('idle RSS <= 80 MB', rssIdleMb ?? undefined, (v) => v <= 80)}`,
        );
        if (problems.length > 0) log(`${String(problems.length)} PROBLEM(S), see above and stderr`);
        if (json) log(JSON.stringify({ mode: inProcess ? 'inline' : 'thread', runs, paced: pacedFigures, rssIdleMb, rssBusyMb }));
      } finally {
        await zkClient.close();
      }
    } finally {
      await zk.stop();
    }
  } finally {
    await rm(actionsDir, { recursive: true, force: true });
  }
  if (problems.length > 0) {
    process.stderr.write(`\n${String(problems.length)} problem(s):\n${problems.map((p) => `- ${p}`).join('\n')}\n`);
    process.exitCode = 1;
  }
}

await main();
