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

describe('a dead executor', () => {
  test('kill -9 mid-job: another executor re-runs it after the session timeout, and it ends final once', async () => {
    const doomed = bed().spawnExecutor({ threads: 1, name: 'doomed', sessionTimeoutSeconds: 3 });
    const id = await bed().createJob('sleep', { payload: { ms: 2000 } });
    const running = await bed().waitForState(id, ['RUNNING']);
    assert.match(running.executor ?? '', /^doomed@/);
    const rescuer = bed().spawnExecutor({ threads: 1, name: 'rescuer' });
    await rescuer.waitForLine(/executor started/);
    const killedAt = Date.now();
    await doomed.kill();

    const done = await bed().waitForState(id, ['SUCCESS', 'FAILED'], 30_000);
    assert.equal(done.state, 'SUCCESS');
    assert.equal(done.attempt, 2);
    assert.match(done.executor ?? '', /^rescuer@/);
    const rerun = await rescuer.waitForLine(new RegExp(`job re-run.*${id}|${id}.*job re-run`));
    assert.match(rerun, /executor doomed@[0-9a-f]{16} died while running the job/);
    // The entry came back only when the dead session expired, not before.
    assert.ok(Date.now() - killedAt >= 2000, 're-run before the session could have expired');
    await waitFor(async () => (await bed().queue.length()) === 0, { message: 'the entry consumed once' });
    assert.equal((await bed().client.get(id)).job.revision, done.revision, 'nothing wrote the job after it ended');
  });

  test('frozen past its session timeout: its action is aborted on resume and its late writes are refused', async () => {
    const frozen = bed().spawnExecutor({ threads: 1, name: 'frozen', sessionTimeoutSeconds: 2 });
    const id = await bed().createJob('sleep', { payload: { ms: 6000 } });
    const firstRun = await waitFor(
      async () => {
        const { job } = await bed().client.get(id);
        return job.progress > 0 ? job : undefined;
      },
      { message: 'progress from the first executor' },
    );
    frozen.signal('SIGSTOP');
    const second = bed().spawnExecutor({ threads: 1, name: 'thawed-out' });
    try {
      await waitFor(async () => (await bed().client.get(id)).job.executor?.startsWith('thawed-out@'), {
        timeoutMs: 20_000,
        message: 'the second executor to re-run the job',
      });
    } finally {
      frozen.signal('SIGCONT');
    }
    await frozen.waitForLine(/ZooKeeper session lost|session-lost|no longer this executor's/);
    await frozen.waitForLine(new RegExp(`stopping the action.*${id}|${id}.*stopping the action`));
    const done = await bed().waitForState(id, ['SUCCESS', 'FAILED'], 30_000);
    assert.equal(done.state, 'SUCCESS');
    assert.equal(done.attempt, 2);
    assert.match(done.executor ?? '', /^thawed-out@/);
    assert.ok(
      !frozen.lines.some((line) => line.includes('action finished') && line.includes(id)),
      'the frozen executor recorded no result',
    );
    // With a new session, the thawed executor goes on serving.
    await second.kill();
    const later = await bed().createJob('noop', { payload: { message: 'after the thaw' } });
    const served = await bed().waitForState(later, ['SUCCESS', 'FAILED'], 30_000);
    assert.equal(served.state, 'SUCCESS');
    assert.match(served.executor ?? '', /^frozen@/);
    assert.notEqual(served.executor, firstRun.executor, 'the same name on a new session');
  });
});

describe('the job API down', () => {
  test('stopped for 10 s mid-run: no job is lost', async () => {
    const executor = bed().spawnExecutor({ threads: 2 });
    const ids = await Promise.all(Array.from({ length: 6 }, () => bed().createJob('sleep', { payload: { ms: 1500 } })));
    await waitFor(async () => (await bed().client.countByState()).RUNNING === 2, { message: 'two jobs running' });
    await bed().api.stop();
    const stoppedAt = Date.now();
    await executor.waitForLine(/job API unreachable: taking no new jobs/);
    await waitFor(() => Date.now() - stoppedAt >= 10_000, { timeoutMs: 12_000, message: 'ten seconds of outage' });
    await bed().api.restart();
    await executor.waitForLine(/job API reachable again/, 40_000);
    const jobs = await Promise.all(ids.map((id) => bed().waitForState(id, ['SUCCESS', 'FAILED'], 60_000)));
    assert.deepEqual(
      jobs.map((job) => job.state),
      ids.map(() => 'SUCCESS'),
    );
    await waitFor(async () => (await bed().queue.length()) === 0, { message: 'every entry consumed' });
  });

  test('answering 503 for 6 s: requests stay few (back-off, one probe at a time), and the jobs finish', async (t) => {
    bed().spawnExecutor({ threads: 2 });
    const ids = await Promise.all(Array.from({ length: 4 }, () => bed().createJob('sleep', { payload: { ms: 1000 } })));
    await waitFor(async () => (await bed().client.countByState()).RUNNING === 2, { message: 'two jobs running' });
    faults.inject({ kind: { status: 503 } });
    const since = Date.now();
    await waitFor(() => Date.now() - since >= 6000, { timeoutMs: 8000, message: 'six seconds of 503s' });
    const hits = faults.hits;
    faults.clear();
    t.diagnostic(`${hits} requests in 6 s of 503s`);
    // 2 slots over 6 s: a few write retries each with growing pauses, and one probe at a time.
    assert.ok(hits <= 30, `${hits} requests in 6 s while the API answered 503`);
    const jobs = await Promise.all(ids.map((id) => bed().waitForState(id, ['SUCCESS', 'FAILED'], 60_000)));
    assert.deepEqual(
      jobs.map((job) => job.state),
      ids.map(() => 'SUCCESS'),
    );
  });
});

describe('a lost answer', () => {
  test('to a claim: the executor reads the job again instead of releasing it, and runs it once', async () => {
    const executor = bed().spawnExecutor({ threads: 1 });
    // The first job tells the executor which API this is; from then on it claims in one request.
    assert.equal((await bed().waitForState(await bed().createJob('noop'), ['SUCCESS', 'FAILED'])).state, 'SUCCESS');
    // Its next request is the claim of the job below (sent as job operations, the executor's way of writing).
    faults.inject({
      kind: 'drop-reply',
      match: (request) => request.method === 'POST' && request.path === '/api/job/operations',
      times: 1,
    });
    const id = await bed().createJob('noop', { payload: { message: 'claimed once' } });
    const done = await bed().waitForState(id, ['SUCCESS', 'FAILED'], 30_000);
    assert.equal(faults.hits, 1, 'the claim lost its answer');
    assert.equal(done.state, 'SUCCESS');
    assert.equal(done.attempt, 1);
    assert.equal(done['status-message'], 'claimed once');
    await waitFor(async () => (await bed().queue.length()) === 0, { message: 'entry consumed' });
    assert.ok(!executor.lines.some((line) => line.includes('entry released') && line.includes(id)), 'the entry was not released');
  });
});

describe('ZooKeeper restarted', () => {
  test('the executor reconnects and goes on serving', async () => {
    const executor = bed().spawnExecutor({ threads: 2, sessionTimeoutSeconds: 10 });
    const before = await bed().createJob('noop');
    assert.equal((await bed().waitForState(before, ['SUCCESS', 'FAILED'])).state, 'SUCCESS');
    const running = await bed().createJob('sleep', { payload: { ms: 2000 } });
    await bed().waitForState(running, ['RUNNING']);
    await bed().zk.restart();
    await bed().zkClient.waitForConnected(AbortSignal.timeout(20_000));
    const afterwards = await bed().createJob('noop');
    assert.equal((await bed().waitForState(afterwards, ['SUCCESS', 'FAILED'], 30_000)).state, 'SUCCESS');
    assert.equal((await bed().waitForState(running, ['SUCCESS', 'FAILED'], 30_000)).state, 'SUCCESS');
    assert.ok(executor.lines.some((line) => /zookeeper (suspended|connected)/.test(line)));
  });
});
