import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { JobDocument } from '../src/api/job/document.js';
import { waitFor } from '../src/harness/wait-for.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';

const bed = useExecutorTestbed();

/** Most jobs whose [started, updated] intervals overlap at one instant, from the server's own timestamps. */
function maxOverlap(jobs: readonly JobDocument[]): number {
  const events: [number, number][] = [];
  for (const job of jobs) {
    assert.ok(job.started !== undefined, `${job.id} has no start`);
    events.push([Date.parse(job.started), 1], [Date.parse(job.updated), -1]);
  }
  // An end and a start at the same millisecond: the end first, as the slot is freed before it claims again.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let current = 0;
  let most = 0;
  for (const [, delta] of events) {
    current += delta;
    most = Math.max(most, current);
  }
  return most;
}

describe('slots', () => {
  test('3 threads never run more than 3 jobs at once, and run that many', async () => {
    bed().spawnExecutor({ threads: 3 });
    const ids = await Promise.all(Array.from({ length: 12 }, () => bed().createJob('sleep', { payload: { ms: 300 } })));
    const jobs = await Promise.all(ids.map((id) => bed().waitForState(id, ['SUCCESS', 'FAILED'], 30_000)));
    assert.deepEqual(
      jobs.map((job) => job.state),
      ids.map(() => 'SUCCESS'),
    );
    assert.equal(maxOverlap(jobs), 3);
  });
});

describe('timeouts and cancellation', () => {
  test('an action stuck in while (true) is timed out, its thread killed, and the slot serves the next job', async () => {
    const executor = bed().spawnExecutor({ threads: 1 });
    const stuck = await bed().createJob('spin', { timeout: 1 });
    const next = await bed().createJob('noop', { payload: { message: 'after the spin' } });
    const failed = await bed().waitForState(stuck, ['FAILED', 'SUCCESS']);
    assert.equal(failed.state, 'FAILED');
    assert.equal(failed['return-code'], 124);
    assert.equal(failed['status-message'], 'timed out after 1 s');
    const ok = await bed().waitForState(next, ['SUCCESS', 'FAILED']);
    assert.equal(ok.state, 'SUCCESS');
    await executor.waitForLine(/its thread is terminated/);
  });

  test('cancel reaches a running action within 2 s and the job ends CANCELED', async () => {
    const executor = bed().spawnExecutor({ threads: 1 });
    const id = await bed().createJob('sleep', { payload: { ms: 60_000 } });
    await waitFor(async () => (await bed().client.get(id)).job.progress > 0, { message: 'the action to report progress' });
    const canceledAt = Date.now();
    await bed().client.cancel(id);
    const line = await executor.waitForLine(
      new RegExp(`action stopped: the job is no longer ours.*${id}|${id}.*action stopped: the job is no longer ours`),
    );
    assert.ok(Date.now() - canceledAt <= 2000 + 200, `noticed after ${Date.now() - canceledAt} ms`);
    assert.match(line, /"reason":"canceled"/);
    const job = (await bed().client.get(id)).job;
    assert.equal(job.state, 'CANCELED');
    await waitFor(async () => (await bed().queue.length()) === 0, { message: 'entry consumed' });
  });

  test('cancel stops a job stuck in while (true) through the same path', async () => {
    bed().spawnExecutor({ threads: 1 });
    const id = await bed().createJob('spin', { timeout: 600 });
    await waitFor(async () => (await bed().client.get(id)).job.progress === 5, { message: 'the action to start spinning' });
    await bed().client.cancel(id);
    await waitFor(async () => (await bed().queue.length()) === 0, { message: 'entry consumed after the cancel', timeoutMs: 5000 });
    assert.equal((await bed().client.get(id)).job.state, 'CANCELED');
  });
});

describe('graceful stop', () => {
  test('SIGTERM lets a running job finish within the shutdown timeout, then exits 0', async () => {
    const executor = bed().spawnExecutor({ threads: 1, extraArgs: ['--shutdown-timeout', '20'] });
    const id = await bed().createJob('sleep', { payload: { ms: 1500 } });
    await bed().waitForState(id, ['RUNNING']);
    executor.signal('SIGTERM');
    const exit = await executor.exited;
    assert.deepEqual(exit, { code: 0, signal: null });
    const job = (await bed().client.get(id)).job;
    assert.equal(job.state, 'SUCCESS');
    assert.equal(await bed().queue.length(), 0);
  });

  test('a job that outlasts the shutdown timeout is put back to QUEUED and released; another executor runs it', async () => {
    const first = bed().spawnExecutor({ threads: 1, name: 'first', extraArgs: ['--shutdown-timeout', '1'] });
    const id = await bed().createJob('sleep', { payload: { ms: 3000 } });
    await bed().waitForState(id, ['RUNNING']);
    first.signal('SIGTERM');
    assert.deepEqual(await first.exited, { code: 0, signal: null });
    const requeued = (await bed().client.get(id)).job;
    assert.equal(requeued.state, 'QUEUED');
    assert.equal(requeued.executor, undefined);
    assert.match(requeued['status-message'] ?? '', /executor first stopped before the job finished.*put back in the queue/);
    assert.equal(await bed().queue.length(), 1);

    bed().spawnExecutor({ threads: 1, name: 'second' });
    const done = await bed().waitForState(id, ['SUCCESS', 'FAILED']);
    assert.equal(done.state, 'SUCCESS');
    assert.equal(done.attempt, 2);
    assert.match(done.executor ?? '', /^second@/);
  });

  test('a second SIGTERM skips the wait', async () => {
    const executor = bed().spawnExecutor({ threads: 1, extraArgs: ['--shutdown-timeout', '600'] });
    const id = await bed().createJob('sleep', { payload: { ms: 60_000 } });
    await bed().waitForState(id, ['RUNNING']);
    executor.signal('SIGTERM');
    await executor.waitForLine(/stopping: taking no new jobs/);
    executor.signal('SIGTERM');
    assert.deepEqual(await executor.exited, { code: 0, signal: null });
    assert.equal((await bed().client.get(id)).job.state, 'QUEUED');
  });
});

describe('SIGUSR1', () => {
  test('logs every running job with the stack of the code it runs now, and the executor keeps running', async () => {
    const executor = bed().spawnExecutor({ threads: 2 });
    const stuck = await bed().createJob('spin', { timeout: 600 });
    const sleeping = await bed().createJob('sleep', { payload: { ms: 60_000 } });
    await waitFor(async () => (await bed().client.get(stuck)).job.progress === 5, { message: 'the spin to start' });
    await bed().waitForState(sleeping, ['RUNNING']);
    const dumpLine = new RegExp(`stack dump: job ${stuck} \\(spin\\) on slot \\d, running [\\d.]+ s, progress 5% \\(about to spin\\)`);
    // The progress comes 20 ms before the loop starts, and a dump that lands just then catches the
    // timer's callback on its way into the loop: dump again until the loop is what it shows.
    let stack = '';
    await waitFor(
      async () => {
        const from = executor.lines.length;
        executor.signal('SIGUSR1');
        await waitFor(() => executor.lines.slice(from).some((line) => dumpLine.test(line)), { message: 'the stack dump' });
        const index = executor.lines.findIndex((line, at) => at >= from && dumpLine.test(line));
        stack = executor.lines.slice(index, index + 6).join('\n');
        return /at spinForever \(.*spin\.ts:\d+:\d+\)[\s\S]*at stuckInALoop \(/.test(stack);
      },
      { timeoutMs: 10_000, message: 'a stack dump showing the loop' },
    ).catch(() => undefined);
    assert.match(stack, /at spinForever \(.*spin\.ts:\d+:\d+\)[\s\S]*at stuckInALoop \(/);
    await executor.waitForLine(new RegExp(`stack dump: job ${sleeping} \\(sleep\\)`));
    const next = await bed().createJob('noop');
    await bed().client.cancel(stuck);
    assert.equal((await bed().waitForState(next, ['SUCCESS', 'FAILED'])).state, 'SUCCESS');
  });
});
