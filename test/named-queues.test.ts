/**
 * Named queues (routing): a job names its queue, each queue is its own kazoo LockingQueue under
 * `<root>/queues/<name>` (the root stays the default queue), executors serve the queues they are
 * given. Real ZooKeeper, the real job API, `job-executor`, `job-distributor` and `jobctl` processes,
 * and Python's kazoo on the same paths.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, test } from 'node:test';
import type { JobDocument } from '../src/api/job/document.js';
import { LockingQueue } from '../src/recipes/locking-queue.js';
import { isRecord } from '../src/util/is-record.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';
import { useJobctl } from './fixtures/jobctl-stack.js';
import { KazooProcess, killKazooProcesses } from './fixtures/kazoo-process.js';
import { scrape, valueOf } from './fixtures/prometheus-text.js';
import { waitFor } from '../src/harness/wait-for.js';

const bed = useExecutorTestbed();
const jobctl = useJobctl(bed);
afterEach(killKazooProcesses);

const ONLY_ALPHA = fileURLToPath(new URL('./fixtures/actions-fleet-a', import.meta.url));
const ONLY_BETA = fileURLToPath(new URL('./fixtures/actions-fleet-b', import.meta.url));

const gpuPath = (): string => `${bed().queuePath}/queues/gpu`;

/** Persisted with its `queue` field through the API, then put into that queue's LockingQueue. */
async function createIn(queue: string, action = 'noop', payload?: unknown): Promise<string> {
  const created = await bed().client.create({
    action,
    queue,
    ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
  });
  const path = queue === 'default' ? bed().queuePath : `${bed().queuePath}/queues/${queue}`;
  const lockingQueue = new LockingQueue(bed().zkClient, { path });
  try {
    await lockingQueue.put(created.id);
  } finally {
    await lockingQueue.close();
  }
  return created.id;
}

function ranOn(job: JobDocument): string | undefined {
  return job.executor?.split('@')[0];
}

function field(value: unknown, name: string): unknown {
  return isRecord(value) ? value[name] : undefined;
}

describe('named queues', () => {
  test('an executor serves only its queues: gpu jobs run on the gpu executor, default jobs on the default one', async () => {
    const gpu = bed().spawnExecutor({ name: 'gpu-node', extraArgs: ['--queue', 'gpu'] });
    const plain = bed().spawnExecutor({ name: 'plain-node' });
    await Promise.all([gpu.waitForLine(/executor started/), plain.waitForLine(/executor started/)]);
    const gpuJobs = [await createIn('gpu'), await createIn('gpu'), await createIn('gpu')];
    const defaultJobs = [await createIn('default'), await createIn('default'), await createIn('default')];
    for (const id of gpuJobs) {
      const job = await bed().waitForState(id, ['SUCCESS', 'FAILED']);
      assert.equal(job.state, 'SUCCESS', job['status-message']);
      assert.equal(ranOn(job), 'gpu-node');
      assert.equal(field(job, 'queue'), 'gpu');
    }
    for (const id of defaultJobs) {
      const job = await bed().waitForState(id, ['SUCCESS', 'FAILED']);
      assert.equal(job.state, 'SUCCESS', job['status-message']);
      assert.equal(ranOn(job), 'plain-node');
      assert.equal(field(job, 'queue'), 'default');
    }
  });

  test('an executor given --queue gpu --queue default runs jobs of both', async () => {
    const both = bed().spawnExecutor({ name: 'both', extraArgs: ['--queue', 'gpu', '--queue', 'default'] });
    await both.waitForLine(/executor started/);
    const ids = [await createIn('gpu'), await createIn('default'), await createIn('gpu'), await createIn('default')];
    for (const id of ids) {
      const job = await bed().waitForState(id, ['SUCCESS', 'FAILED']);
      assert.equal(job.state, 'SUCCESS', job['status-message']);
      assert.equal(ranOn(job), 'both');
    }
  });

  test("an action offered only by executors of another queue is offered nowhere for this queue's jobs", async () => {
    const grace = ['--unknown-action-grace', '3'];
    const gpu = bed().spawnExecutor({ name: 'gpu-alpha', actionsDirs: [ONLY_ALPHA], extraArgs: ['--queue', 'gpu', ...grace] });
    const plain = bed().spawnExecutor({ name: 'plain-beta', actionsDirs: [ONLY_BETA], extraArgs: grace });
    await Promise.all([gpu.waitForLine(/executor started/), plain.waitForLine(/executor started/)]);
    // alpha runs on gpu-alpha, but this job waits in the default queue, which only plain-beta serves.
    const id = await createIn('default', 'alpha');
    const job = await bed().waitForState(id, ['SUCCESS', 'FAILED'], 30_000);
    assert.equal(job.state, 'FAILED');
    assert.equal(job['return-code'], 127);
    assert.match(job['status-message'] ?? '', /no live executor offers action "alpha"/);
    // The same action in the gpu queue runs.
    const gpuJob = await createIn('gpu', 'alpha');
    assert.equal((await bed().waitForState(gpuJob, ['SUCCESS', 'FAILED'])).state, 'SUCCESS');
  });

  test('a kazoo producer puts into <root>/queues/gpu and a gpu executor runs it; a kazoo consumer takes what jobctl create --queue gpu put', async () => {
    const created = await bed().client.create({ action: 'noop', queue: 'gpu' });
    const producer = KazooProcess.start('kazoo_queue.py', [bed().zk.connectionString, gpuPath(), 'put', `${created.id}:100`]);
    await producer.finished();
    const gpu = bed().spawnExecutor({ name: 'gpu-node', extraArgs: ['--queue', 'gpu'] });
    await gpu.waitForLine(/executor started/);
    const job = await bed().waitForState(created.id, ['SUCCESS', 'FAILED']);
    assert.equal(job.state, 'SUCCESS', job['status-message']);
    await gpu.kill();

    const result = await jobctl.run(['create', 'noop', '--queue', 'gpu', '--json']);
    assert.equal(result.code, 0, result.stderr);
    const id = field(JSON.parse(result.stdout) as unknown, 'id');
    assert.equal(typeof id, 'string');
    assert.equal(
      (
        await bed()
          .zkClient.getChildren(`${bed().queuePath}/entries`)
          .catch(() => [])
      ).length,
      0,
      'nothing in the default queue',
    );
    const consumer = KazooProcess.start('kazoo_queue.py', [bed().zk.connectionString, gpuPath(), 'get', '1']);
    const got = await consumer.next('got');
    assert.equal(got['id'], id);
    await consumer.finished();
  });

  test('the queue reconciler enqueues a persisted-but-never-enqueued gpu job into <root>/queues/gpu', async () => {
    const created = await bed().client.create({ action: 'noop', queue: 'gpu' });
    const distributor = bed().spawnDistributor({ names: ['queue_reconciler'], extraArgs: ['--schedule', 'queue_reconciler=1s'] });
    await distributor.waitForLine(/stranded jobs put back in the queue/, 30_000);
    // Other QUEUED gpu jobs of this file's API (the one a kazoo consumer took above) may come first,
    // while this one is still within the reconciler's grace: wait for this one's entry.
    const gpuIds = async (): Promise<string[]> => {
      const names = await bed()
        .zkClient.getChildren(`${gpuPath()}/entries`)
        .catch(() => []);
      return Promise.all(names.map(async (name) => (await bed().zkClient.getData(`${gpuPath()}/entries/${name}`)).data.toString('utf8')));
    };
    await waitFor(async () => ((await gpuIds()).includes(created.id) ? true : undefined), {
      timeoutMs: 30_000,
      message: 'the reconciler to enqueue the gpu job into the gpu queue',
    });
    // Later passes find it there and add no other entry.
    const passes = (): number => distributor.lines.filter((line) => line.includes('queue reconciled')).length;
    const seen = passes();
    await waitFor(() => (passes() >= seen + 2 ? true : undefined), { timeoutMs: 10_000, message: 'two more reconciler passes' });
    assert.deepEqual(
      (await gpuIds()).filter((id) => id === created.id),
      [created.id],
    );
    assert.equal(
      (
        await bed()
          .zkClient.getChildren(`${bed().queuePath}/entries`)
          .catch(() => [])
      ).length,
      0,
      'nothing in the default queue',
    );
    const gpu = bed().spawnExecutor({ name: 'gpu-node', extraArgs: ['--queue', 'gpu'] });
    await gpu.waitForLine(/executor started/);
    assert.equal((await bed().waitForState(created.id, ['SUCCESS', 'FAILED'])).state, 'SUCCESS');
  });

  test("a distribution's job specs route its jobs: gpu_ticker's jobs run on the gpu executor only", async () => {
    const gpu = bed().spawnExecutor({ name: 'gpu-node', extraArgs: ['--queue', 'gpu'] });
    const plain = bed().spawnExecutor({ name: 'plain-node' });
    await Promise.all([gpu.waitForLine(/executor started/), plain.waitForLine(/executor started/)]);
    bed().spawnDistributor({ names: ['gpu_ticker'] });
    const done = await waitFor(
      async () => {
        const { jobs } = await bed().client.search({ filter: "target-resource/href='test/gpu' and state='SUCCESS'", last: 100 });
        return jobs.length >= 2 ? jobs : undefined;
      },
      { timeoutMs: 20_000, message: "two of gpu_ticker's jobs to succeed" },
    );
    for (const job of done) {
      assert.equal(field(job, 'queue'), 'gpu');
      assert.equal(ranOn(job), 'gpu-node');
    }
  });

  test('jobctl queue lists the default queue then the named ones, flags entries nobody serves, and --queue restricts it', async () => {
    await bed().queue.put('job/00000000-0000-7000-8000-000000000001', 100);
    const gpuQueue = new LockingQueue(bed().zkClient, { path: gpuPath() });
    await gpuQueue.put('job/00000000-0000-7000-8000-000000000002', 0);
    await gpuQueue.put('job/00000000-0000-7000-8000-000000000003', 0);
    await gpuQueue.close();

    const human = await jobctl.run(['queue']);
    assert.equal(human.code, 0, human.stderr);
    const defaultAt = human.stdout.search(/^queue default /m);
    const gpuAt = human.stdout.search(/^queue gpu /m);
    assert.ok(defaultAt >= 0 && gpuAt > defaultAt, human.stdout);
    assert.match(human.stdout, new RegExp(`^queue gpu \\(${gpuPath()}\\): 2 entries, 2 waiting, 0 taken`, 'm'));
    assert.match(human.stdout, /no live executor serves queue gpu/);

    const json = await jobctl.run(['queue', '--json']);
    assert.equal(json.code, 0, json.stderr);
    const queues = field(JSON.parse(json.stdout) as unknown, 'queues');
    assert.ok(Array.isArray(queues));
    assert.deepEqual(
      queues.map((queue) => [field(queue, 'name'), field(queue, 'entries')]),
      [
        ['default', 1],
        ['gpu', 2],
      ],
    );

    // An entry of a named queue is removed with --queue; without it, the default queue is meant.
    const [gpuEntry] = await bed().zkClient.getChildren(`${gpuPath()}/entries`);
    assert.ok(gpuEntry !== undefined);
    const missing = await jobctl.run(['queue', 'remove', gpuEntry]);
    assert.notEqual(missing.code, 0, 'the entry is not in the default queue');
    const removed = await jobctl.run(['queue', 'remove', gpuEntry, '--queue', 'gpu']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.equal((await bed().zkClient.getChildren(`${gpuPath()}/entries`)).length, 1);

    const only = await jobctl.run(['queue', '--queue', 'gpu', '--json']);
    assert.equal(only.code, 0, only.stderr);
    const onlyQueues = field(JSON.parse(only.stdout) as unknown, 'queues');
    assert.ok(Array.isArray(onlyQueues));
    assert.deepEqual(
      onlyQueues.map((queue) => field(queue, 'name')),
      ['gpu'],
    );
  });

  test('the queue gauges are labelled by queue, with the live executors serving each', async () => {
    const gpu = bed().spawnExecutor({ name: 'gpu-node', extraArgs: ['--queue', 'gpu', '--metrics-port', '0'] });
    const line = await gpu.waitForLine(/metrics listening/);
    const url = /"url":"(http:\/\/[^"]+)"/.exec(line)?.[1] ?? '';
    await gpu.waitForLine(/executor started/);
    const io = new LockingQueue(bed().zkClient, { path: `${bed().queuePath}/queues/io` });
    await io.put('job/00000000-0000-7000-8000-000000000011');
    await io.put('job/00000000-0000-7000-8000-000000000012');
    await io.close();
    const seen = await waitFor(
      async () => {
        const now = await scrape(`${url}/metrics`);
        return valueOf(now, 'zkje_queue_entries', { queue: 'io', state: 'waiting' }, -1) === 2 ? now : undefined;
      },
      { timeoutMs: 15_000, message: 'the queue gauges to show queue io' },
    );
    assert.equal(valueOf(seen, 'zkje_queue_entries', { queue: 'default', state: 'waiting' }, -1), 0);
    assert.equal(valueOf(seen, 'zkje_queue_executors', { queue: 'io' }, -1), 0);
    assert.equal(valueOf(seen, 'zkje_queue_executors', { queue: 'default' }, -1), 0);
    assert.ok(valueOf(seen, 'zkje_queue_oldest_entry_age_seconds', { queue: 'io' }, -1) >= 0);
    // gpu exists once the executor made its structure, served by it alone.
    assert.equal(valueOf(seen, 'zkje_queue_executors', { queue: 'gpu' }, -1), 1);
  });

  test('a bad queue name is refused, naming it: jobctl --queue, the job field, and the executor', async () => {
    const bad = await jobctl.run(['queue', '--queue', '../etc']);
    assert.equal(bad.code, 2, bad.stdout);
    assert.match(bad.stderr, /queue name "\.\.\/etc"/);

    const badCreate = await jobctl.run(['create', 'noop', '--queue', 'a/b']);
    assert.notEqual(badCreate.code, 0);
    assert.match(badCreate.stderr, /queue name "a\/b"/);

    await assert.rejects(bed().client.create({ action: 'noop', queue: 'has space' }), /"queue".*has space/);

    const executor = bed().spawnExecutor({ extraArgs: ['--queue', 'no/slash'] });
    // A bad option, like every other: exit 2.
    assert.deepEqual(await executor.exited, { code: 2, signal: null });
    assert.match(executor.lines.join('\n'), /queue name "no\/slash"/);
  });
});
