/**
 * ZooKeeper digest authentication and ACLs (issue 14, finding 4), attacked from the outside: the
 * daemons and jobctl run as child processes with --zk-auth-file, and kazoo clients (Debian's Python)
 * try what anyone who reaches ZooKeeper could try, without credentials, then work with the engine
 * with the same credentials. The whole test file runs in a chroot of its own, which the engine
 * creates (so the chroot carries the ACL too).
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { execFile } from 'node:child_process';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, describe, test } from 'node:test';

import { JobApiClient } from '../src/api/client/index.js';
import { waitFor } from '../src/harness/wait-for.js';
import { compileJobctlOptions } from '../src/jobctl/options.js';
import { startZooKeeper, type ZooKeeperServer } from '../src/harness/zookeeper-server.js';
import { ZkClient } from '../src/zk/client.js';
import { startTestApi, type TestApi } from './fixtures/api-server.js';
import { spawnDaemon, type DaemonProcess } from './fixtures/daemon-process.js';
import { TEST_ACTIONS, TEST_DISTRIBUTIONS } from './fixtures/executor-testbed.js';
import { killJobctlProcesses, runJobctl } from './fixtures/jobctl-process.js';
import { KazooProcess, killKazooProcesses, type KazooEvent } from './fixtures/kazoo-process.js';
import { removeTree } from './fixtures/zk-cleanup.js';

const EXECUTOR_BIN = fileURLToPath(new URL('../src/bin/job-executor.ts', import.meta.url));
const DISTRIBUTOR_BIN = fileURLToPath(new URL('../src/bin/job-distributor.ts', import.meta.url));
const DEADLINE = ['--deadline', '25'];
const USER = 'engine';
const CREDENTIALS = `${USER}:${randomBytes(12).toString('hex')}`;

let zk: ZooKeeperServer | undefined;
let api: TestApi | undefined;
let client: JobApiClient | undefined;
let scratch = '';
let authFile = '';
const chroot = `/zk-auth-${randomUUID()}`;
const daemons: DaemonProcess[] = [];
const admins: ZkClient[] = [];
/** Trees outside the chroot, made open by a test (as a deployment made before auth was on). */
const openTrees: string[] = [];

function hosts(): string {
  assert.ok(zk, 'ZooKeeper is not running');
  return `${zk.connectionString}${chroot}`;
}

function theApi(): TestApi {
  assert.ok(api, 'the job API is not running');
  return api;
}

function apiClient(): JobApiClient {
  assert.ok(client, 'no API client');
  return client;
}

/** An authenticated session of the test's own, which never creates the chroot (the engine must). */
async function admin(): Promise<ZkClient> {
  const connected = await ZkClient.connect({
    connectionString: hosts(),
    sessionTimeoutMs: 4000,
    auth: { scheme: 'digest', credentials: CREDENTIALS },
    createChroot: false,
  });
  admins.push(connected);
  return connected;
}

function apiEnv(prefix: string): Record<string, string> {
  const key = theApi().adminKey;
  return { [`${prefix}_API_KEY`]: key.key, [`${prefix}_API_SECRET`]: key.secret };
}

function spawnDistributor(queuePath: string, names: readonly string[], extra: readonly string[] = [], zkHosts = hosts()): DaemonProcess {
  const args = [
    ...names,
    '--zk-hosts',
    zkHosts,
    '--zk-auth-file',
    authFile,
    '--queue-path',
    queuePath,
    '--api-url',
    theApi().baseUrl,
    '--session-timeout',
    '4',
    '--distributors-dir',
    TEST_DISTRIBUTIONS,
    ...extra,
  ];
  const daemon = spawnDaemon(DISTRIBUTOR_BIN, args, apiEnv('JOB_DISTRIBUTOR'));
  daemons.push(daemon);
  return daemon;
}

function spawnExecutor(queuePath: string, name: string, zkHosts = hosts()): DaemonProcess {
  const args = [
    '--zk-hosts',
    zkHosts,
    '--zk-auth-file',
    authFile,
    '--queue-path',
    queuePath,
    '--api-url',
    theApi().baseUrl,
    '--threads',
    '2',
    '--session-timeout',
    '4',
    '--actions-dir',
    TEST_ACTIONS,
    '--name',
    name,
  ];
  const daemon = spawnDaemon(EXECUTOR_BIN, args, apiEnv('JOB_EXECUTOR'));
  daemons.push(daemon);
  return daemon;
}

function jobctl(args: readonly string[]) {
  return runJobctl([...args, '--api-url', theApi().baseUrl, '--zk-hosts', hosts()], { cwd: scratch, env: apiEnv('JOBCTL') });
}

async function kazoo(script: 'kazoo_acl.py' | 'kazoo_queue.py', args: readonly string[]): Promise<KazooProcess> {
  const run = KazooProcess.start(script, [hosts(), ...args, ...DEADLINE]);
  await run.finished();
  return run;
}

function outcomes(run: KazooProcess): Record<string, unknown> {
  return Object.fromEntries(run.all('attempt').map((e: KazooEvent) => [`${String(e.op)} ${String(e.path)}`, e.error ?? e.outcome]));
}

before(async () => {
  zk = await startZooKeeper();
  api = await startTestApi();
  client = await JobApiClient.create({ baseUrl: api.baseUrl, credentials: api.adminKey, compatibility: 'engine' });
  scratch = await mkdtemp(path.join(tmpdir(), 'zk-auth-test-'));
  authFile = path.join(scratch, 'zk.auth');
  await writeFile(authFile, `${CREDENTIALS}\n`, { mode: 0o600 });
});

afterEach(async () => {
  await Promise.all(daemons.splice(0).map((daemon) => daemon.kill()));
  await killJobctlProcesses();
  await killKazooProcesses();
});

after(async () => {
  await Promise.all(daemons.splice(0).map((daemon) => daemon.kill()));
  if (zk !== undefined) {
    const root = await ZkClient.connect({ connectionString: zk.connectionString, auth: { scheme: 'digest', credentials: CREDENTIALS } });
    for (const tree of openTrees) await removeTree(root, tree);
    await removeTree(root, chroot).finally(() => root.close());
  }
  await Promise.all(admins.splice(0).map((admin) => admin.close()));
  await client?.close();
  await api?.close();
  await zk?.stop();
  if (scratch !== '') await rm(scratch, { recursive: true, force: true });
});

describe('ZooKeeper with --zk-auth-file', () => {
  test('an unauthenticated client can neither delete an entry nor squat an election; every engine znode names the identity', async () => {
    spawnDistributor('/job', ['ticker']);
    const zkAdmin = await admin();
    // The ticker's jobs wait in the queue: no executor runs yet.
    const entries = await waitFor(
      async () => {
        const children = await zkAdmin.getChildren('/job/entries');
        const contenders = await zkAdmin.getChildren('/election/ticker');
        return children.length >= 3 && contenders.length >= 1 ? children : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 200, message: 'queued entries and an election contender' },
    );
    const entry = `/job/entries/${entries[0] ?? ''}`;

    spawnExecutor('/job-other', 'auth-executor');
    await waitFor(() => zkAdmin.exists('/job-other/executors/auth-executor'), {
      timeoutMs: 30_000,
      intervalMs: 200,
      message: 'the executor registration',
    });

    const attack = await kazoo('kazoo_acl.py', [
      'attack',
      `delete:${entry}`,
      `set:${entry}`,
      'create:/job/entries/entry-000-9999999999',
      'create-ephemeral-sequential:/election/ticker/squatter__lock__',
      'create:/election/new-distribution',
      'create:/job-other/executors/fake-executor',
      'delete:/job-other/executors/auth-executor',
      'create:/job/taken/squatted',
    ]);
    assert.deepEqual(outcomes(attack), {
      [`delete ${entry}`]: 'NoAuthError',
      [`set ${entry}`]: 'NoAuthError',
      'create /job/entries/entry-000-9999999999': 'NoAuthError',
      'create-ephemeral-sequential /election/ticker/squatter__lock__': 'NoAuthError',
      'create /election/new-distribution': 'NoAuthError',
      'create /job-other/executors/fake-executor': 'NoAuthError',
      'delete /job-other/executors/auth-executor': 'NoAuthError',
      'create /job/taken/squatted': 'NoAuthError',
    });
    assert.ok(await zkAdmin.exists(entry), 'the entry is still there');

    // Every node the engine made, the chroot itself included, carries the digest ACL only.
    const walk = await kazoo('kazoo_acl.py', ['acls', '/', '--auth-file', authFile]);
    const acls = walk.all('acl');
    for (const expected of [
      '/',
      '/job',
      '/job/entries',
      '/job/taken',
      '/election',
      '/election/ticker',
      '/job-other/executors/auth-executor',
    ])
      assert.ok(
        acls.some((e) => e.path === expected),
        `${expected} was walked`,
      );
    for (const node of acls) {
      assert.deepEqual(node.acls, [{ scheme: 'digest', id: `${USER}:${digestOf(CREDENTIALS)}`, perms: 31 }], `ACL of ${String(node.path)}`);
    }
  });

  test('a kazoo peer with the same credentials shares the queue with jobctl and the executor', async () => {
    const queuePath = '/kazoo-peer';
    // jobctl persists and enqueues; the kazoo peer takes and consumes the entry.
    const created = await jobctl(['create', 'noop', '--queue-path', queuePath, '--zk-auth-file', authFile, '--json']);
    assert.equal(created.code, 0, created.stderr);
    const { id } = JSON.parse(created.stdout) as { id: string };
    const take = await kazoo('kazoo_queue.py', [queuePath, 'get', '1', '--auth-file', authFile]);
    assert.deepEqual(
      take.all('got').map((e) => [e.id, e.consumed]),
      [[id, true]],
    );

    // The kazoo peer enqueues a job; the engine's executor runs it.
    const job = await apiClient().create({ action: 'noop' });
    await kazoo('kazoo_queue.py', [queuePath, 'put', `${job.id}:100`, '--auth-file', authFile]);
    spawnExecutor(queuePath, 'peer-executor');
    await waitFor(async () => (await apiClient().get(job.id)).job.state === 'SUCCESS', {
      timeoutMs: 30_000,
      intervalMs: 200,
      message: `${job.id} to succeed`,
    });

    // jobctl reads the queue with the credentials.
    const listed = await jobctl(['queue', '--queue-path', queuePath, '--zk-auth-file', authFile]);
    assert.equal(listed.code, 0, listed.stderr);
    // Without it, jobctl says what is missing rather than a bare error code.
    const refused = await jobctl(['queue', '--queue-path', queuePath]);
    assert.equal(refused.code, 1);
    // The report reads the entries and the executors' registrations at once: either may be refused first.
    assert.match(refused.stderr, /^jobctl: ZooKeeper refused access to \/kazoo-peer\/\S+ \(NO_AUTH\).*--zk-auth-file/);
  });
});

describe('nodes left open from before auth was on', () => {
  test('the executor and the distributor name them in their logs, with the fix', async () => {
    assert.ok(zk, 'ZooKeeper is not running');
    const plain = zk.connectionString;
    const queuePath = `/open-queue-${randomUUID()}`;
    const electionPath = `/open-election-${randomUUID()}`;
    openTrees.push(queuePath, electionPath);
    const stranger = await ZkClient.connect({ connectionString: plain, sessionTimeoutMs: 4000 });
    try {
      await stranger.mkdirp(`${queuePath}/entries`);
      await stranger.mkdirp(`${electionPath}/ticker`);
    } finally {
      await stranger.close();
    }
    const executor = spawnExecutor(queuePath, 'open-executor', plain);
    const distributor = spawnDistributor(queuePath, ['ticker'], ['--election-path', electionPath], plain);
    const warning = (path: string): RegExp => new RegExp(`ZooKeeper nodes open to anyone.*${path}.*setAcl -R`);
    await executor.waitForLine(warning(`${queuePath}/entries`), 30_000);
    await distributor.waitForLine(warning(`${electionPath}/ticker`), 30_000);
  });
});

describe('--zk-auth-file is checked before anything is touched', () => {
  async function runExecutor(file: string): Promise<{ code: number | null; stderr: string }> {
    return new Promise((resolve) => {
      execFile(
        process.execPath,
        ['--import', 'tsx', EXECUTOR_BIN, '--zk-hosts', '127.0.0.1:1', '--zk-auth-file', file],
        { timeout: 60_000 },
        (error, _stdout, stderr) => {
          resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stderr });
        },
      );
    });
  }

  test('a file others can read is refused, naming the file and the fix', async () => {
    const open = path.join(scratch, 'open.auth');
    await writeFile(open, `${CREDENTIALS}\n`);
    await chmod(open, 0o644);
    const run = await runExecutor(open);
    assert.equal(run.code, 2);
    assert.match(run.stderr, new RegExp(`--zk-auth-file ${open.replaceAll('.', '\\.')} .*mode 0644.*chmod 600`));
  });

  test('a file without user:password, or missing, is refused by name', async () => {
    const bad = path.join(scratch, 'bad.auth');
    await writeFile(bad, 'no-colon-here\n', { mode: 0o600 });
    const malformed = await runExecutor(bad);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /--zk-auth-file .*bad\.auth must hold one line user:password/);
    const missing = await runExecutor(path.join(scratch, 'missing.auth'));
    assert.equal(missing.code, 2);
    assert.match(missing.stderr, /--zk-auth-file .*missing\.auth cannot be read/);
  });
});

/** ZooKeeper's digest of `user:password`: base64 of its SHA-1. */
function digestOf(credentials: string): string {
  return createHash('sha1').update(credentials).digest('base64');
}

describe("jobctl and the local stack's identity", () => {
  test(".local-stack/zk.auth is used for the local stack's ZooKeeper only, unless --zk-auth-file is given", async () => {
    const cwd = await mkdtemp(path.join(scratch, 'cwd-'));
    await mkdir(path.join(cwd, '.local-stack'));
    await writeFile(path.join(cwd, '.local-stack', 'zk.auth'), `${CREDENTIALS}\n`, { mode: 0o600 });
    await writeFile(path.join(cwd, '.local-stack', 'local-stack.json'), JSON.stringify({ pid: 1, zkHosts: '127.0.0.1:2181' }));
    const local = await compileJobctlOptions({ 'zk-hosts': '127.0.0.1:2181' }, cwd);
    assert.deepEqual(local.zk.auth, { scheme: 'digest', credentials: CREDENTIALS });
    const elsewhere = await compileJobctlOptions({ 'zk-hosts': 'zk1:2181' }, cwd);
    assert.equal(elsewhere.zk.auth, undefined, 'another ZooKeeper does not get the local identity');
    const given = await compileJobctlOptions({ 'zk-hosts': '127.0.0.1:2181', 'zk-auth-file': authFile }, cwd);
    assert.deepEqual(given.zk.auth, { scheme: 'digest', credentials: CREDENTIALS });
  });
});
