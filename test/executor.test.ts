import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';

const bed = useExecutorTestbed();

describe('job-executor runs jobs', () => {
  test('an action returning 0, a non-zero code, or throwing ends SUCCESS or FAILED', async () => {
    const executor = bed().spawnExecutor({ threads: 2 });
    const ok = await bed().createJob('noop', { payload: { message: 'all good' } });
    const bad = await bed().createJob('noop', { payload: { returnCode: 3, message: 'three' } });
    const threw = await bed().createJob('noop', { payload: { throw: 'boom' } });
    const success = await bed().waitForState(ok, ['SUCCESS', 'FAILED']);
    assert.equal(success.state, 'SUCCESS');
    assert.equal(success['return-code'], 0);
    assert.equal(success['status-message'], 'all good');
    assert.equal(success.progress, 100);
    assert.equal(success.attempt, 1);
    const failed = await bed().waitForState(bad, ['SUCCESS', 'FAILED']);
    assert.equal(failed.state, 'FAILED');
    assert.equal(failed['return-code'], 3);
    const thrown = await bed().waitForState(threw, ['SUCCESS', 'FAILED']);
    assert.equal(thrown.state, 'FAILED');
    assert.equal(thrown['return-code'], 1);
    assert.match(thrown['status-message'] ?? '', /^Error: boom\n\s+at /);
    const huge = await bed().createJob('noop', { payload: { returnCode: 2 ** 40 } });
    const refused = await bed().waitForState(huge, ['SUCCESS', 'FAILED']);
    assert.equal(refused['return-code'], 1);
    assert.equal(refused['status-message'], 'the action returned a returnCode of 1099511627776, which is not a 32-bit integer');
    await executor.waitForLine(new RegExp(`action finished.*${threw}`));
    assert.equal(await bed().queue.length(), 0);
  });

  test("an action's api reaches the job API with the executor's credentials", async () => {
    bed().spawnExecutor({ threads: 1 });
    const first = await bed().createJob('count_jobs');
    const done = await bed().waitForState(first, ['SUCCESS', 'FAILED']);
    assert.equal(done['status-message'], '1 count_jobs jobs; this one is RUNNING');
  });
});
