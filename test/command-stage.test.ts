/**
 * Issue 19, item 6: stage-in/out of the bundled `command` action, run by a real `job-executor` child
 * process against the real job API and ZooKeeper. Inputs come from a directory the executor allows
 * (`--command-stage-dir`) and from a local HTTP server (`--command-fetch-from`); outputs go to another
 * allowed directory; every working directory is made under a folder of the test's own, so the test
 * can see that none is left behind.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { after, before, test } from 'node:test';
import type { JobEvent } from '../src/api/job/events.js';
import { BUNDLED_ACTIONS_DIR, compileExecutorOptions } from '../src/executor/options.js';
import { waitFor } from '../src/harness/wait-for.js';
import { eventLine } from '../src/jobctl/event-line.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';

const bed = useExecutorTestbed();

let scratch: string;
let data: string;
let results: string;
let work: string;
let server: Server;
let origin: string;
const served = 'banana\napple\ncherry\n';
const words = 'pear\napple\nfig\n';

before(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'command-stage-'));
  [data, results, work] = [join(scratch, 'data'), join(scratch, 'results'), join(scratch, 'work')];
  await Promise.all([mkdir(data), mkdir(results), mkdir(work)]);
  await writeFile(join(data, 'words.txt'), words);
  server = createServer((request, response) => {
    if (request.url === '/fruit.txt') response.writeHead(200, { 'content-type': 'text/plain' }).end(served);
    // Headers and a first chunk, then nothing: a download that never ends.
    else if (request.url === '/stalled') response.writeHead(200).write('partial');
    else response.writeHead(404).end('no such file');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

after(async () => {
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  await rm(scratch, { recursive: true, force: true });
});

function spawnStagingExecutor(extraArgs: readonly string[] = []): void {
  bed().spawnExecutor({
    actionsDirs: [BUNDLED_ACTIONS_DIR],
    // Room for the program's group to be stopped (SIGTERM, then SIGKILL 2 s later) before the thread is.
    killGraceSeconds: 5,
    extraArgs: [
      '--allow-command',
      '--command-stage-dir',
      data,
      '--command-stage-dir',
      results,
      '--command-fetch-from',
      origin,
      '--command-work-dir',
      work,
      ...extraArgs,
    ],
  });
}

/** The stream of `command` events, open before the test creates its job (so nothing is missed). */
async function commandEvents(): Promise<{ events: JobEvent[]; stop: () => void }> {
  const { client } = bed();
  const controller = new AbortController();
  const events: JobEvent[] = [];
  let opened = (): void => undefined;
  const open = new Promise<void>((resolve) => {
    opened = resolve;
  });
  void (async () => {
    for await (const event of client.events({ action: 'command', signal: controller.signal, onOpen: opened })) events.push(event);
  })().catch(() => undefined);
  await open;
  return {
    events,
    stop: () => {
      controller.abort();
    },
  };
}

const noWorkDirLeft = async (): Promise<void> => {
  await waitFor(async () => (await readdir(work)).length === 0, {
    timeoutMs: 10_000,
    intervalMs: 100,
    message: 'the working directory to be removed',
  });
};

test('a file staged in, sorted, staged out; stage events carry bytes, files and times; the working directory is gone', async () => {
  spawnStagingExecutor();
  const stream = await commandEvents();
  const sorted = await bed().createJob('command', {
    payload: {
      command: '/usr/bin/sort',
      args: ['-o', '%OUT/sorted.txt', '%IN[0]'],
      // The same file twice: once by file:// URL under a name of the job's, once by absolute path.
      inputs: [{ from: pathToFileURL(join(data, 'words.txt')).href, name: 'in.txt' }, join(data, 'words.txt')],
      outputs: { to: pathToFileURL(results).href },
    },
  });
  const job = await bed().waitForState(sorted, ['SUCCESS', 'FAILED']);
  assert.equal(job.state, 'SUCCESS', job['status-message']);
  assert.equal(await readFile(join(results, 'sorted.txt'), 'utf8'), 'apple\nfig\npear\n');
  const inBytes = 2 * words.length;
  assert.match(
    job['status-message'] ?? '',
    new RegExp(`^exit 0\\nstage-in: 2 files, ${inBytes} bytes in \\d+\\.\\d{3} s\\nstage-out: 1 files, ${words.length} bytes in`),
  );
  await noWorkDirLeft();

  await waitFor(() => stream.events.filter((event) => event.job === sorted && event.type.startsWith('stage-')).length === 2, {
    timeoutMs: 10_000,
    message: 'the stage-in and stage-out events of the job',
  });
  stream.stop();
  const stages = stream.events.filter((event) => event.job === sorted && event.type.startsWith('stage-'));
  assert.deepEqual(
    stages.map(({ type, files, bytes, state }) => ({ type, files, bytes, state })),
    [
      { type: 'stage-in', files: 2, bytes: inBytes, state: 'RUNNING' },
      { type: 'stage-out', files: 1, bytes: words.length, state: 'RUNNING' },
    ],
  );
  for (const stage of stages) {
    assert.equal(typeof stage.duration, 'number');
    assert.ok((stage.duration ?? -1) >= 0 && (stage.duration ?? 99) < 30, `a stage's seconds: ${stage.duration}`);
    assert.equal(stage.executor, job.executor, 'published as the job owner');
  }
  const [stagedIn] = stages;
  assert.ok(stagedIn !== undefined);
  assert.match(
    eventLine(stagedIn, { withJob: false }),
    new RegExp(`stage-in\\s+RUNNING  2 files  ${inBytes} bytes  in \\d+\\.\\d{3} s  by `),
  );
});

test('an HTTP input from an allowed origin is fetched; another origin and a missing URL fail naming them', async () => {
  spawnStagingExecutor();
  const fetched = await bed().createJob('command', {
    payload: { command: '/usr/bin/sort', args: ['-o', '%OUT/fruit.txt', '%IN'], inputs: [`${origin}/fruit.txt`], outputs: { to: results } },
  });
  const job = await bed().waitForState(fetched, ['SUCCESS', 'FAILED']);
  assert.equal(job.state, 'SUCCESS', job['status-message']);
  assert.equal(await readFile(join(results, 'fruit.txt'), 'utf8'), 'apple\nbanana\ncherry\n');
  assert.match(job['status-message'] ?? '', new RegExp(`stage-in: 1 files, ${served.length} bytes`));

  const elsewhere = await bed().createJob('command', {
    payload: { command: '/bin/cat', args: ['%IN'], inputs: ['http://127.0.0.2:9/secret'] },
  });
  const refused = await bed().waitForState(elsewhere, ['SUCCESS', 'FAILED']);
  assert.equal(refused.state, 'FAILED');
  assert.match(refused['status-message'] ?? '', /input URL http:\/\/127\.0\.0\.2:9\/secret is not allowed: .*--command-fetch-from/);

  const missing = await bed().createJob('command', { payload: { command: '/bin/cat', args: ['%IN'], inputs: [`${origin}/none`] } });
  const notFound = await bed().waitForState(missing, ['SUCCESS', 'FAILED']);
  assert.equal(notFound.state, 'FAILED');
  assert.match(notFound['status-message'] ?? '', new RegExp(`input ${origin}/none: HTTP 404`));
  await noWorkDirLeft();
});

test('a file:// input outside the allowed directories is refused naming it, and the program never runs', async () => {
  spawnStagingExecutor();
  const marker = join(results, 'ran');
  const id = await bed().createJob('command', {
    payload: { command: '/usr/bin/touch', args: [marker], inputs: ['file:///etc/hostname'] },
  });
  const job = await bed().waitForState(id, ['SUCCESS', 'FAILED']);
  assert.equal(job.state, 'FAILED');
  assert.match(job['status-message'] ?? '', /input file "\/etc\/hostname" is not allowed: it is not inside a --command-stage-dir/);
  assert.equal(existsSync(marker), false, 'the program ran');
  await noWorkDirLeft();
});

test('outputs may not escape the working directory: ".." is a payload error (65), a symlink out of it fails the stage', async () => {
  spawnStagingExecutor();
  const dotdot = await bed().createJob('command', {
    payload: { command: '/bin/true', outputs: { to: results, files: ['../work'] } },
  });
  const refused = await bed().waitForState(dotdot, ['SUCCESS', 'FAILED']);
  assert.equal(refused['return-code'], 65, refused['status-message']);
  assert.match(refused['status-message'] ?? '', /outputs\.files\[0\].*inside the working directory/);

  const link = await bed().createJob('command', {
    payload: { command: '/bin/ln', args: ['-s', '/etc/hostname', '%OUT/leak'], outputs: { to: results } },
  });
  const job = await bed().waitForState(link, ['SUCCESS', 'FAILED']);
  assert.equal(job.state, 'FAILED');
  assert.match(job['status-message'] ?? '', /output "out\/leak" is a link to \/etc\/hostname, outside the working directory/);
  assert.equal(existsSync(join(results, 'leak')), false, 'the linked file was staged out');

  const nowhere = await bed().createJob('command', { payload: { command: '/bin/true', outputs: { to: '/etc' } } });
  const denied = await bed().waitForState(nowhere, ['SUCCESS', 'FAILED']);
  assert.equal(denied.state, 'FAILED');
  assert.match(denied['status-message'] ?? '', /output directory "\/etc" is not allowed: it is not inside a --command-stage-dir/);
  await noWorkDirLeft();
});

test('an unknown placeholder is a payload error (65) before anything runs or is staged', async () => {
  spawnStagingExecutor();
  const id = await bed().createJob('command', {
    payload: { command: '/bin/echo', args: ['%IN[0]', '%OUTPUT'], inputs: [join(data, 'words.txt')] },
  });
  const job = await bed().waitForState(id, ['SUCCESS', 'FAILED']);
  assert.equal(job['return-code'], 65, job['status-message']);
  assert.match(job['status-message'] ?? '', /args\[1\] "%OUTPUT": unknown placeholder %OUTPUT/);
  assert.deepEqual(await readdir(work), [], 'no working directory was made');
});

test('the working directory is removed after a timeout, and the outputs are not staged', async () => {
  spawnStagingExecutor();
  const id = await bed().createJob('command', {
    timeout: 2,
    payload: { command: '/bin/sh', args: ['-c', 'touch %OUT/partial; exec sleep 60'], outputs: { to: results } },
  });
  await waitFor(async () => (await readdir(work)).length === 1, { timeoutMs: 20_000, message: 'the working directory to be made' });
  const job = await bed().waitForState(id, ['SUCCESS', 'FAILED'], 30_000);
  assert.equal(job.state, 'FAILED');
  assert.match(job['status-message'] ?? '', /time/i);
  await noWorkDirLeft();
  assert.equal(existsSync(join(results, 'partial')), false, 'an output of the timed-out run was staged out');
});

test('a command that fails stages nothing out; a cancelled one leaves no working directory either', async () => {
  spawnStagingExecutor();
  const failing = await bed().createJob('command', {
    payload: { command: '/bin/sh', args: ['-c', 'echo half > %OUT/failed.txt; exit 3'], outputs: { to: results } },
  });
  const failed = await bed().waitForState(failing, ['SUCCESS', 'FAILED']);
  assert.equal(failed['return-code'], 3, failed['status-message']);
  assert.match(failed['status-message'] ?? '', /^exit 3\nstage-in: 0 files, 0 bytes in [\d.]+ s\nstage-out: not done, the command failed/);
  assert.equal(existsSync(join(results, 'failed.txt')), false, 'an output of the failed run was staged out');
  await noWorkDirLeft();

  const long = await bed().createJob('command', { payload: { command: '/bin/sleep', args: ['60'], outputs: { to: results } } });
  await waitFor(async () => (await readdir(work)).length === 1, { timeoutMs: 20_000, message: 'the working directory to be made' });
  await bed().client.cancel(long);
  await bed().waitForState(long, ['CANCELED']);
  await noWorkDirLeft();
});

test('stage events: only the owner of a RUNNING job publishes them', async () => {
  const { api } = bed();
  const { id } = await bed().client.create({ action: 'command' });
  const publish = async (key: { key: string; secret: string }, event: Record<string, unknown>): Promise<Response> =>
    fetch(`${api.baseUrl}/api/job/events`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key.key}:${key.secret}`, 'content-type': 'application/json' },
      body: JSON.stringify({ events: [{ type: 'stage-in', at: new Date().toISOString(), job: id, action: 'command', ...event }] }),
    });
  const executorKey = await api.createKey('executor');
  const distributorKey = await api.createKey('distributor');
  const notRunning = await publish(executorKey, { state: 'RUNNING', executor: 'x@1' });
  assert.equal(notRunning.status, 409, await notRunning.text());
  const claimed = await bed().client.claim(id, 'owner@0000000000000001');
  assert.ok(claimed.claimed);
  const impostor = await publish(executorKey, { state: 'RUNNING', executor: 'other@0000000000000002' });
  assert.equal(impostor.status, 403, await impostor.text());
  const owner = await publish(distributorKey, { state: 'RUNNING', executor: 'owner@0000000000000001', bytes: 5, files: 1, duration: 0.1 });
  assert.equal(owner.status, 200, await owner.text());
  const viewer = await publish(await api.createKey('viewer'), { state: 'RUNNING', executor: 'owner@0000000000000001' });
  assert.equal(viewer.status, 403);
  await bed().client.cancel(id);
});

test('inputs are capped (--command-input-max-bytes) and a download has a deadline (--command-fetch-timeout)', async () => {
  spawnStagingExecutor(['--command-input-max-bytes', String(words.length - 1), '--command-fetch-timeout', '1']);
  const large = await bed().createJob('command', { payload: { command: '/bin/cat', args: ['%IN'], inputs: [join(data, 'words.txt')] } });
  const capped = await bed().waitForState(large, ['SUCCESS', 'FAILED']);
  assert.equal(capped.state, 'FAILED');
  assert.match(
    capped['status-message'] ?? '',
    new RegExp(`words\\.txt is ${words.length} bytes, more than the ${words.length - 1} bytes left of --command-input-max-bytes`),
  );

  const stalled = await bed().createJob('command', { payload: { command: '/bin/cat', args: ['%IN'], inputs: [`${origin}/stalled`] } });
  const job = await bed().waitForState(stalled, ['SUCCESS', 'FAILED']);
  assert.equal(job.state, 'FAILED');
  assert.match(job['status-message'] ?? '', new RegExp(`input ${origin}/stalled: not downloaded within --command-fetch-timeout \\(1 s\\)`));
  await noWorkDirLeft();
});

test('the staging flags are checked at start, naming the flag and the value', async () => {
  const base = { 'zk-hosts': '127.0.0.1:2181' };
  await assert.rejects(
    compileExecutorOptions({ ...base, 'command-stage-dir': 'data' }),
    /--command-stage-dir must be an absolute directory path, got "data"/,
  );
  await assert.rejects(
    compileExecutorOptions({ ...base, 'command-stage-dir': join(scratch, 'none') }),
    /--command-stage-dir .*none: not an existing directory/,
  );
  await assert.rejects(
    compileExecutorOptions({ ...base, 'command-fetch-from': 'https://host/path' }),
    /--command-fetch-from must be an http\(s\) origin .*"https:\/\/host\/path"/,
  );
  await assert.rejects(
    compileExecutorOptions({ ...base, 'command-fetch-from': 'ftp://host' }),
    /--command-fetch-from must be an http\(s\) origin/,
  );
  await assert.rejects(compileExecutorOptions({ ...base, 'command-input-max-bytes': -1 }), /command-input-max-bytes/);
  const options = await compileExecutorOptions({ ...base, 'command-stage-dir': [data, results], 'command-fetch-from': `${origin}/` });
  assert.deepEqual(options.commandStage.dirs, [data, results]);
  assert.deepEqual(options.commandStage.fetchFrom, [`${origin}/`]);
  assert.equal(options.commandStage.maxInputBytes, 1024 ** 3);
  assert.equal(options.commandStage.fetchTimeoutMs, 60_000);
  const none = await compileExecutorOptions(base);
  assert.deepEqual([none.commandStage.dirs, none.commandStage.fetchFrom], [[], []]);
});
