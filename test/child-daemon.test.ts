/**
 * The one supervisor of child processes (src/harness/child-daemon.ts) with real children: small
 * `node -e` scripts that exit, ignore SIGTERM, print lines, read their input or report over IPC.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { ChildDaemon, describeExit, type ChildDaemonOptions } from '../src/harness/child-daemon.js';

const started: ChildDaemon[] = [];
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'child-daemon-test-'));
});

after(async () => {
  // Whatever a failed test left running, by its own PID.
  await Promise.all(started.map((child) => child.kill()));
  await rm(dir, { recursive: true, force: true });
});

/** `node -e script` under supervision. */
function node(script: string, options: Partial<ChildDaemonOptions> = {}): ChildDaemon {
  const child = ChildDaemon.spawn({ name: 'script', command: process.execPath, args: ['-e', script], ...options });
  started.push(child);
  return child;
}

// Keeps the child running until it is signalled.
const STAY = 'setInterval(() => undefined, 60_000);';

describe('ChildDaemon', () => {
  it('reports the exit of a child that ends on its own, with all its output read', async () => {
    const child = node("console.log('out 1'); console.error('err 1'); process.stdout.write('out 2 unterminated'); process.exitCode = 3;", {
      stdout: 'collect',
    });
    const status = await child.exited;
    assert.deepEqual(status, { code: 3, signal: null });
    assert.equal(describeExit(status), 'exited with code 3');
    assert.deepEqual(child.stdout.lines, ['out 1', 'out 2 unterminated']);
    assert.deepEqual(child.stderr.lines, ['err 1']);
    assert.equal(child.state, 'EXITED');
    assert.equal(child.running, false);
    // Stopping what has already exited signals nobody and hands back the same status.
    assert.deepEqual(await child.stop(), status);
    child.signal('SIGTERM');
  });

  it('stops with SIGTERM a child that honours it, and a second stop gets the same promise', async () => {
    const child = node(`process.on('SIGTERM', () => { console.error('got SIGTERM'); process.exit(0); }); console.error('ready'); ${STAY}`);
    await child.stderr.waitForLine(/^ready$/);
    const first = child.stop({ graceMs: 60_000 });
    const second = child.stop({ graceMs: 1 });
    assert.equal(second, first);
    assert.equal(child.state, 'STOPPING');
    assert.deepEqual(await first, { code: 0, signal: null });
    assert.ok(child.stderr.lines.includes('got SIGTERM'));
    assert.equal(child.state, 'EXITED');
  });

  it('kills with SIGKILL a child that ignores SIGTERM, once the grace time is over', async () => {
    const child = node(`process.on('SIGTERM', () => { console.error('ignoring SIGTERM'); }); console.error('ready'); ${STAY}`);
    await child.stderr.waitForLine(/^ready$/);
    const begun = performance.now();
    const status = await child.stop({ graceMs: 500 });
    assert.deepEqual(status, { code: null, signal: 'SIGKILL' });
    assert.equal(describeExit(status), 'was killed by SIGKILL');
    assert.ok(performance.now() - begun >= 450, 'SIGKILL came only after the grace time');
    assert.ok(child.stderr.lines.includes('ignoring SIGTERM'), 'SIGTERM was sent first');
  });

  it('kill() is SIGKILL at once, without a SIGTERM the child could act on', async () => {
    const child = node(`process.on('SIGTERM', () => { console.error('got SIGTERM'); }); console.error('ready'); ${STAY}`);
    await child.stderr.waitForLine(/^ready$/);
    assert.deepEqual(await child.kill(), { code: null, signal: 'SIGKILL' });
    assert.ok(!child.stderr.lines.includes('got SIGTERM'));
  });

  it('waitForLine finds a line already printed or still to come, and gives up on its deadline or at the end of the output', async () => {
    const child = node(
      `console.error('first'); process.stdin.resume(); process.stdin.on('end', () => { console.error('second'); process.exit(0); });`,
      { input: '' },
    );
    // stdin ends at once, so "second" follows "first" without any timer in the child.
    assert.equal(await child.stderr.waitForLine(/second/), 'second');
    assert.equal(await child.stderr.waitForLine(/fir/), 'first');
    await child.exited;
    await assert.rejects(child.stderr.waitForLine(/third/), /ended without it/);
    await assert.rejects(child.stdout.waitForLine(/anything/), /not collected/);

    const silent = node(`console.error('only line'); ${STAY}`);
    await silent.stderr.waitForLine(/only line/);
    const begun = performance.now();
    await assert.rejects(silent.stderr.waitForLine(/never/, 300), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.match(error.message, /not within 300 ms/);
      assert.match(error.message, /only line/, 'the error quotes what the process printed');
      return true;
    });
    assert.ok(performance.now() - begun >= 250);
    await silent.stop({ graceMs: 5000 });
  });

  it('keeps a bounded number of lines, the latest or the first, and counts them all', async () => {
    const script = "for (let i = 1; i <= 50; i++) console.error('line ' + i);";
    const latest = node(script, { stderr: { collect: { keptLines: 10 } } });
    const first = node(script, { stderr: { collect: { keptLines: 10, keep: 'first' } } });
    await Promise.all([latest.exited, first.exited]);
    assert.equal(latest.stderr.count, 50);
    assert.deepEqual(
      latest.stderr.lines,
      Array.from({ length: 10 }, (_, i) => `line ${String(41 + i)}`),
    );
    assert.equal(first.stderr.count, 50);
    assert.deepEqual(
      first.stderr.lines,
      Array.from({ length: 10 }, (_, i) => `line ${String(1 + i)}`),
    );
  });

  it('feeds its input, keeps its raw text when asked, and passes each line to listeners', async () => {
    const heard: string[] = [];
    const child = node('process.stdin.pipe(process.stdout);', { input: 'a\r\nb\n\nc', stdout: { collect: { keptChars: 1000 } } });
    child.stdout.onLine((line) => heard.push(line));
    await child.exited;
    assert.equal(child.stdout.text, 'a\r\nb\n\nc');
    assert.deepEqual(child.stdout.lines, ['a', 'b', '', 'c']);
    assert.deepEqual(heard, ['a', 'b', '', 'c']);
  });

  it('appends its output to a log file after a header, and says where this run starts', async () => {
    const logFile = join(dir, 'daemon.log');
    await writeFile(logFile, 'an earlier run\n');
    const child = node("console.log('to stdout'); console.error('to stderr');", {
      stdout: 'log',
      stderr: 'log',
      logFile: { path: logFile, header: 'test: a run' },
    });
    assert.deepEqual(await child.exited, { code: 0, signal: null });
    assert.equal(child.logOffset, 'an earlier run\n'.length);
    const log = await readFile(logFile, 'utf8');
    assert.match(log.slice(child.logOffset), /^--- \d{4}-\d\d-\d\dT[\d:.]+Z test: a run\nto stdout\nto stderr\n$/);
  });

  it('passes IPC messages on', async () => {
    const messages: unknown[] = [];
    const child = node("process.send({ type: 'ready', n: 1 }, () => process.disconnect());", {
      onMessage: (message) => messages.push(message),
    });
    await child.exited;
    assert.deepEqual(messages, [{ type: 'ready', n: 1 }]);
  });

  // With setpriv (util-linux) the command is wrapped; without it, run bare: its PID is its own either way.
  it("runs the command itself under setpriv --pdeathsig where it exists (the PID is the command's)", async () => {
    const child = node(`console.error('ready'); ${STAY}`, { parentDeathSignal: 'SIGKILL' });
    await child.stderr.waitForLine(/^ready$/);
    const commandLine = (await readFile(`/proc/${String(child.pid)}/cmdline`, 'utf8')).split('\0');
    assert.equal(commandLine[0], process.execPath);
    await child.stop({ graceMs: 5000 });
  });

  it('says why a command could not be started', async () => {
    const command = join(dir, 'no-such-command');
    await assert.rejects(ChildDaemon.start({ name: 'ghost', command }), (error: unknown) => {
      assert.ok(error instanceof Error);
      assert.match(error.message, /ghost could not be started .*ENOENT/);
      assert.ok(error.cause instanceof Error);
      return true;
    });
    assert.throws(() => ChildDaemon.spawn({ name: 'ghost', command }), /ghost could not be started/);
  });
});
