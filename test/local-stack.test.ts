/**
 * The one-command local stack as a user runs it: `npm start -- ...` from the repository root, in a
 * process group of its own, stopped with the SIGINT a terminal sends the foreground group on Ctrl-C.
 * Every process the stack started must be gone afterwards, its ports closed.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { connect, createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { JobApiClient } from '../src/api/client/index.js';
import { waitFor } from '../src/harness/wait-for.js';
import { ensureKeyFiles } from '../src/local-stack/keys.js';
import { parseCredentialsFile } from '../src/cli/option-readers.js';
import { ZkClient } from '../src/zk/client.js';
import { isZkError } from '../src/zk/errors.js';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const STARTED = /^Stop: Ctrl-C/m;

interface Run {
  readonly child: ChildProcess;
  readonly pid: number;
  stdout(): string;
  stderr(): string;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

const runs: Run[] = [];
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'local-stack-test-'));
});

after(async () => {
  // Whatever a failed test left: the npm process groups, then any process still naming the directory.
  for (const run of runs) signalGroup(run.pid, 'SIGKILL');
  for (const pid of await processesMentioning(dir)) signalPid(pid, 'SIGKILL');
  await rm(dir, { recursive: true, force: true });
});

/** `npm start -- args` in its own process group, as a shell starts a foreground job. */
function npmStart(args: readonly string[]): Run {
  const child = spawn('npm', ['start', '--', ...args], { cwd: REPO, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  if (child.pid === undefined) throw new Error('npm did not start');
  let out = '';
  let err = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (err += chunk.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => {
    child.once('exit', (code, signal) => {
      resolve({ code, signal });
    });
  });
  const run: Run = { child, pid: child.pid, stdout: () => out, stderr: () => err, exited };
  runs.push(run);
  return run;
}

function signalPid(pid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(pid, signal);
  } catch {
    // Already gone.
  }
}

function signalGroup(pid: number, signal: NodeJS.Signals): void {
  signalPid(-pid, signal);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** PIDs whose command line names `text` (the state directory: every daemon of the stack does). */
async function processesMentioning(text: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    const commandLine = await readFile(`/proc/${entry}/cmdline`, 'utf8').catch(() => '');
    if (commandLine.includes(text)) pids.push(Number(entry));
  }
  return pids;
}

function portAnswers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      resolve(false);
    });
  });
}

function exitedWithin(run: Run, ms: number): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return waitFor(() => run.child.exitCode !== null || run.child.signalCode !== null, {
    timeoutMs: ms,
    intervalMs: 100,
    message: `npm start (pid ${run.pid}) to exit; it printed:\n${run.stdout()}\n${run.stderr()}`,
  }).then(() => run.exited);
}

test('npm start runs the stack: a dummy_test_action job from the distributor succeeds, and Ctrl-C stops everything', async (t) => {
  const startedAt = Date.now();
  const stack = npmStart(['--dir', dir, '--api-port', '0', '--distribution', 'dummy_test_action']);
  await waitFor(() => STARTED.test(stack.stdout()) || stack.child.exitCode !== null, {
    timeoutMs: 60_000,
    intervalMs: 100,
    message: `the local stack's summary; it printed:\n${stack.stdout()}\n${stack.stderr()}`,
  });
  assert.match(stack.stdout(), STARTED, `the stack did not start:\n${stack.stdout()}\n${stack.stderr()}`);
  const summary = stack.stdout();
  const readyMs = Date.now() - startedAt;

  const apiUrl = /(http:\/\/127\.0\.0\.1:\d+)/.exec(summary)?.[1];
  const zkHosts = /--zk-hosts (127\.0\.0\.1:\d+)/.exec(summary)?.[1];
  assert.ok(apiUrl !== undefined && zkHosts !== undefined, `the API URL and ZooKeeper in the summary:\n${summary}`);
  const pids = [...summary.matchAll(/\bpid ([\d, ]+)/g)].flatMap((match) => (match[1] ?? '').split(',').map((pid) => Number(pid.trim())));
  // The supervisor, ZooKeeper's JVM and its keeper, the job API, the executor, the distributor.
  assert.equal(pids.length, 6, `six PIDs in the summary:\n${summary}`);
  assert.ok(pids.every(isAlive), 'every printed process runs');

  const adminKeyFile = join(dir, 'admin.key');
  assert.equal((await stat(adminKeyFile)).mode & 0o777, 0o600, 'the admin key file is private');
  assert.equal((await stat(join(dir, 'executor.key'))).mode & 0o777, 0o600, 'the executor key file is private');
  const credentials = parseCredentialsFile(await readFile(adminKeyFile, 'utf8'), adminKeyFile);

  // ZooKeeper runs with the engine's digest identity: a generated, private file, named in the summary,
  // and nothing the engine made is open to a client without it.
  const zkAuthFile = join(dir, 'zk.auth');
  assert.equal((await stat(zkAuthFile)).mode & 0o777, 0o600, 'the ZooKeeper credentials file is private');
  assert.match(summary, /--zk-auth-file \S*zk\.auth/);
  const stranger = await ZkClient.connect({ connectionString: zkHosts, sessionTimeoutMs: 4000 });
  try {
    await assert.rejects(stranger.create('/election/squatter'), (error: unknown) => isZkError(error, 'NO_AUTH'));
    await assert.rejects(stranger.getChildren('/job/entries'), (error: unknown) => isZkError(error, 'NO_AUTH'));
  } finally {
    await stranger.close();
  }

  // A second stack on the same directory is refused while this one runs.
  const second = npmStart(['--dir', dir, '--api-port', '0']);
  const refused = await exitedWithin(second, 30_000);
  assert.notEqual(refused.code, 0);
  assert.match(second.stderr(), /^local-stack: another local stack \(pid \d+\) runs on /m);

  const client = await JobApiClient.create({ baseUrl: apiUrl, credentials, compatibility: 'engine' });
  try {
    // The distributor makes one every 15 s; the action sleeps 5 s.
    const done = await waitFor(
      async () => (await client.search({ filter: "action='dummy_test_action' and state='SUCCESS'", last: 1 })).jobs[0],
      { timeoutMs: 40_000, intervalMs: 250, message: 'a dummy_test_action job in state SUCCESS' },
    );
    assert.equal(done['return-code'], 0);
    assert.match(done.executor ?? '', /^local-stack-\d+@/);
  } finally {
    await client.close();
  }
  const jobMs = Date.now() - startedAt;

  // What a terminal does on Ctrl-C: SIGINT to the foreground process group.
  signalGroup(stack.pid, 'SIGINT');
  const stopStarted = Date.now();
  const exit = await exitedWithin(stack, 40_000);
  const stopMs = Date.now() - stopStarted;
  assert.deepEqual(exit, { code: 0, signal: null }, `npm start exits 0 after Ctrl-C:\n${stack.stdout()}\n${stack.stderr()}`);
  assert.match(stack.stdout(), /^local stack stopped cleanly$/m);
  assert.equal(stack.stderr().trim(), '', 'nothing on stderr');
  assert.deepEqual(pids.filter(isAlive), [], 'every process of the stack is gone');
  assert.deepEqual(await processesMentioning(dir), [], 'no process names the state directory');
  const [apiPort, zkPort] = [Number(new URL(apiUrl).port), Number(zkHosts.split(':')[1])];
  assert.equal(await portAnswers(apiPort), false, 'the API port is closed');
  assert.equal(await portAnswers(zkPort), false, "ZooKeeper's port is closed");
  await assert.rejects(stat(join(dir, 'local-stack.json')), 'the run file is removed');
  t.diagnostic(`ready after ${readyMs} ms (npm, build and start), a SUCCESS job after ${jobMs} ms, stopped in ${stopMs} ms`);
});

/** The PID the summary prints for the daemon labelled `label` (its first, for ZooKeeper's two). */
function pidOf(summary: string, label: string): number {
  const pid = new RegExp(`^\\s+${label}\\s.*\\bpid (\\d+)`, 'm').exec(summary)?.[1];
  assert.ok(pid !== undefined, `a pid for ${label} in:\n${summary}`);
  return Number(pid);
}

test('a daemon that dies is restarted with back-off, its report shows no event lines, and the stack runs on', async () => {
  const stackDir = join(dir, 'restart');
  const stack = npmStart(['--dir', stackDir, '--api-port', '0']);
  await waitFor(() => STARTED.test(stack.stdout()) || stack.child.exitCode !== null, {
    timeoutMs: 60_000,
    intervalMs: 100,
    message: `the local stack's summary; it printed:\n${stack.stdout()}\n${stack.stderr()}`,
  });
  assert.match(stack.stdout(), STARTED, `the stack did not start:\n${stack.stdout()}\n${stack.stderr()}`);
  const summary = stack.stdout();
  const apiUrl = /(http:\/\/127\.0\.0\.1:\d+)/.exec(summary)?.[1];
  assert.ok(apiUrl !== undefined, summary);
  const apiPid = pidOf(summary, 'job-api');
  const adminKeyFile = join(stackDir, 'admin.key');
  const credentials = parseCredentialsFile(await readFile(adminKeyFile, 'utf8'), adminKeyFile);

  const runOne = async (): Promise<void> => {
    const client = await JobApiClient.create({ baseUrl: apiUrl, credentials, compatibility: 'engine' });
    try {
      const { id } = await client.create({ action: 'dummy_test_action', payload: '{"seconds": 0}' });
      await waitFor(async () => (await client.get(id)).job.state === 'SUCCESS', {
        timeoutMs: 40_000,
        intervalMs: 250,
        message: `${id} to succeed`,
      });
    } finally {
      await client.close();
    }
  };
  // The API's log now holds event lines (job created, started, ...): they are not the cause of a death.
  await runOne();

  signalPid(apiPid, 'SIGKILL');
  await waitFor(() => !isAlive(apiPid), { timeoutMs: 5000, message: `pid ${String(apiPid)} to die` });
  const restarted = await waitFor(() => /^local-stack: job-api restarted \(pid (\d+)\)/m.exec(stack.stdout() + stack.stderr()), {
    timeoutMs: 30_000,
    intervalMs: 100,
    message: `the job API to be restarted; the stack printed:\n${stack.stdout()}\n${stack.stderr()}`,
  });
  const report = stack.stderr();
  assert.match(report, new RegExp(`^local-stack: job-api \\(pid ${String(apiPid)}\\) was killed by SIGKILL; restarting it in 1 s`, 'm'));
  assert.doesNotMatch(report, / info job /, 'no event lines in the report');
  assert.equal(stack.child.exitCode, null, 'the stack runs on');
  const newPid = Number(restarted[1]);
  assert.ok(isAlive(newPid));
  // The restarted API serves the same database on the same port, and jobs still run end to end.
  await runOne();

  signalGroup(stack.pid, 'SIGINT');
  const exit = await exitedWithin(stack, 40_000);
  assert.deepEqual(exit, { code: 0, signal: null }, `npm start exits 0 after Ctrl-C:\n${stack.stdout()}\n${stack.stderr()}`);
  assert.equal(isAlive(newPid), false, 'the restarted daemon is stopped too');
  assert.deepEqual(await processesMentioning(stackDir), [], 'no process names the state directory');
});

test('a taken --api-port is one clear line and a non-zero exit, with nothing left running', async () => {
  const holder: Server = createServer();
  await new Promise<void>((resolve) => holder.listen({ host: '127.0.0.1', port: 0 }, resolve));
  const address = holder.address();
  assert.ok(address !== null && typeof address === 'object');
  try {
    const stack = npmStart(['--dir', dir, '--api-port', String(address.port)]);
    const exit = await exitedWithin(stack, 30_000);
    assert.notEqual(exit.code, 0);
    const ours = stack
      .stderr()
      .split('\n')
      .filter((line) => line.startsWith('local-stack:'));
    assert.deepEqual(ours, [
      `local-stack: port ${address.port} on 127.0.0.1 for the job API is in use; pass --api-port N for another port, or --api-port 0 for any free port`,
    ]);
    assert.doesNotMatch(stack.stdout(), /starting/, 'nothing was started');
    assert.deepEqual(await processesMentioning(dir), [], 'no process names the state directory');
  } finally {
    await new Promise((resolve) => holder.close(resolve));
  }
});

test('the API keys are made on the first run and reused on later ones while the database knows them', async () => {
  const keysDir = await mkdtemp(join(tmpdir(), 'local-stack-keys-'));
  try {
    const specs = [
      { file: join(keysDir, 'admin.key'), role: 'admin', description: 'test admin' },
      { file: join(keysDir, 'executor.key'), role: 'executor', description: 'test executor' },
    ] as const;
    const database = join(keysDir, 'jobs.sqlite');
    const first = await ensureKeyFiles(database, specs);
    assert.deepEqual(
      first.map((key) => key.outcome),
      ['created', 'created'],
    );
    const again = await ensureKeyFiles(database, specs);
    assert.deepEqual(
      again.map((key) => key.outcome),
      ['reused', 'reused'],
    );
    assert.deepEqual(
      again.map((key) => key.credentials),
      first.map((key) => key.credentials),
    );
    // A new database does not know the old keys: new ones replace them.
    for (const file of [database, `${database}-wal`, `${database}-shm`]) await rm(file, { force: true });
    const fresh = await ensureKeyFiles(database, specs);
    assert.deepEqual(
      fresh.map((key) => key.outcome),
      ['replaced', 'replaced'],
    );
    assert.notEqual(fresh[0]?.credentials.key, first[0]?.credentials.key);
    assert.equal((await stat(specs[0].file)).mode & 0o777, 0o600);
  } finally {
    await rm(keysDir, { recursive: true, force: true });
  }
});
