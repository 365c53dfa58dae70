import assert from 'node:assert/strict';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';
import { randomUUID } from 'node:crypto';
import { startZooKeeper, type ZooKeeperServer } from '../src/harness/zookeeper-server.js';
import { waitFor } from '../src/harness/wait-for.js';
import { ZkClient } from '../src/zk/client.js';
import { isZkError } from '../src/zk/errors.js';
import { LockingQueue } from '../src/recipes/locking-queue.js';
import { fourLetterWord } from '../src/harness/four-letter-word.js';
import { spawnConsumer, type ConsumerProcess } from './fixtures/queue-consumer-process.js';
import { removeTree } from './fixtures/zk-cleanup.js';

let server: ZooKeeperServer;
let client: ZkClient;
let queue: LockingQueue;
let root: string;
const consumers: ConsumerProcess[] = [];

before(async () => {
  server = await startZooKeeper();
  client = await ZkClient.connect({ connectionString: server.connectionString, sessionTimeoutMs: 4000 });
});

after(async () => {
  await client.close();
  await server.stop();
});

beforeEach(() => {
  root = `/queue-test-${randomUUID()}`;
  queue = new LockingQueue(client, { path: root });
});

afterEach(async () => {
  await queue.close();
  await Promise.all(consumers.splice(0).map((consumer) => consumer.kill()));
  await removeTree(client, root);
});

function jobIds(count: number, prefix = 'job'): string[] {
  return Array.from({ length: count }, (_, i) => `${prefix}/${String(i).padStart(6, '0')}`);
}

describe('put', () => {
  test('rejects what does not belong in the queue, naming the problem', async () => {
    await assert.rejects(queue.put('job/x', 1000), /priority must be an integer 0-999, got 1000/);
    await assert.rejects(queue.put('job/x', 1.5), /priority must be an integer/);
    await assert.rejects(queue.put(''), /non-empty job id/);
    await assert.rejects(queue.put('x'.repeat(2000)), /only ids belong in the queue, not payloads/);
    assert.equal(await queue.length(), 0);
  });

  test('writes kazoo names and the job id as data', async () => {
    const name = await queue.put('job/abc', 7);
    assert.match(name, /^entry-007-\d{10}$/);
    const { data } = await client.getData(`${root}/entries/${name}`);
    assert.equal(data.toString(), 'job/abc');
  });

  test('putMany keeps order across transactions and length() counts entries', async () => {
    const ids = jobIds(1200);
    const names = await queue.putMany(ids.map((jobId) => ({ jobId })));
    assert.equal(names.length, 1200);
    assert.deepEqual([...names].sort(), names);
    assert.equal(await queue.length(), 1200);
  });
});

describe('take', () => {
  test('priority first, then FIFO', async () => {
    await queue.put('job/p100-a');
    await queue.put('job/p5-a', 5);
    await queue.put('job/p100-b');
    await queue.put('job/p999-a', 999);
    await queue.put('job/p5-b', 5);
    await queue.put('job/p0-a', 0);
    const order: string[] = [];
    for (let i = 0; i < 6; i++) {
      const item = await queue.take();
      order.push(item.jobId);
      await queue.consume(item);
    }
    assert.deepEqual(order, ['job/p0-a', 'job/p5-a', 'job/p5-b', 'job/p100-a', 'job/p100-b', 'job/p999-a']);
    assert.equal(await queue.length(), 0);
  });

  test('concurrent takes in one process never share an entry', async () => {
    await queue.putMany(jobIds(200).map((jobId) => ({ jobId })));
    const items = await Promise.all(Array.from({ length: 200 }, () => queue.take()));
    assert.equal(new Set(items.map((item) => item.name)).size, 200);
    assert.equal(queue.heldCount, 200);
    await Promise.all(items.map((item) => queue.consume(item)));
    assert.equal(await queue.length(), 0);
  });

  test('a waiting take is served by a later put', async () => {
    const taking = queue.take();
    await queue.put('job/late');
    const item = await taking;
    assert.equal(item.jobId, 'job/late');
    await queue.consume(item);
  });

  test('an aborted take rejects and takes nothing', async () => {
    const controller = new AbortController();
    const taking = queue.take(controller.signal);
    controller.abort(new Error('stop waiting'));
    await assert.rejects(taking, /stop waiting/);
    await queue.put('job/after-abort');
    assert.deepEqual(await client.getChildren(`${root}/taken`), []);
  });

  test('release gives the entry back; holds() follows the taken node', async () => {
    await queue.put('job/r');
    const first = await queue.take();
    assert.equal(await queue.holds(first), true);
    const { data, stat } = await client.getData(`${root}/taken/${first.name}`);
    assert.equal(data.toString(), queue.consumerId);
    assert.equal(stat.ephemeralOwner, client.session.sessionId);
    await queue.release(first);
    assert.equal(await queue.holds(first), false);
    const again = await queue.take();
    assert.equal(again.name, first.name);
    await queue.consume(again);
    await assert.rejects(queue.consume(again), (error: unknown) => isZkError(error, 'BAD_DATA'));
  });

  test('an entry taken by another consumer is skipped, not waited for', async () => {
    await queue.putMany([{ jobId: 'job/a' }, { jobId: 'job/b' }]);
    const other = new LockingQueue(client, { path: root });
    try {
      const held = await other.take();
      const mine = await queue.take();
      assert.notEqual(mine.name, held.name);
      await queue.consume(mine);
      await other.release(held);
    } finally {
      await other.close();
    }
  });
});

describe('consume', () => {
  /** The server's last transaction id (`srvr`): ZooKeeper numbers every write transaction. */
  async function lastZxid(): Promise<bigint> {
    const answer = await fourLetterWord('127.0.0.1', server.port, 'srvr');
    const match = /^Zxid:\s*(0x[0-9a-f]+)\s*$/m.exec(answer);
    if (match?.[1] === undefined) throw new Error(`no Zxid in srvr's answer: ${answer}`);
    return BigInt(match[1]);
  }

  test('consumes asked for together leave in one transaction', async () => {
    await queue.putMany(jobIds(5).map((jobId) => ({ jobId })));
    const items = await Promise.all(Array.from({ length: 5 }, () => queue.take()));
    const before = await lastZxid();
    await Promise.all(items.map((item) => queue.consume(item)));
    const transactions = (await lastZxid()) - before;
    // One each would be 5; nothing else writes to this server meanwhile.
    assert.equal(transactions, 1n, `${String(transactions)} transactions for 5 consumes`);
    assert.equal(await queue.length(), 0);
    assert.equal((await client.getChildren(`${root}/taken`)).length, 0);
  });

  test('when one entry of a batch is gone, the others are consumed and only that one fails', async () => {
    await queue.putMany(jobIds(4).map((jobId) => ({ jobId })));
    const items = await Promise.all(Array.from({ length: 4 }, () => queue.take()));
    const [gone, ...kept] = items;
    assert.ok(gone !== undefined);
    // Removed behind the consumer's back, as `jobctl queue remove --force` does.
    await client.remove(`${root}/entries/${gone.name}`);
    const results = await Promise.allSettled(items.map((item) => queue.consume(item)));
    assert.equal(results[0]?.status, 'rejected');
    assert.ok(isZkError(results[0].reason, 'NO_NODE'));
    assert.deepEqual(
      results.slice(1).map((result) => result.status),
      kept.map(() => 'fulfilled'),
    );
    assert.equal(await queue.length(), 0);
    assert.deepEqual(await client.getChildren(`${root}/taken`), [gone.name]);
    await client.remove(`${root}/taken/${gone.name}`);
  });
});

describe('across processes', () => {
  test('4 processes x 16 slots take 10,000 jobs, each exactly once', async () => {
    const ids = jobIds(10_000);
    await queue.putMany(ids.map((jobId) => ({ jobId })));
    for (let i = 0; i < 4; i++) {
      consumers.push(spawnConsumer({ connectionString: server.connectionString, path: root, slots: 16, waitForStart: true }));
    }
    await Promise.all(consumers.map((consumer) => consumer.ready));
    for (const consumer of consumers) consumer.start();
    await waitFor(() => consumers.reduce((sum, consumer) => sum + consumer.consumed.length, 0) >= ids.length, {
      timeoutMs: 120_000,
      intervalMs: 100,
      message: '10,000 jobs consumed',
    });
    await Promise.all(consumers.map((consumer) => consumer.stop()));
    const all = consumers.flatMap((consumer) => consumer.consumed);
    assert.equal(all.length, ids.length, 'no job consumed twice');
    assert.deepEqual([...all].sort(), ids);
    for (const consumer of consumers) assert.ok(consumer.consumed.length > 0, `process ${String(consumer.pid)} took some`);
    assert.equal(await queue.length(), 0);
  });

  test('items held by a process killed with -9 are taken again after its session times out', async () => {
    const sessionTimeoutMs = 2000;
    await queue.putMany(jobIds(10).map((jobId) => ({ jobId })));
    const holder = spawnConsumer({ connectionString: server.connectionString, path: root, mode: 'hold', holdCount: 4, sessionTimeoutMs });
    consumers.push(holder);
    const held = await holder.held;
    await holder.kill();
    const killedAt = Date.now();

    const retaken = new Map<string, number>();
    const controller = new AbortController();
    const takers = Array.from({ length: 10 }, async () => {
      const item = await queue.take(controller.signal);
      retaken.set(item.name, Date.now() - killedAt);
      await queue.consume(item);
    });
    await Promise.all(takers);
    assert.equal(retaken.size, 10);
    for (const name of held.names) {
      const after = retaken.get(name);
      assert.ok(after !== undefined, `${name} was taken again`);
      // The server drops the ephemeral node about one session timeout after the last heartbeat.
      assert.ok(after >= sessionTimeoutMs - 1000, `${name} retaken after ${String(after)} ms, not before the session expired`);
      assert.ok(after <= sessionTimeoutMs + 2000, `${name} retaken after ${String(after)} ms`);
    }
  });
});

describe('large backlog', () => {
  test('a backlog of 100,000 entries is served in order, and a new urgent entry jumps it', async () => {
    const ids = jobIds(100_000);
    for (let start = 0; start < ids.length; start += 5000) {
      await queue.putMany(ids.slice(start, start + 5000).map((jobId) => ({ jobId, priority: 500 })));
    }
    assert.equal(await queue.length(), 100_000);

    const taken: string[] = [];
    let urgentTakenAt = 0;
    const takeUntil = async (done: () => boolean): Promise<void> => {
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (!done()) {
            const item = await queue.take();
            taken.push(item.jobId);
            if (item.jobId === 'job/urgent') urgentTakenAt = Date.now();
            await queue.consume(item);
          }
        }),
      );
    };
    await takeUntil(() => taken.length >= 2000);
    const urgentPutAt = Date.now();
    await queue.put('job/urgent', 0);
    const seenAt = taken.length;
    // Until the urgent entry comes (however fast the takes go meanwhile), or far too many came first.
    const TOO_MANY = 20_000;
    await takeUntil(() => urgentTakenAt > 0 || taken.length >= seenAt + TOO_MANY);
    const urgentAt = taken.indexOf('job/urgent');
    assert.ok(urgentAt >= seenAt, `urgent entry not taken within ${String(TOO_MANY)} takes after it was put`);
    // It waits for the next listing refresh (rate-limited by what a 100k listing costs), not behind
    // 98,000 older entries.
    const waitedMs = urgentTakenAt - urgentPutAt;
    assert.ok(waitedMs < 2500, `urgent entry taken ${String(waitedMs)} ms (${String(urgentAt - seenAt)} takes) after it was put`);
    const backlogTaken = taken.filter((id) => id !== 'job/urgent');
    assert.equal(new Set(backlogTaken).size, backlogTaken.length, 'no duplicates');
    assert.deepEqual([...backlogTaken].sort(), ids.slice(0, backlogTaken.length), 'the oldest entries went first');
    assert.equal(await queue.length(), 100_000 + 1 - taken.length);
  });
});
