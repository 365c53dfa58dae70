/**
 * Actions that declare `isolation: 'in-process'` run in the executor's own event loop (no worker
 * thread); `--in-process never` puts them back in threads. Without a hard kill, a timeout or a cancel
 * aborts their signal, and one that ignores it is abandoned after the grace: its job ends, the slot
 * goes on, and what the action does later reaches nothing.
 */
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { waitFor } from '../src/harness/wait-for.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';

const IN_PROCESS_ACTIONS = fileURLToPath(new URL('./fixtures/actions-in-process', import.meta.url));
const bed = useExecutorTestbed();

describe('in-process actions', () => {
  test("run in the executor's main thread, or in a worker thread with --in-process never", async () => {
    const inProcess = bed().spawnExecutor({ threads: 2, actionsDirs: [IN_PROCESS_ACTIONS], name: 'in-process' });
    const first = await bed().waitForState(await bed().createJob('where'), ['SUCCESS', 'FAILED']);
    assert.equal(first['status-message'], `pid ${inProcess.pid} thread 0`);
    inProcess.signal('SIGTERM');
    await inProcess.exited;

    const threaded = bed().spawnExecutor({
      threads: 2,
      actionsDirs: [IN_PROCESS_ACTIONS],
      name: 'threaded',
      extraArgs: ['--in-process', 'never'],
    });
    const second = await bed().waitForState(await bed().createJob('where'), ['SUCCESS', 'FAILED']);
    assert.match(second['status-message'] ?? '', new RegExp(`^pid ${threaded.pid} thread [1-9]\\d*$`));
  });

  test('a cancel stops an in-process action through its signal, and the slot goes on', async () => {
    bed().spawnExecutor({ threads: 1, actionsDirs: [IN_PROCESS_ACTIONS] });
    const napping = await bed().createJob('nap', { payload: { ms: 60_000 } });
    await bed().waitForState(napping, ['RUNNING']);
    await bed().client.cancel(napping);
    assert.equal((await bed().waitForState(napping, ['CANCELED'], 10_000)).state, 'CANCELED');
    const next = await bed().waitForState(await bed().createJob('where'), ['SUCCESS', 'FAILED'], 15_000);
    assert.equal(next.state, 'SUCCESS');
  });

  test('one that ignores its signal is abandoned after the grace: its job times out and nothing it does later lands', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'in-process-'));
    try {
      const executor = bed().spawnExecutor({ threads: 1, actionsDirs: [IN_PROCESS_ACTIONS], killGraceSeconds: 1 });
      const stubborn = await bed().createJob('stubborn', { payload: { ms: 5000, dir }, timeout: 1 });
      const failed = await bed().waitForState(stubborn, ['SUCCESS', 'FAILED'], 20_000);
      assert.equal(failed.state, 'FAILED');
      assert.match(failed['status-message'] ?? '', /timed out after 1 s/);
      assert.ok(executor.lines.some((line) => line.includes('did not stop within the grace period')));
      // The one slot is free again although the action still runs.
      const next = await bed().waitForState(await bed().createJob('where'), ['SUCCESS', 'FAILED'], 15_000);
      assert.equal(next.state, 'SUCCESS');

      await waitFor(() => existsSync(path.join(dir, 'finished')), { timeoutMs: 20_000, message: 'the abandoned action to finish' });
      // Its late progress, log line and result reached nothing.
      await bed().waitForState(await bed().createJob('where'), ['SUCCESS'], 15_000);
      const later = (await bed().client.get(stubborn)).job;
      assert.equal(later.state, 'FAILED');
      assert.notEqual(later.progress, 99);
      assert.ok(!executor.lines.some((line) => line.includes('stubborn action finished')));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
