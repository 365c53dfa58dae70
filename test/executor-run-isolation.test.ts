/**
 * Stopping a run can only ever affect that run (issue 13, defect 1): a loss noticed after the action
 * has ended (here a progress write refused because the job was canceled meanwhile) must not reach
 * the slot's thread, which by then runs the slot's next job.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';
import { waitFor } from '../src/harness/wait-for.js';
import { FaultInjector } from './fixtures/api-server-faults.js';
import { useExecutorTestbed, type ExecutorProcess } from './fixtures/executor-testbed.js';

const faults = new FaultInjector();
const bed = useExecutorTestbed({
  api: { hooks: [faults.hook] },
  beforeReset: () => {
    faults.clear();
  },
});

const KILL_GRACE_SECONDS = 2;

/** Until the executor's SIGUSR1 dump says no job is running: the end of the run has been handled. */
async function untilNoJobRuns(executor: ExecutorProcess): Promise<void> {
  await waitFor(
    () => {
      if (executor.lines.some((line) => line.includes('stack dump: no job is running'))) return true;
      executor.signal('SIGUSR1');
      return false;
    },
    { timeoutMs: 20_000, intervalMs: 500, message: 'the executor to say that no job is running' },
  );
}

describe('a run stopped after its action ended', () => {
  test("a cancel refusing the last progress write leaves the slot's next job alone", async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'run-isolation-'));
    try {
      const executor = bed().spawnExecutor({ threads: 1, killGraceSeconds: KILL_GRACE_SECONDS });
      const first = await bed().createJob('handshake', { payload: { dir } });
      await bed().waitForState(first, ['RUNNING']);
      // Queued now, so it goes to the same slot (and thread) as soon as the first job's entry is done with.
      const next = await bed().createJob('sleep', { payload: { ms: 2 * KILL_GRACE_SECONDS * 1000 } });

      // The first job's progress write leaves, and is held on its way to the API...
      faults.inject({ kind: 'hold', match: (request) => request.method === 'POST' && request.path === '/api/job/operations', times: 1 });
      await writeFile(path.join(dir, 'report'), '');
      await waitFor(() => faults.held === 1, { message: 'the progress write to be held' });
      // ...while the action returns and the executor ends the run, waiting only for that write.
      await writeFile(path.join(dir, 'return'), '');
      await untilNoJobRuns(executor);
      // The job is canceled meanwhile, so the write is refused once it goes on: the loss is noticed
      // after the run has ended.
      await bed().client.cancel(first);
      faults.clear();

      await executor.waitForLine(new RegExp(`${first}.*the job is no longer ours|the job is no longer ours.*${first}`));
      assert.equal((await bed().client.get(first)).job.state, 'CANCELED');
      const done = await bed().waitForState(next, ['SUCCESS', 'FAILED'], 30_000);
      assert.equal(done.state, 'SUCCESS', `the next job ended ${done.state}: ${done['status-message'] ?? ''}`);
      assert.equal(done.attempt, 1);
      assert.ok(!executor.lines.some((line) => line.includes('its thread is terminated')), 'no thread was terminated');
      await waitFor(async () => (await bed().queue.length()) === 0, { message: 'both entries consumed' });
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
