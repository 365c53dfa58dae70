/**
 * Executors that differ: each its own name, each its own actions (issue 15, findings 1 and 6). Real
 * ZooKeeper, the real job API, and `job-executor` processes started as a user starts them.
 */
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { describe, test } from 'node:test';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';

describe('a duplicate --name', () => {
  const bed = useExecutorTestbed();

  test('exits 1 within about one session timeout, naming the live executor that holds the name', async () => {
    const first = bed().spawnExecutor({ name: 'twin', sessionTimeoutSeconds: 2 });
    await first.waitForLine(/executor started/);
    const startedAt = Date.now();
    const second = bed().spawnExecutor({ name: 'twin', sessionTimeoutSeconds: 2 });
    const status = await Promise.race([
      second.exited,
      new Promise<'still running'>((resolve) => {
        setTimeout(() => {
          resolve('still running');
        }, 15_000).unref();
      }),
    ]);
    assert.notEqual(status, 'still running', 'the second executor is still waiting for the name after 15 s');
    assert.deepEqual(status, { code: 1, signal: null });
    assert.ok(Date.now() - startedAt < 15_000);
    // From its session to its refusal: one session timeout (2 s) of patience for a stale registration,
    // and a little for the server's expiry granularity; not two timeouts, not forever.
    const at = (pattern: RegExp): number => Date.parse(second.lines.find((line) => pattern.test(line))?.slice(0, 24) ?? '');
    const patienceMs = at(/executor could not start/) - at(/zookeeper connected/);
    assert.ok(patienceMs >= 1_900 && patienceMs <= 3_500, `gave up ${patienceMs} ms after connecting`);
    const said = second.lines.join('\n');
    assert.match(said, /executor name "twin" is held by a live executor/);
    assert.ok(said.includes(`pid ${first.pid}`), `names the holder's pid ${first.pid}: ${said}`);
    assert.ok(said.includes(`host ${hostname()}`), 'names the holder host');
    const waits = second.lines.filter((line) => line.includes('waiting for it to expire')).length;
    assert.ok(waits <= 1, `logged the wait ${waits} times`);
    // The holder is unaffected.
    assert.equal(first.lines.filter((line) => /executor stopped|could not start/.test(line)).length, 0);
  });

  test('waits for the name of a killed executor to expire, then starts under it', async () => {
    const crashed = bed().spawnExecutor({ name: 'phoenix', sessionTimeoutSeconds: 2 });
    await crashed.waitForLine(/executor started/);
    await crashed.kill();
    // Its registration lives on until the server expires its session, about 2 s from now.
    const restarted = bed().spawnExecutor({ name: 'phoenix', sessionTimeoutSeconds: 2 });
    await restarted.waitForLine(/executor started/, 20_000);
    const id = await bed().createJob('noop');
    assert.equal((await bed().waitForState(id, ['SUCCESS', 'FAILED'])).state, 'SUCCESS');
  });
});
