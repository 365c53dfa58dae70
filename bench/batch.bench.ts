/**
 * Batch benchmark (docs/batches.md): what feeding a batch costs against producing the same number of
 * plain jobs, and whether the feeder's memory stays flat however large the batch.
 *
 *   npm run bench:batch [-- --json] [-- --tasks N] [-- --rss-tasks N] [-- --only throughput,rss]
 *
 * Everything on this machine: a private ZooKeeper (forceSync=no); for each run its own `job-api
 * serve` on SQLite, one `job-executor` of 64 threads running a no-op action, and a queue path, all
 * from the built JavaScript (dist/) as production starts them.
 *
 * - plain: --tasks (default 100,000) no-op jobs made as bench:e2e makes them (bulk creates, then
 *   putMany of their ids, keeping a backlog of the executor's threads + 500); jobs/s = tasks over
 *   the time from the first create to the last SUCCESS.
 * - batch: one generator batch (the bundled `range`) of as many no-op tasks, fed by `job-distributor
 *   batch_feeder` (batch-size 500, max-in-flight 1,000); tasks/s = tasks over the time from the
 *   batch's create to its SUCCESS (every task ended, counted by the API). Goal: >= 90 % of plain.
 * - rss: the feeder's VmRSS (/proc/<pid>/status) while it feeds a generator batch of --rss-tasks
 *   (default 1,000,000) no-op tasks, read when the batch's `sent` first reaches 100,000 and when it
 *   reaches the total, with its peak. Tasks are made trivially short (the no-op action) and run by
 *   the same 1 x 64 executor, so the feeder is held to what the executor completes, as in production
 *   (max-in-flight): at this machine's ~1.5k tasks/s, 1,000,000 take about ten minutes.
 *
 * Each run first primes the executor's 64 worker threads (two plain jobs per slot, awaited), so
 * neither side pays for thread starts. --json prints
 * `{"batchTasksPerSec":N,"plainJobsPerSec":N,"feederRssMb":{"at100k":N,"at1M":N}}` on the last line
 * (null for runs left out). A task or job not SUCCESS, or an error logged, is a PROBLEM (exit code 1).
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobApiClient } from '../src/api/client/index.js';
import type { NewJob } from '../src/api/client/inputs.js';
import type { JobDocument } from '../src/api/job/document.js';
import { startZooKeeper, type ZooKeeperServer } from '../src/harness/zookeeper-server.js';
import { waitFor } from '../src/harness/wait-for.js';
import { LockingQueue } from '../src/recipes/locking-queue.js';
import { delay } from '../src/util/delay.js';
import { messageOf } from '../src/util/errors.js';
import { ZkClient } from '../src/zk/client.js';
import { removeTree } from '../test/fixtures/zk-cleanup.js';
import { parseBenchArgs } from './bench-args.js';
import {
  NOOP_ACTION,
  checkBuilt,
  rssMb,
  rssPeak,
  spawnDistributor,
  spawnExecutor,
  startJobApi,
  writeNoopAction,
  type Daemon,
  type JobApiProcess,
} from './e2e-processes.js';

const THREADS = 64;
const PRIME_PER_SLOT = 2;
const BACKLOG = THREADS + 500;
const REFILL_MIN = 200;
const BATCH_SIZE = 500;
const MAX_IN_FLIGHT = 1000;
const RSS_FIRST_MARK = 100_000;
const READY_TIMEOUT_MS = 30_000;
const NOOP_JOB: NewJob = { action: NOOP_ACTION };

const argv = process.argv.slice(2);
const { json, only } = parseBenchArgs(argv, 1);
const countArg = (flag: string, fallback: number): number => {
  const index = argv.indexOf(flag);
  if (index === -1) return fallback;
  const value = Number(argv[index + 1]);
  if (!Number.isSafeInteger(value) || value < 1) throw new Error(`${flag} needs a whole number of tasks, got ${String(argv[index + 1])}`);
  return value;
};
const TASKS = countArg('--tasks', 100_000);
const RSS_TASKS = countArg('--rss-tasks', 1_000_000);

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};
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

/** One run's job-api and database, queue path, executor, and the feeder when it has one. */
interface Run {
  readonly api: JobApiProcess;
  readonly client: JobApiClient;
  readonly queue: LockingQueue;
  readonly feeder: Daemon | undefined;
  readonly gone: AbortSignal;
  close(): Promise<void>;
}

async function startRun(shared: Shared, label: string, withFeeder: boolean): Promise<Run> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-batch-'));
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
    undo.push(() => stopAndCheck(label, api.daemon));
    const client = await JobApiClient.create({ baseUrl: api.baseUrl, credentials: api.admin, compatibility: 'engine' });
    undo.push(() => client.close());
    const queuePath = `/bench-batch-${randomUUID()}`;
    const electionPath = `/bench-batch-election-${randomUUID()}`;
    const queue = new LockingQueue(shared.zkClient, { path: queuePath });
    undo.push(() => removeTree(shared.zkClient, electionPath));
    undo.push(() => removeTree(shared.zkClient, queuePath));
    undo.push(() => queue.close());
    const executor = spawnExecutor({
      zkHosts: shared.zk.connectionString,
      queuePath,
      apiUrl: api.baseUrl,
      credentials: api.executor,
      threads: THREADS,
      actionsDir: shared.actionsDir,
    });
    undo.push(() => stopAndCheck(label, executor));
    const feederErrors: string[] = [];
    const feeder = withFeeder
      ? spawnDistributor(
          {
            names: ['batch_feeder'],
            zkHosts: shared.zk.connectionString,
            queuePath,
            electionPath,
            apiUrl: api.baseUrl,
            credentials: api.admin,
          },
          (line) => {
            if (/^\S+ error /.test(line) && feederErrors.length < 10) feederErrors.push(line);
          },
        )
      : undefined;
    if (feeder !== undefined) {
      undo.push(async () => {
        await stopAndCheck(label, feeder, false);
        if (feederErrors.length > 0) problem(`${label}: the feeder logged errors:\n  ${feederErrors.join('\n  ')}`);
      });
    }
    const gone = AbortSignal.any([api.daemon.gone, executor.gone, ...(feeder === undefined ? [] : [feeder.gone])]);
    await waitFor(
      async () =>
        (await shared.zkClient.getChildren(`${queuePath}/consumers`).then(
          (names) => names.length,
          () => 0,
        )) >= 1,
      { timeoutMs: READY_TIMEOUT_MS, message: 'the executor taking', signal: gone },
    );
    return { api, client, queue, feeder, gone, close: unwind };
  } catch (error) {
    await unwind();
    throw error;
  }
}

/** SIGTERM, awaited; an unclean exit and error lines are problems (the feeder logs at info: its errors are caught by line). */
async function stopAndCheck(label: string, daemon: Daemon, linesAreWarnings = true): Promise<void> {
  const exit = await daemon.stop();
  if (exit.code !== 0)
    problem(`${label}: ${daemon.name} ${String(daemon.pid)} exited with code ${String(exit.code)}, signal ${String(exit.signal)}`);
  if (!linesAreWarnings) return;
  const errors = daemon.lines.filter((line) => / error /.test(line));
  if (errors.length > 0) problem(`${label}: ${daemon.name} logged errors:\n  ${errors.slice(0, 10).join('\n  ')}`);
}

async function createAndEnqueue(run: Run, count: number): Promise<void> {
  const created = await run.client.createMany(Array.from({ length: count }, () => NOOP_JOB));
  await run.queue.putMany(created.map(({ id }) => ({ jobId: id })));
}

/** Every slot's worker thread started: two jobs per slot, awaited. */
async function prime(run: Run): Promise<void> {
  await createAndEnqueue(run, THREADS * PRIME_PER_SLOT);
  await waitFor(async () => (await run.client.count("state='SUCCESS'")) >= THREADS * PRIME_PER_SLOT || undefined, {
    timeoutMs: 120_000,
    intervalMs: 50,
    message: 'the priming jobs to complete',
    signal: run.gone,
  });
}

async function plain(shared: Shared): Promise<number> {
  const label = `plain jobs 1 x ${String(THREADS)}`;
  const run = await startRun(shared, label, false);
  try {
    await prime(run);
    const before = await run.client.count("state='SUCCESS'");
    const started = performance.now();
    let created = 0;
    while (created < TASKS) {
      const missing = Math.min(TASKS - created, BACKLOG - (await run.queue.length()));
      if (missing >= Math.min(REFILL_MIN, TASKS - created)) {
        await createAndEnqueue(run, missing);
        created += missing;
      } else await delay(5, run.gone);
    }
    await waitFor(async () => (await run.client.count("state='SUCCESS'")) - before >= TASKS || undefined, {
      timeoutMs: 30 * 60_000,
      intervalMs: 50,
      message: `${String(TASKS)} plain jobs to succeed`,
      signal: run.gone,
    });
    const seconds = (performance.now() - started) / 1000;
    const rate = Math.round(TASKS / seconds);
    log(
      `${label}: ${String(TASKS)} jobs in ${seconds.toFixed(1)} s = ${String(rate)} jobs/s (bulk creates + putMany, backlog ${String(BACKLOG)})`,
    );
    const other = await run.client.count("state!='SUCCESS'");
    if (other > 0) problem(`${label}: ${String(other)} jobs not SUCCESS`);
    return rate;
  } finally {
    await run.close();
  }
}

async function createBatch(run: Run, count: number): Promise<string> {
  return run.client.createBatch({
    action: NOOP_ACTION,
    generator: 'range',
    args: { count },
    'batch-size': BATCH_SIZE,
    'max-in-flight': MAX_IN_FLIGHT,
  });
}

async function batchDone(run: Run, id: string, onSample?: (job: JobDocument) => void): Promise<JobDocument> {
  return waitFor(
    async () => {
      const { job } = await run.client.get(id);
      onSample?.(job);
      return job.state === 'RUNNING' ? undefined : job;
    },
    { timeoutMs: 60 * 60_000, intervalMs: 50, message: `batch ${id} to end`, signal: run.gone },
  );
}

function checkBatch(label: string, job: JobDocument, count: number): void {
  if (job.state !== 'SUCCESS' || job.batch?.succeeded !== count) {
    problem(`${label}: the batch ended ${job.state} (${job['status-message'] ?? ''}): ${JSON.stringify(job.batch)}`);
  }
}

async function batch(shared: Shared): Promise<number> {
  const label = `batch 1 x ${String(THREADS)}`;
  const run = await startRun(shared, label, true);
  try {
    await prime(run);
    const started = performance.now();
    const id = await createBatch(run, TASKS);
    const done = await batchDone(run, id);
    const seconds = (performance.now() - started) / 1000;
    checkBatch(label, done, TASKS);
    const rate = Math.round(TASKS / seconds);
    log(
      `${label}: ${String(TASKS)} tasks in ${seconds.toFixed(1)} s = ${String(rate)} tasks/s ` +
        `(generator range, batch-size ${String(BATCH_SIZE)}, max-in-flight ${String(MAX_IN_FLIGHT)})`,
    );
    return rate;
  } finally {
    await run.close();
  }
}

interface FeederRss {
  at100k: number | null;
  at1M: number | null;
  peak: number;
}

async function feederRss(shared: Shared): Promise<FeederRss> {
  const label = `feeder RSS, ${String(RSS_TASKS)} tasks`;
  const run = await startRun(shared, label, true);
  try {
    const feeder = run.feeder;
    if (feeder === undefined) throw new Error('no feeder');
    await prime(run);
    const peak = rssPeak(feeder.pid, 200);
    const started = performance.now();
    const id = await createBatch(run, RSS_TASKS);
    let first: number | undefined;
    let last: number | undefined;
    let lastSent = 0;
    const done = await batchDone(run, id, (job) => {
      const sent = job.batch?.sent ?? 0;
      if (first === undefined && sent >= Math.min(RSS_FIRST_MARK, RSS_TASKS)) first = rssMb(feeder.pid);
      if (last === undefined && sent >= RSS_TASKS) last = rssMb(feeder.pid);
      if (Math.floor(sent / 100_000) > Math.floor(lastSent / 100_000)) {
        log(
          `  ${String(sent)} sent, feeder VmRSS ${(rssMb(feeder.pid) ?? 0).toFixed(1)} MB, ${((performance.now() - started) / 1000).toFixed(0)} s`,
        );
      }
      lastSent = sent;
    });
    checkBatch(label, done, RSS_TASKS);
    const peakMb = peak.stop();
    const mb = (value: number | undefined): number | null => (value === undefined ? null : Math.round(value * 10) / 10);
    const result = { at100k: mb(first), at1M: mb(last), peak: mb(peakMb) ?? 0 };
    log(
      `${label}: feeder VmRSS at ${String(Math.min(RSS_FIRST_MARK, RSS_TASKS))} sent ${String(result.at100k)} MB, at ${String(RSS_TASKS)} sent ` +
        `${String(result.at1M)} MB, peak ${String(result.peak)} MB (${((performance.now() - started) / 1000).toFixed(0)} s)`,
    );
    return result;
  } finally {
    await run.close();
  }
}

async function main(): Promise<void> {
  checkBuilt();
  const wanted = (name: string): boolean => only === undefined || only.has(name);
  const actionsDir = await mkdtemp(join(tmpdir(), 'bench-batch-actions-'));
  try {
    await writeNoopAction(actionsDir);
    const zk = await startZooKeeper();
    try {
      const zkClient = await ZkClient.connect({ connectionString: zk.connectionString });
      try {
        const shared: Shared = { zk, zkClient, actionsDir };
        log(
          `ZooKeeper ${zk.connectionString} (forceSync=no), job-api on SQLite, job-executor 1 x ${String(THREADS)} and job-distributor from dist/; ` +
            `${String(TASKS)} tasks, ${String(RSS_TASKS)} for the RSS; load average ${loadavg()
              .map((value) => value.toFixed(2))
              .join(' ')}`,
        );
        const plainRate = wanted('throughput') ? await plain(shared) : null;
        const batchRate = wanted('throughput') ? await batch(shared) : null;
        if (plainRate !== null && batchRate !== null) {
          const share = (100 * batchRate) / plainRate;
          log(`batch / plain: ${share.toFixed(0)} % (goal >= 90 %: ${share >= 90 ? 'met' : 'NOT met'})`);
        }
        const rss = wanted('rss') ? await feederRss(shared) : null;
        if (problems.length > 0) log(`${String(problems.length)} PROBLEM(S), see above and stderr`);
        if (json) {
          log(
            JSON.stringify({
              batchTasksPerSec: batchRate,
              plainJobsPerSec: plainRate,
              feederRssMb: rss === null ? null : { at100k: rss.at100k, at1M: rss.at1M },
            }),
          );
        }
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
