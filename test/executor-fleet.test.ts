/**
 * Executors that differ: each its own name, each its own actions (issue 15, findings 1 and 6). Real
 * ZooKeeper, the real job API, and `job-executor` processes started as a user starts them.
 */
import assert from 'node:assert/strict';
import { hostname } from 'node:os';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';

const fixture = (name: string): string => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));
const ONLY_ALPHA = fixture('actions-fleet-a');
const ONLY_BETA = fixture('actions-fleet-b');
const NOTHING_LOADS = fixture('actions-unloadable');

/** How the process ended, or 'still running' after `ms`. */
function exitWithin<T>(exited: Promise<T>, ms: number): Promise<T | 'still running'> {
  return Promise.race([
    exited,
    new Promise<'still running'>((resolve) => {
      setTimeout(() => {
        resolve('still running');
      }, ms).unref();
    }),
  ]);
}

describe('a duplicate --name', () => {
  const bed = useExecutorTestbed();

  test('exits 1 within about one session timeout, naming the live executor that holds the name', async () => {
    const first = bed().spawnExecutor({ name: 'twin', sessionTimeoutSeconds: 2 });
    await first.waitForLine(/executor started/);
    const startedAt = Date.now();
    const second = bed().spawnExecutor({ name: 'twin', sessionTimeoutSeconds: 2 });
    const status = await exitWithin(second.exited, 15_000);
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

describe('executors with different actions', () => {
  const bed = useExecutorTestbed();

  test("each runs its own jobs; none fails another's", async () => {
    const a = bed().spawnExecutor({ name: 'a', threads: 1, actionsDirs: [ONLY_ALPHA] });
    const b = bed().spawnExecutor({ name: 'b', threads: 2, actionsDirs: [ONLY_BETA] });
    await Promise.all([a.waitForLine(/executor started/), b.waitForLine(/executor started/)]);
    // A is busy for 3 s, so B, idle, sees the waiting alpha jobs over and over meanwhile.
    const long = await bed().createJob('alpha', { payload: { seconds: 3 } });
    const longJob = await bed().waitForState(long, ['RUNNING', 'SUCCESS', 'FAILED']);
    assert.equal(longJob.state, 'RUNNING', `the long alpha job: ${longJob['status-message'] ?? ''}`);
    const ids = [];
    for (let i = 0; i < 4; i++) ids.push(await bed().createJob('alpha'), await bed().createJob('beta'));
    for (const id of [long, ...ids]) {
      const job = await bed().waitForState(id, ['SUCCESS', 'FAILED'], 30_000);
      assert.equal(job.state, 'SUCCESS', `${job.action} job ${id}: ${job['status-message'] ?? ''}`);
      assert.equal(job.executor?.split('@')[0], job.action === 'alpha' ? 'a' : 'b');
    }
    // Left to A, each waiting alpha entry is taken again by B only now and then, not in a loop.
    const leftToA = b.lines.filter((line) => line.includes('entry released') && line.includes('"action":"alpha"')).length;
    assert.ok(leftToA <= 4 * 5, `B released alpha entries ${leftToA} times in about 3 s`);
  });

  test('a job whose action no live executor offers ends FAILED 127 after the grace, naming that', async () => {
    const grace = ['--unknown-action-grace', '3'];
    const a = bed().spawnExecutor({ name: 'a', actionsDirs: [ONLY_ALPHA], extraArgs: grace });
    const b = bed().spawnExecutor({ name: 'b', actionsDirs: [ONLY_BETA], extraArgs: grace });
    await Promise.all([a.waitForLine(/executor started/), b.waitForLine(/executor started/)]);
    const createdAt = Date.now();
    const id = await bed().createJob('gamma');
    const job = await bed().waitForState(id, ['SUCCESS', 'FAILED'], 30_000);
    const waitedMs = Date.now() - createdAt;
    assert.equal(job.state, 'FAILED');
    assert.equal(job['return-code'], 127);
    assert.match(job['status-message'] ?? '', /no live executor offers action "gamma"/);
    assert.ok(waitedMs >= 3_000, `failed after ${waitedMs} ms, before the 3 s grace`);
    const alpha = await bed().createJob('alpha');
    assert.equal((await bed().waitForState(alpha, ['SUCCESS', 'FAILED'])).state, 'SUCCESS');
  });

  test('an executor with no loadable action refuses to start', async () => {
    const executor = bed().spawnExecutor({ actionsDirs: [NOTHING_LOADS] });
    assert.deepEqual(await exitWithin(executor.exited, 20_000), { code: 1, signal: null });
    assert.match(executor.lines.join('\n'), /job-executor: no action could be loaded from .*actions-unloadable/);
  });
});
