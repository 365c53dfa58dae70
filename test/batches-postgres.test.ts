/**
 * The core of the batch tests on PostgreSQL (a private cluster, a database of this file's own): a
 * list batch's exact counters, kept by the store in each task's transaction (there, every task of a
 * batch queues on the batch's row lock); the cancel cascade; delete taking the tasks and the stored
 * list with the batch.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test } from 'node:test';
import { startPostgres, type PostgresServer } from '../src/harness/postgres-server.js';
import { waitFor } from '../src/harness/wait-for.js';
import { EVERY_JOB, batchOf, spawnBatchExecutor, spawnFeeder, tasksOf, waitForBatch } from './fixtures/batch-testbed.js';
import { startExecutorTestbed, type ExecutorTestbed } from './fixtures/executor-testbed.js';

let postgres: PostgresServer | undefined;
let testbed: ExecutorTestbed | undefined;

before(async () => {
  postgres = await startPostgres();
  const database = await postgres.createDatabase(`batches_${String(process.pid)}`);
  testbed = await startExecutorTestbed({ database });
});

after(async () => {
  await testbed?.close();
  await postgres?.stop();
});

afterEach(async () => {
  await testbed?.reset();
});

function bed(): ExecutorTestbed {
  if (testbed === undefined) throw new Error('the testbed did not start');
  return testbed;
}

describe('batches on PostgreSQL', () => {
  test('a list batch completes with exact counters, and delete takes its tasks and stored list', async () => {
    const b = bed();
    await b.client.deleteMatching(EVERY_JOB);
    spawnBatchExecutor(b, 8);
    spawnFeeder(b);
    const count = 1000;
    const tasks = tasksOf(count, (i) => ({ i, bytes: i, ...(i % 10 === 0 ? { failUntilAttempt: 1 } : {}) }));
    const id = await b.client.createBatch({ action: 'batch_task', tasks, 'batch-size': 100, 'max-in-flight': 300 });
    const failed = await waitForBatch(b, id, ['FAILED', 'SUCCESS'], 150_000);
    assert.equal(failed.state, 'FAILED');
    assert.equal(failed.batch?.sent, count);
    assert.equal(failed.batch.succeeded, 900);
    assert.equal(failed.batch.failed, 100);
    assert.equal(failed.batch.canceled, 0);
    assert.deepEqual(failed.batch.counters, { movedBytes: (count * (count - 1)) / 2, movedChunks: count });
    assert.equal(failed.progress, 100);
    assert.equal(await b.client.count(`parent-job='${id}' and state='SUCCESS'`), 900);
    assert.equal((await b.api.store.batchSpecs(id, 0, 5)).length, 5);
    await b.client.delete(id);
    assert.equal(await b.client.count(`parent-job='${id}'`), 0);
    assert.deepEqual(await b.api.store.batchSpecs(id, 0, 5), []);
  });

  test('cancel cascades: waiting tasks end CANCELED, running ones are stopped; a bulk delete takes the stored list', async () => {
    const b = bed();
    await b.client.deleteMatching(EVERY_JOB);
    spawnBatchExecutor(b, 4);
    spawnFeeder(b);
    const id = await b.client.createBatch({ action: 'sleep', tasks: tasksOf(40, () => ({ ms: 20_000 })), 'max-in-flight': 10 });
    await waitFor(async () => (await b.client.count(`parent-job='${id}' and state='RUNNING'`)) >= 4 || undefined, {
      timeoutMs: 30_000,
      intervalMs: 50,
      message: 'four tasks running',
    });
    await b.client.cancel(id);
    await waitFor(async () => (await b.client.count(`parent-job='${id}' and state=['QUEUED','RUNNING']`)) === 0 || undefined, {
      timeoutMs: 10_000,
      intervalMs: 50,
      message: 'no task left waiting or running',
    });
    const batch = await batchOf(b, id);
    assert.equal(batch.state, 'CANCELED');
    assert.equal(batch.batch?.sent, 10);
    assert.equal(batch.batch.canceled, 10);
    assert.equal(await b.client.deleteMatching(`id='${id}'`), 1);
    assert.deepEqual(await b.api.store.batchSpecs(id, 0, 50), []);
  });
});
