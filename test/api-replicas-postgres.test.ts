/**
 * Three `job-api serve` processes on one PostgreSQL database, and clients given all three
 * (`--api-url a,b,c`): when one replica is killed (kill -9), the clients go on through the others
 * at once. The bound checked is the issue's: the fleet's stall under 2 s, nothing lost or run twice.
 */
import assert from 'node:assert/strict';
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { openBackends } from '../src/api/backends.js';
import { JobApiClient } from '../src/api/client/index.js';
import { freePort } from '../src/harness/free-port.js';
import { startPostgres, type PostgresServer } from '../src/harness/postgres-server.js';
import { waitFor } from '../src/harness/wait-for.js';
import { startZooKeeper, type ZooKeeperServer } from '../src/harness/zookeeper-server.js';
import { LockingQueue } from '../src/recipes/locking-queue.js';
import { ZkClient } from '../src/zk/client.js';
import { spawnDaemon, type DaemonProcess } from './fixtures/daemon-process.js';
import { TEST_ACTIONS } from './fixtures/executor-testbed.js';
import { removeTree } from './fixtures/zk-cleanup.js';

const API_BIN = fileURLToPath(new URL('../src/bin/job-api.ts', import.meta.url));
const EXECUTOR_BIN = fileURLToPath(new URL('../src/bin/job-executor.ts', import.meta.url));
/** The bound on how long the fleet may stall when a replica dies. */
const STALL_BOUND_MS = 2_000;

let postgres: PostgresServer;
let zk: ZooKeeperServer;
let zkClient: ZkClient;
let database: string;
let dir: string;
let admin: { key: string; secret: string };
const replicas: { url: string; daemon: DaemonProcess }[] = [];
const daemons: DaemonProcess[] = [];
const queueRoots: string[] = [];

async function spawnReplica(secretFile: string): Promise<{ url: string; daemon: DaemonProcess }> {
  const port = await freePort();
  const daemon = spawnDaemon(
    API_BIN,
    ['serve', '--database', database, '--host', '127.0.0.1', '--port', String(port), '--session-secret-file', secretFile],
    {},
  );
  daemons.push(daemon);
  await Promise.race([
    daemon.waitForLine(/job api listening/),
    daemon.exited.then((status) => {
      throw new Error(`job-api exited before listening (${JSON.stringify(status)}):\n${daemon.lines.join('\n')}`);
    }),
  ]);
  return { url: `http://127.0.0.1:${String(port)}`, daemon };
}

before(async () => {
  postgres = await startPostgres();
  zk = await startZooKeeper();
  zkClient = await ZkClient.connect({ connectionString: zk.connectionString, sessionTimeoutMs: 4000 });
  database = await postgres.createDatabase(`replicas_${String(process.pid)}`);
  dir = await mkdtemp(join(tmpdir(), 'api-replicas-'));
  const secretFile = join(dir, 'session-secret');
  await writeFile(secretFile, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  // One after another, so they do not race to create the tables.
  for (let index = 0; index < 3; index += 1) replicas.push(await spawnReplica(secretFile));
  const backends = await openBackends(database);
  try {
    const created = await backends.credentials.create('admin', 'replicas test');
    admin = { key: created.key, secret: created.secret };
  } finally {
    await backends.close();
  }
});

after(async () => {
  for (const daemon of daemons.splice(0)) await daemon.kill();
  for (const root of queueRoots) await removeTree(zkClient, root);
  await zkClient.close();
  await zk.stop();
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
});

/** The longest time between two consecutive instants, and where it starts. */
function longestGap(instants: readonly number[]): { ms: number; after: number } {
  const sorted = [...instants].sort((a, b) => a - b);
  let gap = { ms: 0, after: sorted[0] ?? 0 };
  for (let index = 1; index < sorted.length; index += 1) {
    const previous = sorted[index - 1] ?? 0;
    const current = sorted[index] ?? 0;
    if (current - previous > gap.ms) gap = { ms: current - previous, after: previous };
  }
  return gap;
}

describe('three job API replicas on one PostgreSQL', () => {
  test('an executor given all three goes on through the others when one is killed: every job SUCCESS once, the stall under 2 s', async (t) => {
    const urls = replicas.map((replica) => replica.url);
    const client = await JobApiClient.create({ baseUrl: urls, credentials: admin, compatibility: 'engine' });
    const queuePath = `/replicas-test-${randomUUID()}`;
    queueRoots.push(queuePath);
    const queue = new LockingQueue(zkClient, { path: queuePath });
    try {
      const total = 400;
      const created = await client.createMany(
        Array.from({ length: total }, () => ({ action: 'sleep', payload: JSON.stringify({ ms: 40 }) })),
      );
      const executor = spawnDaemon(
        EXECUTOR_BIN,
        [
          '--zk-hosts',
          zk.connectionString,
          '--queue-path',
          queuePath,
          '--api-url',
          urls.join(','),
          '--threads',
          '4',
          '--session-timeout',
          '4',
          '--actions-dir',
          TEST_ACTIONS,
        ],
        { JOB_EXECUTOR_API_KEY: admin.key, JOB_EXECUTOR_API_SECRET: admin.secret },
      );
      daemons.push(executor);
      await executor.waitForLine(/executor started/);
      for (const job of created) await queue.put(job.id, 100);

      const succeeded = async (): Promise<number> => (await client.countByState()).SUCCESS;
      await waitFor(async () => (await succeeded()) >= 60 || undefined, {
        timeoutMs: 60_000,
        intervalMs: 50,
        message: 'a quarter of the jobs to succeed',
      });
      const victim = replicas[1];
      assert.ok(victim !== undefined);
      victim.daemon.signal('SIGKILL');
      await victim.daemon.exited;
      const killedAt = Date.now();
      await waitFor(async () => (await succeeded()) === total || undefined, {
        timeoutMs: 120_000,
        intervalMs: 200,
        message: `all ${String(total)} jobs to succeed`,
      });

      const jobs = await Promise.all(created.map(async (job) => (await client.get(job.id)).job));
      assert.deepEqual(
        jobs.filter((job) => job.state !== 'SUCCESS' || job.attempt !== 1).map((job) => [job.id, job.state, job.attempt]),
        [],
        'every job succeeded on its first attempt: none lost, none run again',
      );
      const finished = jobs.map((job) => Date.parse(job['time-of-status-change'] ?? job.updated));
      const afterKill = finished.filter((at) => at >= killedAt);
      const gap = longestGap([killedAt, ...afterKill]);
      t.diagnostic(`after the kill: ${String(afterKill.length)} jobs finished; longest stall ${String(gap.ms)} ms`);
      assert.ok(gap.ms < STALL_BOUND_MS, `the fleet stalled ${String(gap.ms)} ms after the replica was killed`);
      assert.ok(
        executor.lines.some((line) => line.includes('job API replica did not answer') && line.includes(victim.url)),
        'the executor said it set the killed replica aside',
      );
    } finally {
      await client.close();
    }
  });
});
