/**
 * Named queues at the recipe level, against a real ZooKeeper: the name-to-path rule, the routed put
 * (one batch per queue), and the take across several queues (lower priority band first, ties taken
 * round-robin, waiting on every queue at once, each item settled on the queue it came from).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { startZooKeeper, type ZooKeeperServer } from '../src/harness/zookeeper-server.js';
import { LockingQueue } from '../src/recipes/locking-queue.js';
import { listQueueNames, namedQueuePaths, validateQueueName } from '../src/recipes/queue-layout.js';
import { QueueRoutes } from '../src/recipes/queue-routes.js';
import { QueueSet } from '../src/recipes/queue-set.js';
import { ZkClient } from '../src/zk/client.js';
import { removeTree } from './fixtures/zk-cleanup.js';

let server: ZooKeeperServer;
let client: ZkClient;
let root: string;
const closers: (() => Promise<void>)[] = [];

before(async () => {
  server = await startZooKeeper();
  client = await ZkClient.connect({ connectionString: server.connectionString, sessionTimeoutMs: 4000 });
});

after(async () => {
  await client.close();
  await server.stop();
});

beforeEach(() => {
  root = `/queue-set-test-${randomUUID()}`;
});

afterEach(async () => {
  await Promise.all(closers.splice(0).map((close) => close()));
  await removeTree(client, root);
});

function queueAt(name: string): LockingQueue {
  const queue = new LockingQueue(client, { path: namedQueuePaths(root, name).root, name });
  closers.push(() => queue.close());
  return queue;
}

function setOf(names: readonly string[]): QueueSet {
  const set = new QueueSet(client, { root, names });
  closers.push(() => set.close());
  return set;
}

const id = (n: number): string => `job/00000000-0000-7000-8000-${String(n).padStart(12, '0')}`;

describe('queue names', () => {
  test('default is the root, a name is <root>/queues/<name>, a bad name is refused naming it', () => {
    assert.equal(namedQueuePaths('/job', 'default').root, '/job');
    assert.equal(namedQueuePaths('/job', 'gpu').entries, '/job/queues/gpu/entries');
    assert.equal(namedQueuePaths('/job', 'gpu').taken, '/job/queues/gpu/taken');
    for (const bad of ['', '.', '..', 'a/b', '-x', 'has space', 'x'.repeat(65)]) {
      assert.throws(() => validateQueueName(bad), new RegExp(`queue name ${JSON.stringify(bad).replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`));
    }
    validateQueueName('gpu.large_2-x');
  });
});

describe('routed puts', () => {
  test('each job goes to its own queue, names come back in input order', async () => {
    const routes = new QueueRoutes(client, root);
    closers.push(() => routes.close());
    const names = await routes.putRouted([
      { jobId: id(1), priority: 100 },
      { jobId: id(2), priority: 5, queue: 'gpu' },
      { jobId: id(3), priority: 100, queue: 'default' },
      { jobId: id(4), priority: 7, queue: 'gpu' },
    ]);
    assert.equal(names.length, 4);
    assert.match(names[1] ?? '', /^entry-005-/);
    assert.match(names[3] ?? '', /^entry-007-/);
    assert.equal((await client.getChildren(`${root}/entries`)).length, 2);
    assert.equal((await client.getChildren(`${root}/queues/gpu/entries`)).length, 2);
    assert.deepEqual(await listQueueNames(client, root), ['default', 'gpu']);
    await assert.rejects(routes.putRouted([{ jobId: id(5), queue: '..' }]), /queue name "\.\."/);
  });
});

describe('take across queues', () => {
  test('a priority-0 entry of one queue goes before priority-100 entries of the other', async () => {
    const cpu = queueAt('default');
    const gpu = queueAt('gpu');
    await cpu.putMany([{ jobId: id(1) }, { jobId: id(2) }, { jobId: id(3) }]);
    await gpu.put(id(9), 0);
    const set = setOf(['default', 'gpu']);
    const first = await set.take();
    assert.equal(first.jobId, id(9));
    assert.equal(first.queue, 'gpu');
    await set.consume(first);
    assert.equal((await client.getChildren(`${root}/queues/gpu/entries`)).length, 0);
    assert.equal((await client.getChildren(`${root}/entries`)).length, 3);
  });

  test('equal priorities alternate between the queues, so neither starves the other', async () => {
    const cpu = queueAt('default');
    const gpu = queueAt('gpu');
    await cpu.putMany([1, 2, 3, 4].map((n) => ({ jobId: id(n) })));
    await gpu.putMany([11, 12, 13, 14].map((n) => ({ jobId: id(n) })));
    const set = setOf(['default', 'gpu']);
    const order: string[] = [];
    for (let i = 0; i < 8; i++) {
      const item = await set.take();
      order.push(item.queue);
      await set.consume(item);
    }
    for (let i = 1; i < order.length; i++) assert.notEqual(order[i], order[i - 1], `taken in order ${order.join(', ')}`);
  });

  test('waits on every queue at once and wakes for a put into any of them', async () => {
    const set = setOf(['default', 'gpu', 'io']);
    const taking = set.take(AbortSignal.timeout(10_000));
    // Let the take reach its wait first: it must be woken by the watch, not find the entry on arrival.
    await new Promise((resolve) => setImmediate(resolve));
    const putAt = Date.now();
    await queueAt('io').put(id(21), 100);
    const item = await taking;
    assert.equal(item.queue, 'io');
    assert.ok(Date.now() - putAt < 2000, `woken ${Date.now() - putAt} ms after the put`);
    // Released on the queue it came from: back in io, taken again from there.
    await set.release(item);
    const again = await set.take(AbortSignal.timeout(5000));
    assert.equal(again.name, item.name);
    assert.equal(again.queue, 'io');
    await set.consume(again);
    assert.equal((await client.getChildren(`${root}/queues/io/entries`)).length, 0);
  });
});
