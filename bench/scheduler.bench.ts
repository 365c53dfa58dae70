/**
 * Scheduler benchmark: what the `job_scheduler` leader costs with a million delayed jobs due over an
 * hour, with `job-distributor job_scheduler` and `job-api serve` (SQLite) from the built JavaScript
 * (dist/), and a private ZooKeeper.
 *
 *   npm run bench:scheduler [-- --jobs 1000000] [-- --seconds 180] [-- --lead 240] [-- --json]
 *
 * The jobs (action bench_noop, no payload) are written straight through the SQLite store, their
 * `not-before` spread evenly over one hour starting --lead seconds after the insert began (1,000,000
 * jobs: one every 3.6 ms, 278 a second). The scheduler then runs; this process plays the executors'
 * part only as far as needed: it takes each entry as it appears (its ZooKeeper ctime is when it was
 * enqueued) and deletes it. Measured over the first --seconds of the hour (default 180; --seconds
 * 3600 runs it all): CPU of the scheduler's leader and of the job API it queries (percent of one
 * core), the leader's peak RSS, and lateness (entry ctime minus not-before) p50/p99/max of the jobs
 * due in the window, with how many arrived, none twice. No executor runs: the figures are the
 * scheduler's and the API's alone.
 *
 * --json prints one JSON object on the last line.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { newJob } from '../src/api/job/lifecycle.js';
import type { JobDocument } from '../src/api/job/document.js';
import { openSqliteStore } from '../src/api/store/sqlite-store.js';
import { startZooKeeper } from '../src/harness/zookeeper-server.js';
import { delay } from '../src/util/delay.js';
import { ZkClient } from '../src/zk/client.js';
import { isZkError } from '../src/zk/errors.js';
import { parseBenchArgs } from './bench-args.js';
import { NOOP_ACTION, checkBuilt, cpuMeter, rssPeak, spawnDistributor, startJobApi } from './e2e-processes.js';

const args = parseBenchArgs(process.argv.slice(2), 180);
const numberFlag = (flag: string, fallback: number): number => {
  const index = process.argv.indexOf(flag);
  if (index === -1) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${flag} needs a positive integer`);
  return value;
};
const JOBS = numberFlag('--jobs', 1_000_000);
const LEAD_SECONDS = numberFlag('--lead', 240);
const HOUR_MS = 3_600_000;
const WINDOW_MS = Math.min(args.seconds * 1000, HOUR_MS);
const INSERT_CHUNK = 5000;
/** Entries still arriving after the window: the last jobs due in it are given this long. */
const DRAIN_MS = 3000;

checkBuilt();
const say = (line: string): void => {
  if (!args.json) process.stdout.write(`${line}\n`);
};

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

const zk = await startZooKeeper();
const dir = await mkdtemp(join(tmpdir(), 'bench-scheduler-'));
const database = join(dir, 'jobs.sqlite');
const queuePath = `/bench-scheduler-${randomUUID()}`;
const cleanups: (() => Promise<unknown>)[] = [async () => zk.stop(), async () => rm(dir, { recursive: true, force: true })];
try {
  // 1. A million delayed jobs, straight into the store.
  const insertStart = Date.now();
  const origin = insertStart + LEAD_SECONDS * 1000;
  const spacing = HOUR_MS / JOBS;
  const dueAt = new Map<string, number>();
  const store = await openSqliteStore(database);
  try {
    for (let start = 0; start < JOBS; start += INSERT_CHUNK) {
      const now = new Date().toISOString();
      const jobs: JobDocument[] = [];
      for (let index = start; index < Math.min(JOBS, start + INSERT_CHUNK); index += 1) {
        const at = Math.round(origin + index * spacing);
        const job = newJob({ action: NOOP_ACTION, 'not-before': new Date(at).toISOString() }, now);
        dueAt.set(job.id, at);
        jobs.push(job);
      }
      await store.createMany(jobs);
    }
  } finally {
    await store.close();
  }
  const insertMs = Date.now() - insertStart;
  say(`inserted ${String(JOBS)} delayed jobs in ${(insertMs / 1000).toFixed(1)} s`);
  if (Date.now() > origin - 10_000) throw new Error(`inserting took ${String(insertMs)} ms, too close to the first due time: raise --lead`);

  // 2. The API, the scheduler, and this process taking entries as they come.
  const api = await startJobApi(database);
  cleanups.unshift(async () => api.daemon.stop());
  const scheduler = spawnDistributor({
    names: ['job_scheduler'],
    zkHosts: zk.connectionString,
    queuePath,
    electionPath: `/bench-scheduler-election-${randomUUID()}`,
    apiUrl: api.baseUrl,
    credentials: api.admin,
  });
  cleanups.unshift(async () => scheduler.stop());
  const zkClient = await ZkClient.connect({ connectionString: zk.connectionString, sessionTimeoutMs: 10_000 });
  cleanups.unshift(async () => zkClient.close());
  const lateness: number[] = [];
  const seen = new Set<string>();
  let duplicates = 0;
  let unknown = 0;
  const taking = new AbortController();
  const entries = `${queuePath}/entries`;
  const take = async (): Promise<void> => {
    while (!taking.signal.aborted) {
      let names: string[] = [];
      try {
        names = await zkClient.getChildren(entries);
      } catch (error) {
        if (!isZkError(error, 'NO_NODE')) throw error;
      }
      for (const name of names) {
        const { data, stat } = await zkClient.getData(`${entries}/${name}`);
        const id = data.toString('utf8');
        const at = dueAt.get(id);
        if (at === undefined) unknown += 1;
        else if (seen.has(id)) duplicates += 1;
        else {
          seen.add(id);
          if (at < origin + WINDOW_MS) lateness.push(stat.ctimeMs - at);
        }
        await zkClient.remove(`${entries}/${name}`);
      }
      if (names.length === 0) await delay(20, taking.signal).catch(() => undefined);
    }
  };
  const taker = take();

  // 3. The window.
  await delay(Math.max(0, origin - Date.now()), undefined, { keepProcessAlive: true });
  say(`measuring the first ${String(WINDOW_MS / 1000)} s of the hour (${String(Math.round(WINDOW_MS / spacing))} jobs due)`);
  const cpu = cpuMeter([
    { label: 'scheduler leader (job-distributor)', pid: scheduler.pid, mainThread: true },
    { label: 'job-api', pid: api.daemon.pid, mainThread: true },
  ]);
  const rss = rssPeak(scheduler.pid, 500);
  await delay(WINDOW_MS, undefined, { keepProcessAlive: true });
  const report = cpu.stop();
  const rssMbPeak = rss.stop();
  await delay(DRAIN_MS, undefined, { keepProcessAlive: true });
  taking.abort();
  await taker;

  const expected = [...dueAt.values()].filter((at) => at < origin + WINDOW_MS).length;
  const sorted = [...lateness].sort((a, b) => a - b);
  const result = {
    jobs: JOBS,
    insertSeconds: insertMs / 1000,
    windowSeconds: WINDOW_MS / 1000,
    dueInWindow: expected,
    arrived: lateness.length,
    duplicates,
    unknown,
    latenessMs: { p50: percentile(sorted, 50), p99: percentile(sorted, 99), max: sorted.at(-1) ?? Number.NaN },
    leaderCpuPercent: report.shares[0]?.percent,
    leaderRssMbPeak: rssMbPeak,
    apiCpuPercent: report.shares[1]?.percent,
    machinePercent: report.machinePercent,
    machineCapacityPercent: report.machineCapacityPercent,
  };
  say(
    `arrived ${String(result.arrived)} of ${String(expected)} due (duplicates ${String(duplicates)}), lateness ms p50 ${String(
      result.latenessMs.p50,
    )} p99 ${String(result.latenessMs.p99)} max ${String(result.latenessMs.max)}`,
  );
  say(
    `scheduler leader: ${(result.leaderCpuPercent ?? Number.NaN).toFixed(1)} % of a core, RSS peak ${rssMbPeak.toFixed(0)} MB; ` +
      `job-api: ${(result.apiCpuPercent ?? Number.NaN).toFixed(1)} % of a core; machine ${report.machinePercent.toFixed(0)} % of ${String(
        report.machineCapacityPercent,
      )} %`,
  );
  if (args.json) process.stdout.write(`${JSON.stringify(result)}\n`);
} finally {
  for (const cleanup of cleanups) await cleanup().catch(() => undefined);
}
