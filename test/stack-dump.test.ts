import assert from 'node:assert/strict';
import { once } from 'node:events';
import { describe, test, type TestContext } from 'node:test';
import { Worker } from 'node:worker_threads';
import { captureThreadStacks, formatStack, type ThreadStack } from '../src/executor/stack-dump.js';

const fixture = (name: string): URL => new URL(`./fixtures/stack-dump/${name}`, import.meta.url);
const SPIN = fixture('spin.js');
const IDLE = fixture('idle.js');
const BLOCKED = fixture('blocked.js');

// Generous, because a capture returns as soon as the thread is paused: only a loaded machine gets near it.
const RUNNING_TIMEOUT_MS = 5000;
// Each 'idle' result costs the whole wait; long enough that a loaded machine still answers within it.
const IDLE_TIMEOUT_MS = 1000;

/** Starts a fixture worker and resolves once it has posted that it is in position; the test terminates it. */
async function startWorker(t: TestContext, script: URL): Promise<Worker> {
  // Plain JavaScript: no `--import tsx` inherited, whose loader would run its own code in the thread.
  const worker = new Worker(script, { execArgv: [] });
  // Listening before anything else runs, so the first message cannot be missed; `once` rejects on 'error'.
  const inPosition = once(worker, 'message');
  t.after(() => worker.terminate());
  await inPosition;
  return worker;
}

/** A round trip through the worker's event loop, which a thread left paused could not make. */
async function ping(worker: Worker): Promise<number> {
  const started = performance.now();
  const answer = once(worker, 'message', { signal: AbortSignal.timeout(5000) });
  worker.postMessage('ping');
  assert.deepEqual(await answer, [{ pong: 'ping' }]);
  return performance.now() - started;
}

async function captureOne(threadId: number, timeoutMs: number): Promise<{ stack: ThreadStack; ms: number }> {
  const started = performance.now();
  const stacks = await captureThreadStacks([threadId], { timeoutMs });
  const ms = performance.now() - started;
  assert.deepEqual([...stacks.keys()], [threadId]);
  const stack = stacks.get(threadId);
  assert.ok(stack !== undefined);
  return { stack, ms };
}

/**
 * An idle fixture has just posted a message, and on a loaded machine the OS may stall it before it has finished
 * returning to its event loop; a capture then rightly finds it running Node's own code.
 */
function isDispatchTail(stack: ThreadStack): boolean {
  return stack.state === 'running' && stack.frames.every((frame) => frame.url.startsWith('node:'));
}

/** Captures an idle fixture until it is found idle (or three times). */
async function captureIdle(threadId: number): Promise<{ stack: ThreadStack; ms: number }> {
  for (let attempt = 1; ; attempt++) {
    const captured = await captureOne(threadId, IDLE_TIMEOUT_MS);
    if (!isDispatchTail(captured.stack) || attempt === 3) return captured;
  }
}

function assertIdleOrTail(stack: ThreadStack | undefined): void {
  assert.ok(stack !== undefined && (stack.state === 'idle' || isDispatchTail(stack)), stack === undefined ? 'missing' : formatStack(stack));
}

function assertSpinning(stack: ThreadStack | undefined, threadId: number): void {
  assert.equal(stack?.state, 'running', stack === undefined ? 'missing' : formatStack(stack));
  assert.equal(stack.threadId, threadId);
  assert.equal(stack.error, undefined);
  const names = stack.frames.map((frame) => frame.functionName);
  const at = names.indexOf('spinForever');
  assert.ok(at >= 0, `spinForever is on the stack: ${names.join(', ')}`);
  const spin = stack.frames[at];
  assert.equal(spin?.url, SPIN.href);
  assert.ok(spin.line >= 7 && spin.line <= 9, `spinForever's loop is on lines 7-9, not ${spin.line}`);
  assert.deepEqual(stack.frames[at + 1], { functionName: 'outerCaller', url: SPIN.href, line: 13, column: 3 });
}

function assertIdle(stack: ThreadStack | undefined, threadId: number): void {
  assert.deepEqual(stack, { threadId, state: 'idle', frames: [] }, stack === undefined ? 'missing' : formatStack(stack));
}

describe('captureThreadStacks', () => {
  test('a worker stuck in a synchronous loop is paused, read, and left spinning', async (t) => {
    const worker = await startWorker(t, SPIN);
    const { threadId } = worker;
    let exited = false;
    worker.once('exit', () => {
      exited = true;
    });

    const first = await captureOne(threadId, RUNNING_TIMEOUT_MS);
    assertSpinning(first.stack, threadId);
    // Still in the loop: a second capture finds it there again, and it has not exited in between.
    const second = await captureOne(threadId, RUNNING_TIMEOUT_MS);
    assertSpinning(second.stack, threadId);
    assert.equal(exited, false);
    t.diagnostic(`running: ${first.ms.toFixed(1)} ms, then ${second.ms.toFixed(1)} ms`);
    t.diagnostic(formatStack(first.stack).split('\n').slice(0, 4).join(' / '));

    assert.equal(await worker.terminate(), 1, 'terminate() stops the loop');
  });

  test('an idle worker is reported idle after the wait, and is not paused later', async (t) => {
    const worker = await startWorker(t, IDLE);
    const { stack, ms } = await captureIdle(worker.threadId);
    assertIdle(stack, worker.threadId);
    assert.ok(ms >= IDLE_TIMEOUT_MS * 0.95 && ms < IDLE_TIMEOUT_MS + 2000, `idle reported after ${ms.toFixed(0)} ms`);
    // The pause asked for waits for the thread's next JS; if it were still pending, this handler would hit it.
    const pongMs = await ping(worker);
    const again = await ping(worker);
    t.diagnostic(`idle: ${ms.toFixed(1)} ms (timeout ${IDLE_TIMEOUT_MS}); pongs after ${pongMs.toFixed(1)} and ${again.toFixed(1)} ms`);
  });

  test('a thread id with no worker is unavailable', async (t) => {
    const gone = await startWorker(t, IDLE);
    const goneId = gone.threadId;
    await gone.terminate();
    const ids = [123_456, goneId, 0];
    const stacks = await captureThreadStacks(ids, { timeoutMs: 200 });
    for (const threadId of ids) {
      const stack = stacks.get(threadId);
      assert.equal(stack?.state, 'unavailable');
      assert.deepEqual(stack.frames, []);
      assert.match(stack.error ?? '', /no such worker thread/);
    }
  });

  test('several workers are captured in one call, in parallel, and the ones not asked for are left alone', async (t) => {
    // One spinning thread only: on a two-core machine, each more would take a core from the threads that must answer.
    const workers = await Promise.all([SPIN, IDLE, IDLE, IDLE].map((script) => startWorker(t, script)));
    const [spin, idleA, idleB, bystander] = workers;
    assert.ok(spin !== undefined && idleA !== undefined && idleB !== undefined && bystander !== undefined);
    const asked = [spin, idleA, idleB].map((worker) => worker.threadId);
    await Promise.all([idleA, idleB].map(ping)); // past their start, so they have really gone idle

    const started = performance.now();
    const stacks = await captureThreadStacks([...asked, spin.threadId], { timeoutMs: IDLE_TIMEOUT_MS });
    const ms = performance.now() - started;
    assert.deepEqual([...stacks.keys()].sort(), [...asked].sort());
    assertSpinning(stacks.get(spin.threadId), spin.threadId);
    for (const idle of [idleA, idleB]) assertIdleOrTail(stacks.get(idle.threadId));
    // One after the other, the two idle waits alone would take twice the timeout.
    assert.ok(ms < 1.8 * IDLE_TIMEOUT_MS, `took ${ms.toFixed(0)} ms`);
    await Promise.all([idleA, idleB, bystander].map(ping));
    t.diagnostic(`spinning + 2 idle: ${ms.toFixed(1)} ms (timeout ${IDLE_TIMEOUT_MS})`);
  });

  test('concurrent captures of the same workers do not disturb each other', async (t) => {
    const [spin, idle] = await Promise.all([startWorker(t, SPIN), startWorker(t, IDLE)]);
    await ping(idle);
    const ids = [spin.threadId, idle.threadId];
    const started = performance.now();
    const results = await Promise.all([1, 2, 3].map(() => captureThreadStacks(ids, { timeoutMs: 2 * IDLE_TIMEOUT_MS })));
    const ms = performance.now() - started;
    for (const stacks of results) {
      assertSpinning(stacks.get(spin.threadId), spin.threadId);
      assertIdleOrTail(stacks.get(idle.threadId));
    }
    await ping(idle);
    assertSpinning((await captureOne(spin.threadId, RUNNING_TIMEOUT_MS)).stack, spin.threadId);
    assertIdle((await captureIdle(idle.threadId)).stack, idle.threadId);
    t.diagnostic(`3 concurrent captures of spin + idle: ${ms.toFixed(1)} ms`);
  });

  test('a worker that exits during the capture is unavailable, without waiting out the timeout', async (t) => {
    const worker = await startWorker(t, IDLE);
    const { threadId } = worker;
    const timeoutMs = 10_000;
    const started = performance.now();
    const capture = captureThreadStacks([threadId], { timeoutMs });
    await worker.terminate();
    const stack = (await capture).get(threadId);
    const ms = performance.now() - started;
    assert.equal(stack?.state, 'unavailable');
    // Depending on how far the capture got before the exit, the thread was gone before or after it attached.
    assert.match(stack.error ?? '', /exited during the capture|no such worker thread/);
    assert.ok(ms < timeoutMs / 2, `took ${ms.toFixed(0)} ms`);
    t.diagnostic(`exit during capture: ${ms.toFixed(1)} ms (${stack.error ?? ''})`);
  });

  test('a thread blocked outside JavaScript is unavailable, and runs on unpaused once unblocked', async (t) => {
    const worker = await startWorker(t, BLOCKED);
    // 'blocking' is posted just before the blocking call, so a capture may still find it in JS: poll.
    const deadline = performance.now() + 1500;
    let found: ThreadStack | undefined;
    while (found?.state !== 'unavailable' && performance.now() < deadline) found = (await captureOne(worker.threadId, 200)).stack;
    assert.equal(found?.state, 'unavailable');
    assert.match(found.error ?? '', /did not answer the inspector within 200 ms/);
    const pongMs = await ping(worker);
    t.diagnostic(`blocked: pong ${pongMs.toFixed(0)} ms later, once the child process ended`);
  });

  test('refuses a timeout that is not a positive number; asks nothing for no threads', async () => {
    await assert.rejects(captureThreadStacks([1], { timeoutMs: 0 }), RangeError);
    await assert.rejects(captureThreadStacks([1], { timeoutMs: Number.NaN }), RangeError);
    assert.equal((await captureThreadStacks([])).size, 0);
  });
});

describe('formatStack', () => {
  test('a running thread reads like an Error stack', () => {
    const stack: ThreadStack = {
      threadId: 7,
      state: 'running',
      frames: [
        { functionName: 'spinForever', url: 'file:///w/spin.js', line: 5, column: 3 },
        { functionName: '', url: 'file:///w/spin.js', line: 15, column: 1 },
        { functionName: 'evalSpin', url: '', line: 1, column: 22 },
      ],
    };
    assert.equal(
      formatStack(stack),
      [
        'worker thread 7 is running:',
        '    at spinForever (file:///w/spin.js:5:3)',
        '    at file:///w/spin.js:15:1',
        '    at evalSpin (<anonymous>:1:22)',
      ].join('\n'),
    );
    assert.match(formatStack({ ...stack, error: 'Debugger.disable failed' }), /\n {4}\(Debugger\.disable failed\)$/);
  });

  test('idle and unavailable threads get a one-line note', () => {
    assert.equal(
      formatStack({ threadId: 3, state: 'idle', frames: [] }),
      'worker thread 3 is idle: no JavaScript ran within the wait (it awaits I/O or a timer)',
    );
    assert.equal(
      formatStack({ threadId: 4, state: 'unavailable', frames: [], error: 'the thread exited during the capture' }),
      'worker thread 4 could not be inspected: the thread exited during the capture',
    );
  });
});
