/**
 * `job-distributor` as child processes on a real ZooKeeper and the real job API: election and
 * failover, idempotent ticks under split brain, the queue reconciler, and a clean stop.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { JobDocument } from '../src/api/job/document.js';
import { waitFor } from '../src/harness/wait-for.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';

const bed = useExecutorTestbed();

/** The jobs of one action created since `since`, every page. */
async function jobsOf(action: string, since: Date): Promise<JobDocument[]> {
  const { jobs } = await bed().client.search({ filter: `action='${action}' and created>='${since.toISOString()}'`, last: 10_000 });
  return jobs;
}

describe('job-distributor', () => {
  it('one of two distributors leads; after kill -9 the other takes over within the session timeout + 1 s', async () => {
    const { client } = bed();
    const before = await client.count("action='noop'");
    const first = bed().spawnDistributor({ names: ['ticker'] });
    await first.waitForLine(/distribution leading/);
    const second = bed().spawnDistributor({ names: ['ticker'] });
    await second.waitForLine(/distribution campaigning/);
    await waitFor(async () => (await client.count("action='noop'")) >= before + 6, {
      timeoutMs: 10_000,
      message: 'the leader to create jobs',
    });
    assert.equal(
      second.lines.some((line) => /distribution leading/.test(line)),
      false,
      'the standby must not lead while the leader lives',
    );

    const killedAt = Date.now();
    await first.kill();
    await second.waitForLine(/distribution leading/, 10_000);
    const takeoverMs = Date.now() - killedAt;
    assert.ok(takeoverMs <= 4000 + 1000, `took over after ${takeoverMs} ms (session timeout 4 s)`);
    const afterTakeover = await client.count("action='noop'");
    await waitFor(async () => (await client.count("action='noop'")) >= afterTakeover + 3, {
      timeoutMs: 10_000,
      message: 'the new leader to create jobs',
    });
  });

  it('two processes that both lead (separate elections) create each job of a tick once', async () => {
    const since = new Date();
    const a = bed().spawnDistributor({ names: ['ticker'], electionPath: `${bed().electionPath}/a` });
    const b = bed().spawnDistributor({ names: ['ticker'], electionPath: `${bed().electionPath}/b` });
    await Promise.all([a.waitForLine(/distribution leading/), b.waitForLine(/distribution leading/)]);
    // Both must have run the same ticks: wait until each reports some that the other created.
    await waitFor(() => [a, b].every((p) => p.lines.some((line) => /tick done.*"existing":[1-9]/.test(line))), {
      timeoutMs: 15_000,
      message: 'both distributors to run a tick the other had created',
    });
    await Promise.all([a.kill(), b.kill()]);
    const jobs = await jobsOf('noop', since);
    const keys = jobs.map((job) => job['idempotency-key']);
    assert.equal(new Set(keys).size, keys.length, 'one job per idempotency key');
    const perTick = new Map<string, string[]>();
    for (const job of jobs) {
      const [, , tick] = (job['idempotency-key'] ?? '').split('/');
      perTick.set(tick ?? '', [...(perTick.get(tick ?? '') ?? []), job['target-resource']?.href ?? '-']);
    }
    for (const [tick, targets] of perTick) assert.deepEqual(targets.sort(), ['test/a', 'test/b', 'test/c'], `tick ${tick}`);
    // Each job enqueued once, by the process that created it. The kill may fall between a tick's
    // persist and its enqueue: such jobs (of the last tick only) are the reconciler's to enqueue.
    const { zkClient, queuePath } = bed();
    const names = await zkClient.getChildren(`${queuePath}/entries`);
    const enqueued = await Promise.all(
      names.map(async (name) => (await zkClient.getData(`${queuePath}/entries/${name}`)).data.toString('utf8')),
    );
    assert.equal(new Set(enqueued).size, enqueued.length, 'no job enqueued twice');
    const ids = new Set(jobs.map((job) => job.id));
    assert.ok(
      enqueued.every((id) => ids.has(id)),
      'every entry is a job of these ticks',
    );
    assert.ok(jobs.length - enqueued.length <= 3, `${String(jobs.length - enqueued.length)} jobs not enqueued: more than the last tick's`);
  });

  it('SIGUSR1 tells what it does; SIGTERM during a one-hour wait exits within 10 s and releases the election node', async () => {
    const distributor = bed().spawnDistributor({ names: ['hourly'] });
    await distributor.waitForLine(/distribution leading/);
    const electionNode = `${bed().electionPath}/hourly`;
    assert.equal((await bed().zkClient.getChildren(electionNode)).length, 1);
    distributor.signal('SIGUSR1');
    const status = await distributor.waitForLine(/distribution status/);
    assert.match(
      status,
      /"distribution":"hourly","state":"LEADING","schedule":"every 3600 s","nextTick":"\d{4}-\d\d-\d\dT\d\d:00:00.000Z"/,
    );
    const stoppedAt = Date.now();
    distributor.signal('SIGTERM');
    const exit = await distributor.exited;
    const elapsed = Date.now() - stoppedAt;
    assert.deepEqual(exit, { code: 0, signal: null });
    assert.ok(elapsed < 10_000, `exited after ${elapsed} ms`);
    assert.deepEqual(await bed().zkClient.getChildren(electionNode), []);
  });

  it('SIGTERM in the middle of a tick that ignores its signal still exits at once', async () => {
    const distributor = bed().spawnDistributor({ names: ['stuck'] });
    await distributor.waitForLine(/stuck task started/);
    const stoppedAt = Date.now();
    distributor.signal('SIGTERM');
    assert.deepEqual(await distributor.exited, { code: 0, signal: null });
    assert.ok(Date.now() - stoppedAt < 10_000);
  });

  it('runs the queue reconciler: a job persisted but never enqueued is enqueued and run', async () => {
    const { id } = await bed().client.create({ action: 'noop' });
    bed().spawnExecutor();
    const distributor = bed().spawnDistributor({ names: ['queue_reconciler'], extraArgs: ['--schedule', 'queue_reconciler=1s'] });
    const job = await bed().waitForState(id, ['SUCCESS'], 20_000);
    assert.equal(job.attempt, 1);
    await distributor.waitForLine(/stranded jobs put back in the queue/);
  });

  it('runs the queue reconciler: a RUNNING job whose executor died and whose entry was lost is requeued and finishes', async () => {
    const first = bed().spawnExecutor({ name: 'doomed' });
    const id = await bed().createJob('sleep', { payload: { ms: 2000 } });
    await bed().waitForState(id, ['RUNNING']);
    await first.kill();
    // ZooKeeper loses the entry (as with a restored snapshot): only the reconciler can bring the job back.
    const entries = await bed().zkClient.getChildren(`${bed().queuePath}/entries`);
    await Promise.all(entries.map((entry) => bed().zkClient.remove(`${bed().queuePath}/entries/${entry}`)));
    bed().spawnExecutor({ name: 'rescuer' });
    bed().spawnDistributor({ names: ['queue_reconciler'], extraArgs: ['--schedule', 'queue_reconciler=1s'] });
    const job = await bed().waitForState(id, ['SUCCESS'], 30_000);
    assert.equal(job.attempt, 2);
    assert.match(job.executor ?? '', /^rescuer@/);
  });

  it('refuses an unknown distribution naming the available ones, and a bad --schedule, with one line and exit codes 1 and 2', async () => {
    const unknown = bed().spawnDistributor({ names: ['nope'] });
    assert.deepEqual(await unknown.exited, { code: 1, signal: null });
    assert.match(unknown.lines.join('\n'), /job-distributor: unknown distribution nope; available: .*cleanup_jobs.*ticker/);
    const badSchedule = bed().spawnDistributor({ names: ['ticker'], extraArgs: ['--schedule', 'ticker=61 * * * *'] });
    assert.deepEqual(await badSchedule.exited, { code: 2, signal: null });
    assert.match(badSchedule.lines.join('\n'), /--schedule ticker: schedule.cron "61 \* \* \* \*" is not a valid cron expression/);
    const nothing = bed().spawnDistributor({ names: [] });
    assert.deepEqual(await nothing.exited, { code: 2, signal: null });
    assert.match(nothing.lines.join('\n'), /name the distributions to run/);
  });
});
