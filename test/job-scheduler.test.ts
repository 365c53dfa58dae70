/**
 * Delayed and expiring jobs end to end, on a real ZooKeeper and job API, with `job-distributor
 * job_scheduler`, executors and jobctl as child processes: a job `--in 3s` starts 3 to 4 s later (also
 * when the scheduler's leader is killed meanwhile), 10,000 delayed jobs leave the queue empty until
 * due, expired jobs never run, the reconciler leaves future jobs alone, bad --at/--in are refused.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { NewJob } from '../src/api/client/inputs.js';
import { waitFor } from '../src/harness/wait-for.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';
import { killJobctlProcesses, runJobctl } from './fixtures/jobctl-process.js';

const bed = useExecutorTestbed({ api: { maxBulkCreate: 1000 } });
let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'job-scheduler-test-'));
});

after(async () => {
  await killJobctlProcesses();
  await rm(dir, { recursive: true, force: true });
});

/**
 * How late after its not-before a job may start: the scheduler's 1 s, plus room for a loaded 2-core
 * machine (enqueue, take, claim). Measured on an idle machine: see the assertion messages.
 */
const START_WITHIN_MS = 1500;

async function entries(): Promise<string[]> {
  const { zkClient, queuePath } = bed();
  if ((await zkClient.exists(`${queuePath}/entries`)) === undefined) return [];
  const names = await zkClient.getChildren(`${queuePath}/entries`);
  return Promise.all(names.map(async (name) => (await zkClient.getData(`${queuePath}/entries/${name}`)).data.toString('utf8')));
}

function jobctl(args: readonly string[]): ReturnType<typeof runJobctl> {
  const { api, zk, queuePath } = bed();
  return runJobctl([...args, '--api-url', api.baseUrl, '--zk-hosts', zk.connectionString, '--queue-path', queuePath], {
    cwd: dir,
    env: { JOBCTL_API_KEY: api.adminKey.key, JOBCTL_API_SECRET: api.adminKey.secret },
  });
}

async function createIn(seconds: number): Promise<{ id: string; notBefore: number }> {
  const result = await jobctl(['create', 'noop', '--in', `${String(seconds)}s`, '--json']);
  assert.equal(result.code, 0, result.stderr);
  const created = JSON.parse(result.stdout) as { id: string; notBefore?: string; enqueued: boolean };
  assert.equal(created.enqueued, false, 'a delayed job is not enqueued by jobctl');
  assert.ok(created.notBefore !== undefined, result.stdout);
  return { id: created.id, notBefore: Date.parse(created.notBefore) };
}

describe('job_scheduler', () => {
  it('a job created --in 3s starts between 3 and 4 s later', async () => {
    bed().spawnExecutor();
    const scheduler = bed().spawnDistributor({ names: ['job_scheduler'] });
    await scheduler.waitForLine(/distribution leading/);
    const { id, notBefore } = await createIn(3);
    assert.deepEqual(await entries(), [], 'no entry before it is due');
    const job = await bed().waitForState(id, ['SUCCESS'], 15_000);
    const late = Date.parse(job.started ?? '') - notBefore;
    assert.ok(late >= 0, `started ${String(late)} ms after its not-before`);
    assert.ok(late <= START_WITHIN_MS, `started ${String(late)} ms after its not-before (at most ${String(START_WITHIN_MS)})`);
    process.stderr.write(`# --in 3s: started ${String(late)} ms after its not-before\n`);
  });

  it('the same when the leader is killed (-9) meanwhile: the standby enqueues it once, on time', async () => {
    bed().spawnExecutor();
    // A 2 s session: the standby leads about 2 s after the kill, before the job is due.
    const first = bed().spawnDistributor({ names: ['job_scheduler'], sessionTimeoutSeconds: 2 });
    await first.waitForLine(/distribution leading/);
    const second = bed().spawnDistributor({ names: ['job_scheduler'], sessionTimeoutSeconds: 2 });
    await second.waitForLine(/distribution campaigning/);
    const { id, notBefore } = await createIn(3);
    await first.kill();
    await second.waitForLine(/distribution leading/, 10_000);
    const job = await bed().waitForState(id, ['SUCCESS'], 15_000);
    const late = Date.parse(job.started ?? '') - notBefore;
    assert.ok(late >= 0 && late <= START_WITHIN_MS, `started ${String(late)} ms after its not-before`);
    assert.equal(job.attempt, 1, 'run once');
    process.stderr.write(`# --in 3s, leader killed: started ${String(late)} ms after its not-before\n`);
  });

  it('10,000 delayed jobs leave the queue empty until due; those made due arrive, once each', async () => {
    const { client } = bed();
    const later = new Date(Date.now() + 3_600_000).toISOString();
    const ids: string[] = [];
    for (let chunk = 0; chunk < 10; chunk += 1) {
      const jobs: NewJob[] = Array.from({ length: 1000 }, () => ({ action: 'noop', 'not-before': later }));
      for (const created of await client.createMany(jobs)) ids.push(created.id);
    }
    const scheduler = bed().spawnDistributor({ names: ['job_scheduler'] });
    await scheduler.waitForLine(/distribution leading/);
    // Two look-ups at least (one a second) with nothing due.
    await scheduler.waitForLine(/tick started/);
    await waitFor(async () => (await client.count("state='QUEUED' and not-before!=null")) === 10_000, {
      timeoutMs: 5000,
      message: 'the jobs to stay delayed',
    });
    await new Promise<void>((resolve) => setTimeout(resolve, 2000));
    assert.deepEqual(await entries(), [], 'no entry for a job not due');
    const due = ids.slice(0, 25);
    const soon = new Date(Date.now() + 1000).toISOString();
    const results = await client.operations(due.map((id) => ({ op: 'edit' as const, id, changes: { 'not-before': soon } })));
    assert.ok(results.every((result) => result.ok));
    const arrived = await waitFor(
      async () => {
        const list = await entries();
        return list.length >= due.length ? list : undefined;
      },
      { timeoutMs: 10_000, message: 'the jobs made due to be enqueued' },
    );
    assert.deepEqual([...arrived].sort(), [...due].sort(), 'exactly the jobs made due, once each');
    assert.equal(await client.count("state='QUEUED' and not-before!=null"), 10_000 - due.length, 'marked: their not-before cleared');
  });

  it('a delayed job that expires before it is due is CANCELED by the scheduler, never enqueued', async () => {
    const { client } = bed();
    const created = await client.create({
      action: 'noop',
      'not-before': new Date(Date.now() + 2000).toISOString(),
      expiry: new Date(Date.now() + 1000).toISOString(),
    });
    const scheduler = bed().spawnDistributor({ names: ['job_scheduler'] });
    await scheduler.waitForLine(/distribution leading/);
    const job = await bed().waitForState(created.id, ['CANCELED', 'RUNNING', 'SUCCESS', 'FAILED'], 10_000);
    assert.equal(job.state, 'CANCELED');
    assert.match(job['status-message'] ?? '', /^expired: not started before its expiry/);
    assert.equal(job.started, undefined, 'never started');
    assert.deepEqual(await entries(), [], 'never enqueued');
  });

  it('an expired job taken from the queue is CANCELED by the executor, not run', async () => {
    const { client } = bed();
    const created = await client.create({ action: 'noop', expiry: new Date(Date.now() + 300).toISOString() });
    await new Promise<void>((resolve) => setTimeout(resolve, 400));
    await bed().queue.put(created.id, 100);
    const executor = bed().spawnExecutor();
    const job = await bed().waitForState(created.id, ['CANCELED', 'SUCCESS', 'FAILED'], 15_000);
    assert.equal(job.state, 'CANCELED');
    assert.match(job['status-message'] ?? '', /^expired: not started before its expiry/);
    assert.equal(job.started, undefined, 'never started');
    await executor.waitForLine(/job expired before it started: CANCELED, entry consumed/);
    await waitFor(async () => (await entries()).length === 0, { timeoutMs: 5000, message: 'its entry to be consumed' });
  });

  it('the queue reconciler leaves a job with a future not-before alone, and enqueues a stranded one', async () => {
    const { client } = bed();
    const delayed = await client.create({ action: 'noop', 'not-before': new Date(Date.now() + 3_600_000).toISOString() });
    const stranded = await client.create({ action: 'noop' });
    bed().spawnDistributor({ names: ['queue_reconciler'], extraArgs: ['--schedule', 'queue_reconciler=1s'] });
    // The reconciler's grace is 5 s: the stranded job is enqueued after it (a first pass may be about
    // older jobs of this file's shared API, so its entry is waited for, not the first log line).
    const list = await waitFor(
      async () => {
        const names = await entries();
        return names.includes(stranded.id) ? names : undefined;
      },
      { timeoutMs: 20_000, intervalMs: 200, message: 'the queue reconciler to enqueue the stranded job' },
    );
    assert.equal(list.includes(delayed.id), false, 'the delayed job is not');
    // The API is shared by this file's tests: older jobs (QUEUED, not delayed) may be enqueued too, but
    // none of the 10,000 still waiting for their time.
    const waiting = await client.search({ filter: "state='QUEUED' and not-before>'now'", last: 20_000, select: ['not-before'] });
    const enqueued = new Set(list);
    assert.equal(waiting.jobs.filter((job) => enqueued.has(job.id)).length, 0, 'no job waiting for its time was enqueued');
  });

  it('bad --at and --in values are refused, naming the flag, and nothing is created', async () => {
    const before = await bed().client.count();
    for (const [args, message] of [
      [['--in', '10x'], /--in must be a duration such as 30s, 10m, 2h or 1d.*"10x"/],
      [['--in', 'soon'], /--in must be a duration/],
      [['--at', 'tomorrow'], /--at must be an ISO-8601 instant such as 2026-12-05T03:00Z.*"tomorrow"/],
      [['--at', '2026-02-30T00:00Z'], /--at must be an ISO-8601 instant/],
      [['--at', '2026-12-05T03:00Z', '--in', '10m'], /give --at or --in, not both/],
    ] as const) {
      const result = await jobctl(['create', 'noop', ...args]);
      assert.notEqual(result.code, 0, `${args.join(' ')}: ${result.stdout}`);
      assert.match(result.stderr, message);
    }
    assert.equal(await bed().client.count(), before);
  });
});
