/**
 * Distributor benchmark: what a distribution costs and how fast a standby takes over, with
 * `job-distributor` processes started from the built JavaScript (dist/), a private ZooKeeper and
 * `job-api serve` on SQLite in its own process.
 *
 *   npm run bench:distributor [-- --json] [-- --targets N] [-- --trials N]
 *
 * - fan-out: one tick creating a job for each of N targets (default 10,000): persisted in bulk with
 *   their idempotency keys, then enqueued; the tick's own duration as the distributor logs it, checked
 *   against the API's count and the queue's length. Then the same tick again from a new leader (the
 *   made-up tick of a takeover): every job already exists, nothing is created or enqueued twice.
 * - failover: two distributors for one distribution; the leader is killed (SIGKILL) and the time until
 *   the standby leads is measured, --trials times (default 3), at the default session timeout (10 s);
 *   and once with SIGTERM (the leader resigns).
 * - idle: VmRSS of a distributor running the bundled defaults (cleanup_jobs, queue_reconciler) 15 s
 *   and 30 s after it started (V8 shrinks an idle heap in between).
 *
 * --json prints one JSON object on the last line.
 */
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobApiClient } from '../src/api/client/index.js';
import { startZooKeeper } from '../src/harness/zookeeper-server.js';
import { LockingQueue } from '../src/recipes/locking-queue.js';
import { delay } from '../src/util/delay.js';
import { ZkClient } from '../src/zk/client.js';
import { parseBenchArgs } from './bench-args.js';
import {
  checkBuilt,
  rssMb,
  spawnDistributor,
  startJobApi,
  writeFanOutDistribution,
  type Daemon,
  type DistributorSettings,
} from './e2e-processes.js';

const args = parseBenchArgs(process.argv.slice(2), 1);
const numberFlag = (flag: string, fallback: number): number => {
  const index = process.argv.indexOf(flag);
  if (index === -1) return fallback;
  const value = Number(process.argv[index + 1]);
  if (!Number.isInteger(value) || value < 1) throw new Error(`${flag} needs a positive integer`);
  return value;
};
const TARGETS = numberFlag('--targets', 10_000);
const TRIALS = numberFlag('--trials', 3);
const FAN_OUT = 'bench_fan_out';
/** V8's memory reducer shrinks an idle heap about 17 s after start: both sides of it are reported. */
const IDLE_SAMPLES_MS = [15_000, 30_000] as const;

checkBuilt();
const say = (line: string): void => {
  if (!args.json) process.stdout.write(`${line}\n`);
};

/** A distributor whose log lines can be awaited. */
interface Watched {
  readonly daemon: Daemon;
  /** Resolves with the first line matching `pattern` from now on, and the moment it arrived. */
  next(pattern: RegExp, timeoutMs?: number): Promise<{ line: string; at: number }>;
}

function watch(settings: DistributorSettings): Watched {
  const waiters = new Set<{ pattern: RegExp; resolve: (hit: { line: string; at: number }) => void }>();
  const daemon = spawnDistributor(settings, (line) => {
    for (const waiter of waiters) {
      if (waiter.pattern.test(line)) {
        waiters.delete(waiter);
        waiter.resolve({ line, at: performance.now() });
      }
    }
  });
  return {
    daemon,
    next: (pattern, timeoutMs = 120_000) =>
      new Promise((resolve, reject) => {
        const finish = (): void => {
          clearTimeout(timer);
          waiters.delete(waiter);
          daemon.gone.removeEventListener('abort', onGone);
        };
        const onGone = (): void => {
          finish();
          reject(daemon.gone.reason instanceof Error ? daemon.gone.reason : new Error(`${daemon.name} exited`));
        };
        const timer = setTimeout(() => {
          finish();
          reject(new Error(`${daemon.name} ${String(daemon.pid)} did not log ${String(pattern)} within ${String(timeoutMs)} ms`));
        }, timeoutMs);
        const waiter = {
          pattern,
          resolve: (hit: { line: string; at: number }) => {
            finish();
            resolve(hit);
          },
        };
        waiters.add(waiter);
        daemon.gone.addEventListener('abort', onGone, { once: true });
      }),
  };
}

function tickFigures(line: string): { created: number; existing: number; durationMs: number } {
  const json = line.slice(line.indexOf('{'));
  const parsed = JSON.parse(json) as { created?: unknown; existing?: unknown; durationMs?: unknown };
  const number = (value: unknown): number => (typeof value === 'number' ? value : Number.NaN);
  return { created: number(parsed.created), existing: number(parsed.existing), durationMs: number(parsed.durationMs) };
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? (sorted[middle] ?? Number.NaN) : ((sorted[middle - 1] ?? 0) + (sorted[middle] ?? 0)) / 2;
};

const dir = await mkdtemp(join(tmpdir(), 'bench-distributor-'));
const zk = await startZooKeeper();
const api = await startJobApi(join(dir, 'jobs.sqlite'));
const client = await JobApiClient.create({ baseUrl: api.baseUrl, credentials: api.admin, compatibility: 'engine' });
const zkClient = await ZkClient.connect({ connectionString: zk.connectionString, sessionTimeoutMs: 10_000 });
const running: Daemon[] = [];
const base = (): Omit<DistributorSettings, 'names'> => ({
  zkHosts: zk.connectionString,
  queuePath: `/bench-${randomUUID()}`,
  electionPath: `/bench-election-${randomUUID()}`,
  apiUrl: api.baseUrl,
  credentials: api.executor,
  distributorsDir: dir,
});
const start = (settings: DistributorSettings): Watched => {
  const watched = watch(settings);
  running.push(watched.daemon);
  return watched;
};

try {
  // Fan-out: one tick of TARGETS jobs, then the same tick replayed by a new leader.
  await writeFanOutDistribution(dir, FAN_OUT, 'bench_noop', TARGETS);
  const fanOutSettings = { ...base(), names: [FAN_OUT] };
  const first = start(fanOutSettings);
  const firstTick = tickFigures((await first.next(/tick done/)).line);
  await first.daemon.stop();
  const queue = new LockingQueue(zkClient, { path: fanOutSettings.queuePath });
  const jobs = await client.count("action='bench_noop'");
  const entries = await queue.length();
  const replay = start(fanOutSettings);
  const replayTick = tickFigures((await replay.next(/tick done/)).line);
  await replay.daemon.stop();
  const entriesAfterReplay = await queue.length();
  await queue.close();
  say(
    `fan-out tick of ${String(TARGETS)} targets: ${String(firstTick.created)} created in ${String(firstTick.durationMs)} ms ` +
      `(${Math.round((firstTick.created / firstTick.durationMs) * 1000).toLocaleString('en')} jobs/s); API holds ${String(jobs)}, queue ${String(entries)} entries`,
  );
  say(
    `same tick from a new leader: ${String(replayTick.existing)} already there, ${String(replayTick.created)} created, in ${String(replayTick.durationMs)} ms; queue still ${String(entriesAfterReplay)}`,
  );

  // Failover at the default session timeout: how long from the leader's end until the standby leads.
  const failover = async (end: (leader: Daemon) => Promise<unknown>): Promise<number> => {
    const settings = { ...base(), names: ['queue_reconciler'] };
    const leader = start(settings);
    await leader.next(/distribution leading/);
    const standby = start(settings);
    await standby.next(/distribution campaigning/);
    const leads = standby.next(/distribution leading/, 60_000);
    const endedAt = performance.now();
    void end(leader.daemon);
    const took = (await leads).at - endedAt;
    await Promise.all([leader.daemon.stop(), standby.daemon.stop()]);
    return took;
  };
  const killed: number[] = [];
  for (let trial = 0; trial < TRIALS; trial++) {
    killed.push(
      await failover(async (leader) => {
        process.kill(leader.pid, 'SIGKILL');
        await leader.exited;
      }),
    );
  }
  const graceful = await failover((leader) => leader.stop());
  say(
    `failover after kill -9 (session timeout 10 s), ${String(TRIALS)} trials: median ${(median(killed) / 1000).toFixed(2)} s, max ${(Math.max(...killed) / 1000).toFixed(2)} s`,
  );
  say(`failover after SIGTERM (the leader resigns): ${graceful.toFixed(0)} ms`);

  // Idle memory of a distributor running the bundled defaults.
  const idle = start({ ...base(), names: ['cleanup_jobs', 'queue_reconciler'] });
  await idle.next(/distributor started/);
  const startedAt = performance.now();
  const idleRss: number[] = [];
  for (const at of IDLE_SAMPLES_MS) {
    await delay(Math.max(0, at - (performance.now() - startedAt)));
    idleRss.push(rssMb(idle.daemon.pid) ?? Number.NaN);
  }
  await idle.daemon.stop();
  say(
    `idle distributor (cleanup_jobs, queue_reconciler) VmRSS: ${IDLE_SAMPLES_MS.map((at, i) => `${(idleRss[i] ?? Number.NaN).toFixed(1)} MB after ${String(at / 1000)} s`).join(', ')}`,
  );

  if (args.json) {
    process.stdout.write(
      `${JSON.stringify({
        fanOut: { targets: TARGETS, created: firstTick.created, tickMs: firstTick.durationMs, apiJobs: jobs, queueEntries: entries },
        replay: {
          existing: replayTick.existing,
          created: replayTick.created,
          tickMs: replayTick.durationMs,
          queueEntries: entriesAfterReplay,
        },
        failover: { killMs: killed.map(Math.round), medianKillMs: Math.round(median(killed)), gracefulMs: Math.round(graceful) },
        idleRssMb: Object.fromEntries(
          IDLE_SAMPLES_MS.map((at, i) => [`after${String(at / 1000)}s`, Math.round((idleRss[i] ?? Number.NaN) * 10) / 10]),
        ),
      })}\n`,
    );
  }
  const problems = [
    jobs !== TARGETS ? `API holds ${String(jobs)} jobs, expected ${String(TARGETS)}` : undefined,
    entries !== TARGETS || entriesAfterReplay !== TARGETS
      ? `queue holds ${String(entries)} then ${String(entriesAfterReplay)} entries, expected ${String(TARGETS)}`
      : undefined,
  ].filter((problem): problem is string => problem !== undefined);
  for (const problem of problems) process.stderr.write(`PROBLEM: ${problem}\n`);
  if (problems.length > 0) process.exitCode = 1;
} finally {
  await Promise.all(running.map((daemon) => daemon.stop()));
  await zkClient.close();
  await client.close();
  await api.daemon.stop();
  await zk.stop();
  await rm(dir, { recursive: true, force: true });
}
