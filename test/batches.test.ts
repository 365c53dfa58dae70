/**
 * Batches (docs/batches.md): a parent job whose tasks the `batch_feeder` distribution creates and
 * enqueues from a list or a generator. Real ZooKeeper, the real job API, `job-distributor` and
 * `job-executor` as child processes. The list and the generator batches are at the sizes
 * (10,000 and 100,000 tasks); the generator's takes about 2.5 minutes on this 2-core machine.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { JobDocument } from '../src/api/job/document.js';
import { ApiError } from '../src/api/errors.js';
import { waitFor } from '../src/harness/wait-for.js';
import { queuePaths } from '../src/recipes/queue-layout.js';
import { EVERY_JOB, batchOf, spawnBatchExecutor, spawnFeeder, tasksOf, waitForBatch } from './fixtures/batch-testbed.js';
import { useExecutorTestbed, type ExecutorTestbed } from './fixtures/executor-testbed.js';
import { useJobctl } from './fixtures/jobctl-stack.js';

const testbed = useExecutorTestbed();
const jobctl = useJobctl(testbed);
const spawnExecutor = spawnBatchExecutor;
/** The sizes: a list of 10,000 tasks; a generator of 100,000 with max-in-flight 1,000. */
const LIST_TASKS = 10_000;
const GENERATOR_TASKS = 100_000;

/** Every task's index, read a page at a time by id. */
async function taskIndexes(bed: ExecutorTestbed, id: string): Promise<number[]> {
  const indexes: number[] = [];
  let after = '';
  for (;;) {
    const page = await bed.client.search({
      filter: `parent-job='${id}' and id>'${after}'`,
      orderby: 'id:asc',
      last: 1000,
      select: ['batch-index'],
    });
    for (const job of page.jobs) indexes.push(job['batch-index'] ?? -1);
    const last = page.jobs.at(-1);
    if (last === undefined) return indexes;
    after = last.id;
  }
}

describe('batches', () => {
  test('a list batch completes with exact counters; retry-failed reruns only the failed tasks', async () => {
    const bed = testbed();
    await bed.client.deleteMatching(EVERY_JOB);
    spawnExecutor(bed, 32);
    spawnFeeder(bed);
    const count = LIST_TASKS;
    // Every tenth task fails on its first attempt; bytes vary so that the sum is checked, not a count.
    const tasks = tasksOf(count, (i) => ({ i, bytes: i, ...(i % 10 === 0 ? { failUntilAttempt: 1 } : {}) }));
    // Uploaded as jobctl does: the API takes 1,000 specs a request; the last upload seals the list.
    const id = await bed.client.createBatch({ action: 'batch_task', 'batch-size': 500, 'max-in-flight': 1000 });
    for (let from = 0; from < count; from += 1000) {
      const seal = from + 1000 >= count;
      await bed.client.batchOperation(id, 'tasks', { from, tasks: tasks.slice(from, from + 1000), ...(seal ? { seal } : {}) });
    }
    const failed = await waitForBatch(bed, id, ['FAILED'], 150_000);
    const expectedBytes = (count * (count - 1)) / 2;
    assert.deepEqual(
      { ...failed.batch, counters: failed.batch?.counters },
      {
        ...failed.batch,
        sent: count,
        succeeded: count - count / 10,
        failed: count / 10,
        canceled: 0,
        counters: { movedBytes: expectedBytes, movedChunks: count },
      },
    );
    assert.match(failed['status-message'] ?? '', new RegExp(`${String(count / 10)} of ${String(count)} tasks failed`));
    assert.equal(failed.progress, 100, "a batch's progress is the percent of its tasks processed");

    const retried = await bed.client.batchOperation(id, 'retry-failed');
    assert.equal(retried.state, 'RUNNING');
    const done = await waitForBatch(bed, id, ['SUCCESS', 'FAILED'], 150_000);
    assert.equal(done.state, 'SUCCESS', done['status-message']);
    assert.equal(done.batch?.succeeded, count);
    assert.equal(done.batch.failed, 0);
    // The retried tasks' second runs count again; the failed runs' counters were taken back.
    assert.deepEqual(done.batch.counters, { movedBytes: expectedBytes, movedChunks: count });
    assert.equal(await bed.client.count(`parent-job='${id}' and attempt=2`), count / 10);
    assert.equal(await bed.client.count(`parent-job='${id}' and attempt=1`), count - count / 10);
    assert.equal(done.progress, 100);
    assert.equal((await bed.api.store.batchSpecs(id, 0, 10)).length, 10, 'the stored list is kept while the batch is');
    await bed.client.delete(id);
    assert.equal(await bed.client.count(`parent-job='${id}'`), 0, 'a deleted batch takes its tasks with it');
    assert.deepEqual(await bed.api.store.batchSpecs(id, 0, 10), [], 'and its stored list');
  });

  test("a batch's progress is the percent of its tasks processed while it runs", async () => {
    const bed = testbed();
    await bed.client.deleteMatching(EVERY_JOB);
    spawnExecutor(bed, 4);
    spawnFeeder(bed);
    const id = await bed.client.createBatch({ action: 'batch_task', tasks: tasksOf(200, (i) => ({ i, sleepMs: 20 })), 'batch-size': 20 });
    const seen = new Set<number>();
    const done = await waitFor(
      async () => {
        const job = await batchOf(bed, id);
        const batch = job.batch;
        if (batch !== undefined && job.state === 'RUNNING') {
          const processed = batch.succeeded + batch.failed + batch.canceled;
          // Read together with the counts it is computed from: the same write moves both.
          assert.equal(job.progress, Math.floor((processed * 100) / 200), JSON.stringify(batch));
          seen.add(job.progress);
        }
        return job.state === 'RUNNING' ? undefined : job;
      },
      { timeoutMs: 90_000, intervalMs: 50, message: 'the batch to end' },
    );
    assert.equal(done.state, 'SUCCESS');
    assert.equal(done.progress, 100);
    assert.ok(
      [...seen].some((progress) => progress > 0 && progress < 100),
      `progress seen: ${[...seen].join(', ')}`,
    );
  });

  test('retry-failed puts the failed tasks back within max-in-flight, and a pause stops it', async () => {
    const bed = testbed();
    await bed.client.deleteMatching(EVERY_JOB);
    spawnExecutor(bed, 16);
    spawnFeeder(bed);
    const count = 200;
    const maxInFlight = 10;
    // Every task fails its first run; the second runs take a while, so that the retry can be paused midway.
    const tasks = tasksOf(count, (i) => ({ i, failUntilAttempt: 1, sleepMs: 200 }));
    const id = await bed.client.createBatch({ action: 'batch_task', tasks, 'batch-size': maxInFlight, 'max-in-flight': maxInFlight });
    const failed = await waitForBatch(bed, id, ['FAILED']);
    assert.equal(failed.batch?.failed, count);

    const retrying = await bed.client.batchOperation(id, 'retry-failed');
    assert.equal(retrying.state, 'RUNNING');
    let largest = 0;
    const sample = async (): Promise<JobDocument> => {
      const job = await batchOf(bed, id);
      const batch = job.batch;
      if (batch !== undefined) largest = Math.max(largest, batch.sent - batch.succeeded - batch.failed - batch.canceled);
      largest = Math.max(largest, await bed.client.count(`parent-job='${id}' and state=['QUEUED','RUNNING']`));
      return job;
    };
    await waitFor(async () => ((await sample()).batch?.succeeded ?? 0) >= 40 || undefined, {
      timeoutMs: 60_000,
      intervalMs: 50,
      message: 'the retry to get going',
    });
    await bed.client.batchOperation(id, 'pause');
    await waitFor(async () => (await bed.client.count(`parent-job='${id}' and state=['QUEUED','RUNNING']`)) === 0 || undefined, {
      timeoutMs: 10_000,
      intervalMs: 50,
      message: 'the tasks put back before the pause to end',
    });
    const paused = await batchOf(bed, id);
    const pausedAt = Date.now();
    await waitFor(() => (Date.now() - pausedAt >= 2000 ? true : undefined), { timeoutMs: 3000, intervalMs: 50 });
    const later = await batchOf(bed, id);
    assert.equal(later.batch?.failed, paused.batch?.failed, 'failed tasks were put back while the batch was paused');
    assert.ok((later.batch?.failed ?? 0) > 0, 'the pause came before the retry was over');
    assert.equal(later.state, 'RUNNING');

    await bed.client.batchOperation(id, 'resume');
    const done = await waitFor(async () => ((await sample()).state === 'RUNNING' ? undefined : sample()), {
      timeoutMs: 90_000,
      intervalMs: 50,
      message: 'the retry to end',
    });
    assert.equal(done.state, 'SUCCESS', done['status-message']);
    assert.equal(done.batch?.succeeded, count);
    assert.ok(largest <= maxInFlight, `${String(largest)} tasks were QUEUED or RUNNING at once; max-in-flight is ${String(maxInFlight)}`);
    assert.ok(largest > 0, 'the sampling saw the retry');
    assert.equal(await bed.client.count(`parent-job='${id}' and attempt=2`), count);
  });

  test('a batch naming a generator the feeder does not have waits, saying so once on the batch and in the log', async () => {
    const bed = testbed();
    await bed.client.deleteMatching(EVERY_JOB);
    const feeder = spawnFeeder(bed);
    const id = await bed.client.createBatch({ action: 'batch_task', generator: 'no_such_generator', args: {} });
    const waiting = await waitFor(
      async () => {
        const job = await batchOf(bed, id);
        return job['status-message']?.startsWith('waiting:') === true ? job : undefined;
      },
      { timeoutMs: 30_000, intervalMs: 50, message: 'the batch to say it waits' },
    );
    assert.match(waiting['status-message'] ?? '', /no batch generator "no_such_generator"/);
    // Passes run every 200 ms while nothing is fed: over 3 s, still the one line.
    const since = Date.now();
    await waitFor(() => (Date.now() - since >= 3000 ? true : undefined), { timeoutMs: 4000, intervalMs: 50 });
    const logged = feeder.lines.filter((line) => line.includes('no_such_generator'));
    assert.equal(logged.length, 1, logged.join('\n'));
    const still = await batchOf(bed, id);
    assert.equal(still.state, 'RUNNING');
    assert.equal(still.batch?.sent, 0);
    await bed.client.cancel(id);
  });

  test('a bulk delete of a final batch (as cleanup_jobs does) takes its stored list with it', async () => {
    const bed = testbed();
    await bed.client.deleteMatching(EVERY_JOB);
    const id = await bed.client.createBatch({ action: 'noop', tasks: tasksOf(30, (i) => ({ i })) });
    assert.equal((await bed.api.store.batchSpecs(id, 0, 100)).length, 30);
    await bed.client.cancel(id);
    assert.equal(await bed.client.deleteMatching(`id='${id}'`), 1);
    assert.deepEqual(await bed.api.store.batchSpecs(id, 0, 100), []);
  });

  test("a generator batch far larger than max-in-flight keeps max-in-flight tasks in flight, and the queue's entries within it plus the executor slots", async () => {
    const bed = testbed();
    await bed.client.deleteMatching(EVERY_JOB);
    const threads = 32;
    spawnExecutor(bed, threads);
    spawnFeeder(bed);
    const count = GENERATOR_TASKS;
    const maxInFlight = 1000;
    const id = await bed.client.createBatch({
      action: 'batch_task',
      generator: 'range',
      args: { count },
      'batch-size': 500,
      'max-in-flight': maxInFlight,
    });
    let largest = 0;
    let inFlight = 0;
    const entries = queuePaths(bed.queuePath).entries;
    const done = await waitFor(
      async () => {
        largest = Math.max(largest, (await bed.zkClient.exists(entries))?.numChildren ?? 0);
        const job = await batchOf(bed, id);
        const batch = job.batch;
        if (batch !== undefined) inFlight = Math.max(inFlight, batch.sent - batch.succeeded - batch.failed - batch.canceled);
        return job.state === 'RUNNING' ? undefined : job;
      },
      { timeoutMs: 240_000, intervalMs: 20, message: 'the generator batch to end' },
    );
    assert.equal(done.state, 'SUCCESS', done['status-message']);
    assert.equal(done.batch?.succeeded, count);
    assert.equal(done.batch.total, count);
    assert.equal(done.batch['total-estimated'], false);
    // A task counts as ended from its final write; its executor consumes the entry right after, so
    // for that instant an entry may outlive its task's count: at most one per executor slot.
    assert.ok(
      largest <= maxInFlight + threads,
      `ZooKeeper held ${String(largest)} entries, more than max-in-flight ${String(maxInFlight)} + ${String(threads)} slots`,
    );
    assert.ok(inFlight <= maxInFlight, `the batch had ${String(inFlight)} tasks in flight`);
    assert.ok(largest > 0, 'the sampling saw the queue');
  });

  test('pause stops the feeding within 1 s and resume goes on', async () => {
    const bed = testbed();
    await bed.client.deleteMatching(EVERY_JOB);
    spawnExecutor(bed);
    spawnFeeder(bed);
    const id = await bed.client.createBatch({
      action: 'batch_task',
      generator: 'range',
      args: { count: 600 },
      'batch-size': 20,
      'tasks-per-second': 100,
    });
    await waitFor(async () => ((await batchOf(bed, id)).batch?.sent ?? 0) >= 100 || undefined, {
      timeoutMs: 30_000,
      intervalMs: 50,
      message: '100 tasks sent',
    });
    const paused = await bed.client.batchOperation(id, 'pause');
    assert.equal(paused.batch?.paused, true);
    const pausedAt = Date.now();
    // Within 1 s the feeder has seen it (a group in flight may still be recorded); then nothing more is sent.
    await waitFor(() => (Date.now() - pausedAt >= 1000 ? true : undefined), { timeoutMs: 2000, intervalMs: 20 });
    const sentAfterASecond = (await batchOf(bed, id)).batch?.sent ?? 0;
    await waitFor(() => (Date.now() - pausedAt >= 3000 ? true : undefined), { timeoutMs: 4000, intervalMs: 50 });
    const later = await batchOf(bed, id);
    assert.equal(later.batch?.sent, sentAfterASecond, 'tasks were sent more than 1 s after the pause');
    assert.ok(sentAfterASecond < 600);
    assert.equal(later.state, 'RUNNING');
    await bed.client.batchOperation(id, 'resume');
    const done = await waitForBatch(bed, id, ['SUCCESS', 'FAILED']);
    assert.equal(done.state, 'SUCCESS');
    assert.equal(done.batch?.succeeded, 600);
  });

  test("kill -9 of the feeder's leader mid-feed: the standby goes on and every task index exists exactly once", async () => {
    const bed = testbed();
    await bed.client.deleteMatching(EVERY_JOB);
    spawnExecutor(bed);
    const feeders = [spawnFeeder(bed), spawnFeeder(bed)];
    const count = 2000;
    const id = await bed.client.createBatch({
      action: 'batch_task',
      generator: 'range',
      args: { count },
      'batch-size': 50,
      'tasks-per-second': 200,
    });
    await waitFor(async () => ((await batchOf(bed, id)).batch?.sent ?? 0) >= 400 || undefined, {
      timeoutMs: 30_000,
      intervalMs: 20,
      message: '400 tasks sent',
    });
    const leader = await waitFor(
      () => feeders.find((feeder) => feeder.lines.some((line) => line.includes('distribution leading') && line.includes('batch_feeder'))),
      { timeoutMs: 10_000, intervalMs: 50, message: 'the feeder that leads' },
    );
    leader.signal('SIGKILL');
    await leader.exited;
    const done = await waitForBatch(bed, id, ['SUCCESS', 'FAILED'], 120_000);
    assert.equal(done.state, 'SUCCESS', done['status-message']);
    const indexes = await taskIndexes(bed, id);
    assert.equal(indexes.length, count);
    assert.deepEqual(
      [...new Set(indexes)].sort((a, b) => a - b),
      Array.from({ length: count }, (_, i) => i),
    );
  });

  test('cancel cascades: waiting tasks end CANCELED, running ones are stopped', async () => {
    const bed = testbed();
    await bed.client.deleteMatching(EVERY_JOB);
    spawnExecutor(bed, 4);
    spawnFeeder(bed);
    const id = await bed.client.createBatch({
      action: 'sleep',
      tasks: tasksOf(40, () => ({ ms: 20_000 })),
      'max-in-flight': 10,
    });
    await waitFor(async () => (await bed.client.count(`parent-job='${id}' and state='RUNNING'`)) >= 4 || undefined, {
      timeoutMs: 30_000,
      intervalMs: 50,
      message: 'four tasks running',
    });
    await bed.client.cancel(id);
    await waitFor(async () => (await bed.client.count(`parent-job='${id}' and state=['QUEUED','RUNNING']`)) === 0 || undefined, {
      timeoutMs: 10_000,
      intervalMs: 50,
      message: 'no task left waiting or running',
    });
    const batch = await batchOf(bed, id);
    assert.equal(batch.state, 'CANCELED');
    assert.equal(batch.batch?.sent, 10);
    assert.equal(batch.batch.canceled, 10);
    // The executors stop the running ones: their threads are free for other work at once.
    const probe = await bed.createJob('noop');
    await bed.waitForState(probe, ['SUCCESS'], 10_000);
  });

  test('a lock refuses a second live batch with 409 naming the holder, and is free once the holder ends', async () => {
    const bed = testbed();
    await bed.client.deleteMatching(EVERY_JOB);
    const lock = 'rawx/10.0.0.1:6201';
    const first = await bed.client.createBatch({ action: 'noop', tasks: [{}], lock });
    const refused = await bed.client.createBatch({ action: 'noop', tasks: [{}], lock }).catch((error: unknown) => error);
    assert.ok(refused instanceof ApiError && refused.status === 409, String(refused));
    assert.match(refused.message, new RegExp(first.replace('/', '\\/')));
    await bed.client.cancel(first);
    const second = await bed.client.createBatch({ action: 'noop', tasks: [{}], lock });
    assert.notEqual(second, first);
    await bed.client.cancel(second);
  });

  test('a failing canary stops the batch FAILED before the rest is fed', async () => {
    const bed = testbed();
    await bed.client.deleteMatching(EVERY_JOB);
    spawnExecutor(bed);
    spawnFeeder(bed);
    const tasks = tasksOf(100, (i) => ({ i, ...(i === 2 ? { failUntilAttempt: 99 } : {}) }));
    const id = await bed.client.createBatch({ action: 'batch_task', tasks, canary: 5 });
    const failed = await waitForBatch(bed, id, ['FAILED', 'SUCCESS']);
    assert.equal(failed.state, 'FAILED');
    assert.match(failed['status-message'] ?? '', /canary failed: 1 of 5/);
    assert.equal(failed.batch?.sent, 5);
    assert.equal(await bed.client.count(`parent-job='${id}'`), 5);

    const good = await bed.client.createBatch({ action: 'batch_task', tasks: tasksOf(50, (i) => ({ i })), canary: 5 });
    const done = await waitForBatch(bed, good, ['FAILED', 'SUCCESS']);
    assert.equal(done.state, 'SUCCESS', done['status-message']);
    assert.equal(done.batch?.succeeded, 50);
  });

  test('jobctl batch create reads JSON lines from stdin; show renders the table, list the batches, pause and resume work', async () => {
    const bed = testbed();
    await bed.client.deleteMatching(EVERY_JOB);
    // 2,500 lines: uploaded in three requests as they are read.
    const input = tasksOf(2500, (i) => ({ i, bytes: 2 }))
      .map((task) => JSON.stringify(task))
      .join('\n');
    const created = await jobctl.run(['batch', 'create', 'batch_task', '--tasks', '-', '--max-in-flight', '400', '--json'], { input });
    assert.equal(created.code, 0, created.stderr);
    const { id } = JSON.parse(created.stdout) as { id: string };
    const paused = await jobctl.run(['batch', 'pause', id]);
    assert.equal(paused.code, 0, paused.stderr);
    assert.match(paused.stdout, /RUNNING \(paused\)/);
    const listed = await jobctl.run(['batch', 'list']);
    assert.match(listed.stdout, new RegExp(`${id.replace('/', '\\/')}\\s+PAUSED\\s+batch_task\\s+\\d+\\s+\\d+\\s+2500`));
    spawnExecutor(bed);
    spawnFeeder(bed);
    await jobctl.run(['batch', 'resume', id]);
    const followed = await jobctl.run(['show', id, '--follow']);
    assert.equal(followed.code, 0, followed.stderr + followed.stdout);
    assert.match(followed.stdout, /\[[#-]+\] \d+% \d+\/2500 sent \d+/);
    assert.match(followed.stdout, /state\s+SUCCESS/);
    assert.match(followed.stdout, /tasks\.processed\s+2500/);
    assert.match(followed.stdout, /movedBytes\s+5000/);
    const refused = await jobctl.run(['batch', 'create', 'batch_task', '--tasks', '-'], { input: '{"payload": 1}\nnot json' });
    assert.notEqual(refused.code, 0);
    assert.match(refused.stderr, /line 2 is not JSON/);
  });
});
