/**
 * `npm run bench:scale`: a million waiting jobs. The jobs are bulk-created parked (as producers park
 * what finds the queue's window full) on SQLite, then on PostgreSQL; the queue feeder fills the
 * window, one executor drains it, and the benchmark reads:
 *  - the first take's latency of a fresh consumer with the window full (the listing it waits for);
 *  - jobs/s with 1,000,000 waiting, then with 100,000 and 1,000 left (the backlog shrunk between the
 *    phases by deleting parked jobs: the engine does not care how it shrank), against the rate with
 *    the same full window and nothing parked behind it (the small backlog);
 *  - ZooKeeper's RSS (its heap is the local default, 512 MB) and whether it survived; the largest
 *    queue seen; the feeder's RSS at the start and the end; the API's and the database's CPU.
 * `--jobs N` (default 1,000,000), `--stores sqlite,postgres`, `--seconds S` per measured phase
 * (default 15), `--json` for one object on the last line.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobApiClient } from '../src/api/client/index.js';
import { openBackends } from '../src/api/backends.js';
import { newJob } from '../src/api/job/lifecycle.js';
import { fourLetterWord } from '../src/harness/four-letter-word.js';
import { startPostgres, type PostgresServer } from '../src/harness/postgres-server.js';
import { startZooKeeper } from '../src/harness/zookeeper-server.js';
import { LockingQueue } from '../src/recipes/locking-queue.js';
import { queuePaths } from '../src/recipes/queue-layout.js';
import { ZkClient } from '../src/zk/client.js';
import { parseBenchArgs } from './bench-args.js';
import {
  NOOP_ACTION,
  checkBuilt,
  cpuMeter,
  rssMb,
  spawnDistributor,
  spawnExecutor,
  startJobApi,
  writeNoopAction,
  type Daemon,
} from './e2e-processes.js';
import { now, round2 } from './rate.js';

const args = parseBenchArgs(process.argv.slice(2), 15);
const jobsArg = process.argv[process.argv.indexOf('--jobs') + 1];
const TOTAL = process.argv.includes('--jobs') ? Number(jobsArg) : 1_000_000;
if (!Number.isInteger(TOTAL) || TOTAL < 10_000) throw new Error(`--jobs needs an integer of at least 10,000, got ${String(jobsArg)}`);
const storesArg = process.argv[process.argv.indexOf('--stores') + 1];
const STORES = (process.argv.includes('--stores') ? (storesArg ?? '') : 'sqlite,postgres').split(',');
const THREADS = 16;
const INSERT_CHUNK = 5000;
const say = (line: string): void => {
  if (!args.json) console.log(line);
};

interface ScaleRun {
  readonly backlog: number;
  readonly store: string;
  readonly firstTakeMs: number;
  readonly jobsPerSecAtBacklog: number;
  readonly jobsPerSec100k: number;
  readonly jobsPerSec1k: number;
  readonly jobsPerSecSmallBacklog: number;
  readonly zkSurvived: boolean;
  readonly zkRssMb: number;
  readonly maxEntries: number;
  readonly feederRssMb: { readonly start: number; readonly afterFirstWindow: number; readonly end: number };
  readonly apiCpuPercent: number;
  readonly databaseCpuPercent: number | null;
  readonly insertSeconds: number;
}

/** Jobs created parked, straight through the store, in creation order. */
async function insertParked(database: string, count: number): Promise<number> {
  const started = now();
  const backends = await openBackends(database);
  try {
    for (let done = 0; done < count; done += INSERT_CHUNK) {
      const at = new Date().toISOString();
      const chunk = Array.from({ length: Math.min(INSERT_CHUNK, count - done) }, () => newJob({ action: NOOP_ACTION, parked: true }, at));
      await backends.jobs.createMany(chunk);
    }
  } finally {
    await backends.close();
  }
  return (now() - started) / 1000;
}

/** Successes per second over `seconds`. */
async function rateOver(client: JobApiClient, seconds: number): Promise<number> {
  const before = await client.count("state='SUCCESS'");
  const start = now();
  await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
  const after = await client.count("state='SUCCESS'");
  return (after - before) / ((now() - start) / 1000);
}

/** Deletes parked jobs from the end of the feed order until `left` parked remain. */
async function shrinkParked(client: JobApiClient, left: number): Promise<void> {
  const parked = await client.count("waiting='room'");
  if (parked <= left) return;
  if (left === 0) {
    await client.deleteMatching("waiting='room'");
    return;
  }
  const page = await client.search({ filter: "waiting='room'", orderby: 'created:asc', first: left, last: left, select: ['created'] });
  const boundary = page.jobs[0]?.created;
  if (boundary === undefined) return;
  await client.deleteMatching(`waiting='room' and created>'${boundary}'`);
}

/** utime + stime (+ the waited-for children's) of a process, in seconds; undefined once it is gone. */
function processSeconds(pid: number, withChildren: boolean): number | undefined {
  try {
    const stat = readFileSync(`/proc/${String(pid)}/stat`, 'utf8');
    // After the command name's last ')': state is field 3, utime 14, stime 15, cutime 16, cstime 17.
    const fields = stat
      .slice(stat.lastIndexOf(')') + 2)
      .split(' ')
      .map(Number);
    const own = (fields[11] ?? 0) + (fields[12] ?? 0);
    return (withChildren ? own + (fields[13] ?? 0) + (fields[14] ?? 0) : own) / 100;
  } catch {
    return undefined;
  }
}

function childrenOf(parent: number): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) === parent) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/**
 * PostgreSQL's CPU: the postmaster, its backends (its children) and those that exited meanwhile (its
 * children's time, counted when it reaped them), as percent of one core between start and stop.
 */
function databaseCpuMeter(postmaster: number): { stop(): number } {
  const started = now();
  const before = new Map(childrenOf(postmaster).map((pid) => [pid, processSeconds(pid, false) ?? 0]));
  const postmasterBefore = processSeconds(postmaster, true) ?? 0;
  return {
    stop: () => {
      let seconds = (processSeconds(postmaster, true) ?? 0) - postmasterBefore;
      for (const pid of childrenOf(postmaster)) seconds += (processSeconds(pid, false) ?? 0) - (before.get(pid) ?? 0);
      return (100 * seconds) / ((now() - started) / 1000);
    },
  };
}

async function runStore(store: string): Promise<ScaleRun> {
  const dir = await mkdtemp(join(tmpdir(), 'bench-scale-'));
  const zk = await startZooKeeper();
  let postgres: PostgresServer | undefined;
  const daemons: Daemon[] = [];
  let zkClient: ZkClient | undefined;
  try {
    await writeNoopAction(dir);
    let database = join(dir, 'jobs.db');
    if (store === 'postgres') {
      postgres = await startPostgres();
      database = await postgres.createDatabase(`scale_${String(process.pid)}`);
    }
    const api = await startJobApi(database);
    daemons.push(api.daemon);
    const client = await JobApiClient.create({ baseUrl: api.baseUrl, credentials: api.admin, compatibility: 'engine' });
    const queuePath = `/bench-scale-${randomUUID()}`;
    const common = { zkHosts: zk.connectionString, queuePath, apiUrl: api.baseUrl, credentials: api.admin };
    zkClient = await ZkClient.connect({ connectionString: zk.connectionString, sessionTimeoutMs: 10_000 });
    const entriesPath = queuePaths(queuePath).entries;
    let maxEntries = 0;
    const sampling = setInterval(() => {
      void zkClient?.exists(entriesPath).then(
        (stat) => {
          maxEntries = Math.max(maxEntries, stat?.numChildren ?? 0);
        },
        () => undefined,
      );
    }, 50);
    try {
      // The small backlog first: a full window and nothing parked behind it, on a queue of its own.
      say(`[${store}] small backlog: ${String(20_000)} jobs, the window, nothing parked`);
      await insertParked(database, 20_000);
      const smallQueue = { ...common, queuePath: `${queuePath}-small` };
      const smallFeeder = spawnDistributor({
        ...smallQueue,
        names: ['queue_feeder'],
        electionPath: `/bench-scale-election-${randomUUID()}`,
      });
      await untilCount(client, "state='QUEUED' and waiting='room'", 0);
      const smallExecutor = spawnExecutor({ ...smallQueue, threads: THREADS, actionsDir: dir });
      daemons.push(smallFeeder, smallExecutor);
      await untilCount(client, "state='SUCCESS'", 2000, 'at least');
      const small = await rateOver(client, Math.min(args.seconds, 10));
      await smallExecutor.stop();
      await smallFeeder.stop();
      await client.deleteMatching("created>'2000-01-01T00:00:00Z'");
      say(`[${store}] small backlog: ${round2(small)} jobs/s`);

      say(`[${store}] creating ${TOTAL.toLocaleString('en')} parked jobs`);
      const insertSeconds = await insertParked(database, TOTAL);
      say(`[${store}] created in ${round2(insertSeconds)} s; the feeder fills the window`);
      const feeder = spawnDistributor({ ...common, names: ['queue_feeder'], electionPath: `/bench-scale-election-${randomUUID()}` });
      daemons.push(feeder);
      const feederStart = await waitForRss(feeder.pid);
      await untilAtLeast(async () => (await zkClient?.exists(entriesPath))?.numChildren ?? 0, 20_000);
      // A fresh consumer's first take, the window full: the listing it must read first.
      const probe = new LockingQueue(zkClient, { path: queuePath });
      const takeStart = now();
      const item = await probe.take();
      const firstTakeMs = now() - takeStart;
      await probe.release(item);
      await probe.close();
      say(`[${store}] first take with the window full: ${round2(firstTakeMs)} ms`);

      const meter = cpuMeter([{ label: 'job-api', pid: api.daemon.pid }]);
      const databaseMeter = postgres === undefined ? undefined : databaseCpuMeter(postgres.pid);
      // The feeder has fed its first window: its RSS from here on is what a long backlog costs it.
      const feederFed = rssMb(feeder.pid) ?? Number.NaN;
      const drain = spawnExecutor({ ...common, threads: THREADS, actionsDir: dir });
      daemons.push(drain);
      await untilCount(client, "state='SUCCESS'", 2000, 'at least');
      const atBacklog = await rateOver(client, args.seconds);
      say(`[${store}] ${TOTAL.toLocaleString('en')} waiting: ${round2(atBacklog)} jobs/s`);
      await shrinkParked(client, 100_000);
      const at100k = await rateOver(client, args.seconds);
      say(`[${store}] 100,000 waiting: ${round2(at100k)} jobs/s`);
      await shrinkParked(client, 0);
      await untilAtMost(() => client.count("state='QUEUED'"), 2000);
      const at1k = await rateOver(client, Math.min(args.seconds, 2));
      say(`[${store}] about 1,000 waiting: ${round2(at1k)} jobs/s`);
      const cpu = meter.stop();
      const apiShare = cpu.shares.find((share) => share.label === 'job-api');
      const dbPercent = databaseMeter?.stop();
      const zkAlive = (await fourLetterWord(zk.host, zk.port, 'ruok').catch(() => '')) === 'imok';
      return {
        backlog: TOTAL,
        store,
        firstTakeMs: round2(firstTakeMs),
        jobsPerSecAtBacklog: round2(atBacklog),
        jobsPerSec100k: round2(at100k),
        jobsPerSec1k: round2(at1k),
        jobsPerSecSmallBacklog: round2(small),
        zkSurvived: zkAlive,
        zkRssMb: round2(rssMb(zk.pid) ?? Number.NaN),
        maxEntries,
        feederRssMb: { start: round2(feederStart), afterFirstWindow: round2(feederFed), end: round2(rssMb(feeder.pid) ?? Number.NaN) },
        apiCpuPercent: round2(apiShare?.percent ?? Number.NaN),
        databaseCpuPercent: dbPercent === undefined ? null : round2(dbPercent),
        insertSeconds: round2(insertSeconds),
      };
    } finally {
      clearInterval(sampling);
    }
  } finally {
    for (const daemon of daemons.reverse()) await daemon.stop().catch(() => undefined);
    await zkClient?.close();
    await zk.stop();
    await postgres?.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function waitForRss(pid: number): Promise<number> {
  await new Promise((resolve) => setTimeout(resolve, 2000));
  return rssMb(pid) ?? Number.NaN;
}

async function untilAtLeast(read: () => Promise<number>, target: number): Promise<void> {
  const deadline = Date.now() + 600_000;
  while ((await read()) < target) {
    if (Date.now() > deadline) throw new Error(`still under ${String(target)} after 10 minutes`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function untilAtMost(read: () => Promise<number>, target: number): Promise<void> {
  const deadline = Date.now() + 600_000;
  while ((await read()) > target) {
    if (Date.now() > deadline) throw new Error(`still over ${String(target)} after 10 minutes`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

async function untilCount(client: JobApiClient, filter: string, target: number, how: 'exactly' | 'at least' = 'exactly'): Promise<void> {
  if (how === 'at least') return untilAtLeast(() => client.count(filter), target);
  return untilAtMost(() => client.count(filter), target);
}

checkBuilt();
const runs: ScaleRun[] = [];
for (const store of STORES) {
  if (store !== 'sqlite' && store !== 'postgres') throw new Error(`--stores takes sqlite and postgres, got ${store}`);
  runs.push(await runStore(store));
}
if (args.json) console.log(JSON.stringify({ runs }));
else
  console.table(
    runs.map(({ feederRssMb, ...run }) => ({
      ...run,
      feederRssStart: feederRssMb.start,
      feederRssFed: feederRssMb.afterFirstWindow,
      feederRssEnd: feederRssMb.end,
    })),
  );
