/** QueueInventory on a real ZooKeeper: every job id with an entry, kept up to date across passes. */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, test } from 'node:test';
import { startZooKeeper, type ZooKeeperServer } from '../src/harness/zookeeper-server.js';
import { LockingQueue } from '../src/recipes/locking-queue.js';
import { QueueInventory } from '../src/recipes/queue-inventory.js';
import { ZkClient } from '../src/zk/client.js';
import { removeTree } from './fixtures/zk-cleanup.js';

let zk: ZooKeeperServer;
let client: ZkClient;
const root = `/inventory-test-${randomUUID()}`;

before(async () => {
  zk = await startZooKeeper();
  client = await ZkClient.connect({ connectionString: zk.connectionString, sessionTimeoutMs: 4000 });
});

after(async () => {
  await removeTree(client, root);
  await client.close();
  await zk.stop();
});

test('lists the job ids of waiting and taken entries, and follows puts and consumes between passes', async () => {
  const queue = new LockingQueue(client, { path: root });
  const inventory = new QueueInventory(client, queue.paths);
  try {
    assert.deepEqual(await inventory.jobIds(), new Set(), 'no queue yet');
    const ids = Array.from({ length: 1200 }, () => `job/${randomUUID()}`);
    await queue.putMany(ids.map((jobId, index) => ({ jobId, priority: index % 3 })));
    assert.deepEqual(await inventory.jobIds(), new Set(ids));
    const taken = await queue.take();
    assert.ok((await inventory.jobIds()).has(taken.jobId), 'a taken entry still counts');
    await queue.consume(taken);
    const extra = `job/${randomUUID()}`;
    await queue.put(extra, 5);
    const now = await inventory.jobIds();
    assert.equal(now.has(taken.jobId), false, 'a consumed entry no longer counts');
    assert.ok(now.has(extra));
    assert.equal(now.size, ids.length);
  } finally {
    await queue.close();
  }
});
