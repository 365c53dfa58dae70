/**
 * A job API that stalls is said in the executor's log: once when a call has been waiting for more
 * than 5 s, once when the API answers again; not a line per retry, and not silence. Real ZooKeeper,
 * the real API (made to hang) and `job-executor` as a child process.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { waitFor } from '../src/harness/wait-for.js';
import { FaultInjector } from './fixtures/api-server-faults.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';

const faults = new FaultInjector();
const bed = useExecutorTestbed({
  api: { hooks: [faults.hook] },
  beforeReset: () => {
    faults.clear();
  },
});

const STALLED = /job API has not answered for 5 s/;
const RECOVERED = /job API answers again/;

describe('a stalled job API in the executor log', () => {
  test('one line when a call waits longer than 5 s, one when the API answers again', async () => {
    const executor = bed().spawnExecutor({ threads: 1 });
    await executor.waitForLine(/executor started/);
    // The executor's writes hang (its claim first); the test's own reads and creates go through.
    faults.inject({ kind: 'hang', match: (request) => request.method === 'POST' && request.path.startsWith('/api/job/') });
    const id = await bed().createJob('noop');
    await waitFor(() => faults.held > 0, { timeoutMs: 10_000, message: 'the executor to call the API for the job' });
    const held = Date.now();
    await executor.waitForLine(STALLED, 10_000);
    assert.ok(Date.now() - held < 9000, 'said within a few seconds of the stall');
    faults.clear();
    await executor.waitForLine(RECOVERED, 20_000);
    await bed().waitForState(id, ['SUCCESS']);
    assert.equal(executor.lines.filter((line) => STALLED.test(line)).length, 1, 'said once per stall');
    assert.equal(executor.lines.filter((line) => RECOVERED.test(line)).length, 1, 'said once per recovery');
  });
});
