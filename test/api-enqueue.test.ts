/**
 * `job-api serve --zk-hosts`: the API enqueues the jobs it creates, so a job created by plain HTTP
 * starts at once instead of waiting for the queue reconciler (which is not running here). ZooKeeper
 * out of reach must never fail a create: the job is persisted and left to the reconciler.
 * Everything is real: ZooKeeper, `job-api` and `job-executor` as child processes, HTTP from the test.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, describe, test } from 'node:test';
import { openBackends } from '../src/api/backends.js';
import { freePort } from '../src/harness/free-port.js';
import { waitFor } from '../src/harness/wait-for.js';
import { startZooKeeper, type ZooKeeperServer } from '../src/harness/zookeeper-server.js';
import { ZkClient } from '../src/zk/client.js';
import { isZkError } from '../src/zk/errors.js';
import { spawnDaemon, type DaemonProcess } from './fixtures/daemon-process.js';
import { killJobctlProcesses, runJobctl } from './fixtures/jobctl-process.js';
import { TEST_ACTIONS } from './fixtures/executor-testbed.js';
import { removeTree } from './fixtures/zk-cleanup.js';
import { startFaultProxy, type FaultProxy } from './fixtures/zk-fault-proxy.js';

const API_BIN = fileURLToPath(new URL('../src/bin/job-api.ts', import.meta.url));
const EXECUTOR_BIN = fileURLToPath(new URL('../src/bin/job-executor.ts', import.meta.url));

/** Far below the reconciler's 30 s period plus its 5 s grace: only an enqueue on create meets it. */
const STARTS_WITHIN_MS = 3000;
/** How long a create may take while ZooKeeper is out of reach: it must not wait for ZooKeeper. */
const CREATE_WITHIN_MS = 3000;

let zk: ZooKeeperServer;
let zkClient: ZkClient;
let dir: string;
let key: { key: string; secret: string };
let queuePath: string;
let database: string;
const daemons: DaemonProcess[] = [];
const proxies: FaultProxy[] = [];

before(async () => {
  zk = await startZooKeeper();
  zkClient = await ZkClient.connect({ connectionString: zk.connectionString, sessionTimeoutMs: 4000 });
  dir = await mkdtemp(join(tmpdir(), 'api-enqueue-'));
});

after(async () => {
  await zkClient.close();
  await zk.stop();
  await rm(dir, { recursive: true, force: true });
});

afterEach(async () => {
  await Promise.all(daemons.splice(0).map((daemon) => daemon.kill()));
  await Promise.all(proxies.splice(0).map((proxy) => proxy.close()));
  await killJobctlProcesses();
  await removeTree(zkClient, queuePath);
});

/** A fresh database with an admin key, and a fresh queue root, for each test. */
async function freshStack(): Promise<void> {
  queuePath = `/api-enqueue-test-${randomUUID()}`;
  database = join(dir, `${randomUUID()}.sqlite`);
  const backends = await openBackends(database);
  try {
    const created = await backends.credentials.create('admin', 'api-enqueue test');
    key = { key: created.key, secret: created.secret };
  } finally {
    await backends.close();
  }
}

async function spawnApi(zkArgs: readonly string[]): Promise<string> {
  const port = await freePort();
  const api = spawnDaemon(API_BIN, ['serve', '--database', database, '--port', String(port), '--log-level', 'debug', ...zkArgs], {});
  daemons.push(api);
  await Promise.race([
    api.waitForLine(/job api listening/),
    api.exited.then((status) => {
      throw new Error(`job-api exited before listening (${JSON.stringify(status)}):\n${api.lines.join('\n')}`);
    }),
  ]);
  return `http://127.0.0.1:${String(port)}`;
}

async function spawnExecutor(apiUrl: string): Promise<void> {
  const executor = spawnDaemon(
    EXECUTOR_BIN,
    [
      '--zk-hosts',
      zk.connectionString,
      '--queue-path',
      queuePath,
      '--api-url',
      apiUrl,
      '--threads',
      '4',
      '--session-timeout',
      '4',
      '--log-level',
      'debug',
      '--actions-dir',
      TEST_ACTIONS,
    ],
    { JOB_EXECUTOR_API_KEY: key.key, JOB_EXECUTOR_API_SECRET: key.secret },
  );
  daemons.push(executor);
  await executor.waitForLine(/executor started/);
}

const headers = (): Record<string, string> => ({ authorization: `Bearer ${key.key}:${key.secret}`, 'content-type': 'application/json' });

async function post(apiUrl: string, body: unknown, bulk = false): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${apiUrl}/api/job`, {
    method: 'POST',
    headers: { ...headers(), ...(bulk ? { bulk: 'yes' } : {}) },
    body: JSON.stringify(body),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function stateOf(apiUrl: string, id: string): Promise<string> {
  const response = await fetch(`${apiUrl}/api/${id}`, { headers: headers() });
  const body = (await response.json()) as { state?: unknown };
  return String(body.state);
}

function idOf(body: Record<string, unknown>): string {
  const id = body['resource-id'];
  assert.equal(typeof id, 'string', `a resource-id in ${JSON.stringify(body)}`);
  return String(id);
}

/** How many jobs have succeeded, by one search (the count only). */
async function succeeded(apiUrl: string): Promise<number> {
  const response = await fetch(`${apiUrl}/api/job?filter=${encodeURIComponent("state='SUCCESS'")}&last=0`, { headers: headers() });
  const body = (await response.json()) as { count?: unknown };
  return Number(body.count);
}

async function entryCount(): Promise<number> {
  const stat = await zkClient.exists(`${queuePath}/entries`);
  return stat?.numChildren ?? 0;
}

describe('job-api serve --zk-hosts enqueues what it creates', () => {
  test('a job created by plain HTTP starts within about a second, with no reconciler running', async () => {
    await freshStack();
    const apiUrl = await spawnApi(['--zk-hosts', zk.connectionString, '--queue-path', queuePath]);
    await spawnExecutor(apiUrl);
    const created = await post(apiUrl, { action: 'noop' });
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(created.body.enqueued, true, 'the response says the API wrote the entry');
    const id = idOf(created.body);
    const started = Date.now();
    await waitFor(async () => (await stateOf(apiUrl, id)) !== 'QUEUED', {
      timeoutMs: STARTS_WITHIN_MS,
      message: `${id} to leave QUEUED (an executor took it)`,
    });
    assert.ok(Date.now() - started < STARTS_WITHIN_MS);
    await waitFor(async () => (await stateOf(apiUrl, id)) === 'SUCCESS', { timeoutMs: 10_000, message: `${id} to succeed` });
  });

  test('a bulk create is enqueued too: every job has its entry before the reply, and all run', async () => {
    await freshStack();
    const apiUrl = await spawnApi(['--zk-hosts', zk.connectionString, '--queue-path', queuePath]);
    await spawnExecutor(apiUrl);
    const jobs = Array.from({ length: 30 }, () => ({ action: 'noop' }));
    const created = await post(apiUrl, jobs, true);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    const resources = created.body.resources;
    assert.ok(Array.isArray(resources) && resources.length === jobs.length);
    // The reply came once the entries existed: one per job, each result saying so.
    for (const resource of resources) assert.equal((resource as Record<string, unknown>).enqueued, true, JSON.stringify(resource));
    await waitFor(async () => (await succeeded(apiUrl)) === jobs.length, {
      timeoutMs: 30_000,
      intervalMs: 250,
      message: 'every job of the bulk create to succeed',
    });
  });

  test('with ZooKeeper never reachable, creates succeed at once and the jobs stay QUEUED for the reconciler', async () => {
    await freshStack();
    const nobody = await freePort();
    const apiUrl = await spawnApi(['--zk-hosts', `127.0.0.1:${String(nobody)}`, '--queue-path', queuePath]);
    const started = Date.now();
    const single = await post(apiUrl, { action: 'noop' });
    const bulk = await post(apiUrl, [{ action: 'noop' }, { action: 'noop' }], true);
    assert.ok(Date.now() - started < CREATE_WITHIN_MS, `the creates took ${String(Date.now() - started)} ms`);
    assert.equal(single.status, 201, JSON.stringify(single.body));
    assert.equal(bulk.status, 201, JSON.stringify(bulk.body));
    assert.equal(single.body.enqueued, undefined, 'not marked enqueued: its producer or the reconciler must enqueue it');
    assert.equal(await stateOf(apiUrl, idOf(single.body)), 'QUEUED');
    const api = daemons[0];
    assert.ok(api !== undefined);
    await api.waitForLine(/not enqueued.*reconciler/, 5000);
  });

  test('with ZooKeeper cut off after the start, creates still succeed promptly', async () => {
    await freshStack();
    const proxy = await startFaultProxy({ host: zk.host, port: zk.port });
    proxies.push(proxy);
    const apiUrl = await spawnApi(['--zk-hosts', proxy.connectionString, '--queue-path', queuePath, '--session-timeout', '4']);
    // Connected: a create is enqueued (the API connects in the background, so this may take a moment).
    await waitFor(
      async () => {
        await post(apiUrl, { action: 'noop' });
        return (await entryCount()) > 0;
      },
      { timeoutMs: 10_000, intervalMs: 250, message: 'a create to be enqueued' },
    );
    proxy.partition();
    const started = Date.now();
    const created = await post(apiUrl, { action: 'noop' });
    assert.ok(Date.now() - started < CREATE_WITHIN_MS, `the create took ${String(Date.now() - started)} ms`);
    assert.equal(created.status, 201, JSON.stringify(created.body));
    assert.equal(await stateOf(apiUrl, idOf(created.body)), 'QUEUED');
  });

  test('a producer that also enqueues (jobctl create) leaves the API-enqueued job alone: one entry per job', async () => {
    await freshStack();
    const apiUrl = await spawnApi(['--zk-hosts', zk.connectionString, '--queue-path', queuePath]);
    const result = await runJobctl(['create', 'noop', '--api-url', apiUrl, '--zk-hosts', zk.connectionString, '--queue-path', queuePath], {
      cwd: dir,
      env: { JOBCTL_API_KEY: key.key, JOBCTL_API_SECRET: key.secret },
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^created job\/[0-9a-f-]{36} .*, enqueued$/m);
    assert.equal(await entryCount(), 1, 'the API enqueued it; jobctl did not add a second entry');
  });

  test('ZooKeeper options without --zk-hosts are refused, naming the missing flag', async () => {
    await freshStack();
    const api = spawnDaemon(API_BIN, ['serve', '--database', database, '--port', '0', '--queue-path', queuePath], {});
    daemons.push(api);
    const status = await api.exited;
    assert.equal(status.code, 2, api.lines.join('\n'));
    assert.match(api.lines.join('\n'), /--queue-path needs --zk-hosts/);
  });

  test('with ZooKeeper never reachable, SIGTERM stops the API at once (no wait for a connection attempt)', async () => {
    await freshStack();
    const nobody = await freePort();
    const apiUrl = await spawnApi(['--zk-hosts', `127.0.0.1:${String(nobody)}`, '--queue-path', queuePath]);
    const api = daemons[0];
    assert.ok(api !== undefined);
    // An answer means the entry point has installed its signal handlers (they follow the start's promise).
    await waitFor(async () => (await fetch(`${apiUrl}/api/job`)).status > 0, { timeoutMs: 10_000, message: 'the API to answer' });
    const stopping = Date.now();
    api.signal('SIGTERM');
    const status = await api.exited;
    assert.deepEqual(status, { code: 0, signal: null }, api.lines.join('\n'));
    assert.ok(Date.now() - stopping < CREATE_WITHIN_MS, `stopped after ${String(Date.now() - stopping)} ms`);
  });

  test('with ZooKeeper auth on (--zk-auth-file), the API enqueues as the engine, its entries closed to others', async () => {
    await freshStack();
    const authFile = join(dir, `${randomUUID()}.auth`);
    await writeFile(authFile, 'engine:api-enqueue-test\n', { mode: 0o600 });
    const auth = { scheme: 'digest', credentials: 'engine:api-enqueue-test' } as const;
    const engine = await ZkClient.connect({ connectionString: zk.connectionString, sessionTimeoutMs: 4000, auth });
    try {
      const apiUrl = await spawnApi(['--zk-hosts', zk.connectionString, '--queue-path', queuePath, '--zk-auth-file', authFile]);
      const created = await post(apiUrl, { action: 'noop' });
      assert.equal(created.status, 201);
      assert.equal(created.body.enqueued, true, `not enqueued: ${JSON.stringify(created.body)}`);
      assert.equal((await engine.getChildren(`${queuePath}/entries`)).length, 1);
      const stranger = await zkClient.getChildren(`${queuePath}/entries`).then(
        () => 'listed',
        (error: unknown) => (isZkError(error, 'NO_AUTH') ? 'NO_AUTH' : String(error)),
      );
      assert.equal(stranger, 'NO_AUTH');
    } finally {
      await removeTree(engine, queuePath);
      await engine.close();
    }
  });
});

describe('job-api serve --zk-hosts leaves delayed jobs to the scheduler', () => {
  test('a job whose not-before is to come gets no entry on create; one whose time has come does', async () => {
    await freshStack();
    const apiUrl = await spawnApi(['--zk-hosts', zk.connectionString, '--queue-path', queuePath]);
    const inAnHour = new Date(Date.now() + 3_600_000).toISOString();
    const single = await post(apiUrl, { action: 'noop', 'not-before': inAnHour });
    assert.equal(single.status, 201, JSON.stringify(single.body));
    assert.equal(single.body.enqueued, undefined, 'a delayed job is not enqueued by the API');
    assert.equal(single.body['not-before'], inAnHour, 'the reply says what the job waits for');
    const bulk = await post(
      apiUrl,
      [
        { action: 'noop', 'not-before': inAnHour },
        { action: 'noop', 'not-before': '2020-01-01T00:00:00Z' },
      ],
      true,
    );
    assert.equal(bulk.status, 201, JSON.stringify(bulk.body));
    const [delayed, due] = bulk.body.resources as Record<string, unknown>[];
    assert.equal(delayed?.enqueued, undefined);
    assert.equal(due?.enqueued, true, 'a not-before already past is no delay');
    assert.equal(due['not-before'], undefined);
    assert.equal(await entryCount(), 1, 'only the job that is due has an entry');
    assert.equal(await stateOf(apiUrl, idOf(single.body)), 'QUEUED');
  });
});
