/**
 * Interoperability with Python's kazoo (the real library, run by Debian's Python) on one real
 * ZooKeeper: the queue and the election must work with a kazoo process on the other side, since the
 * job engine shares both with Nuvla's Python daemons. Each test runs in its own chroot.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, afterEach, before, beforeEach, describe, test } from 'node:test';

import { waitFor } from '../src/harness/wait-for.js';
import { startZooKeeper, type ZooKeeperServer } from '../src/harness/zookeeper-server.js';
import { LeaderElection, type Leadership } from '../src/recipes/election.js';
import { LockingQueue, type QueueItem } from '../src/recipes/locking-queue.js';
import { ZkClient } from '../src/zk/client.js';
import { removeTree } from './fixtures/zk-cleanup.js';
import { KazooProcess, killKazooProcesses, type KazooEvent } from './fixtures/kazoo-process.js';

const QUEUE = '/job';
const ELECTION = '/election/interop';
/** Seconds a fixture script may live: far beyond what any step needs, short enough to never hang a run. */
const DEADLINE = ['--deadline', '20'];
/** kazoo's session timeout in the kill -9 case (KazooClient(timeout=...)), in seconds. */
const KAZOO_SESSION_TIMEOUT_S = 2;
const PRIORITIES = [100, 5, 999, 50, 0, 100, 5] as const;

let server: ZooKeeperServer | undefined;
let root: ZkClient | undefined;
let scratchDir: string | undefined;
let chroot = '';
let testNumber = 0;
const clients: ZkClient[] = [];
const queues: LockingQueue[] = [];
const campaigns: AbortController[] = [];

function zk(): ZooKeeperServer {
  assert.ok(server, 'ZooKeeper is not running');
  return server;
}

function hosts(): string {
  return `${zk().connectionString}${chroot}`;
}

async function connect(): Promise<ZkClient> {
  const client = await ZkClient.connect({ connectionString: hosts(), sessionTimeoutMs: 4000 });
  clients.push(client);
  return client;
}

function openQueue(client: ZkClient): LockingQueue {
  const queue = new LockingQueue(client, { path: QUEUE });
  queues.push(queue);
  return queue;
}

interface Put {
  readonly id: string;
  readonly priority: number;
}

function puts(prefix: string, count: number): Put[] {
  return Array.from({ length: count }, (_, i) => ({ id: `${prefix}-${String(i)}`, priority: PRIORITIES[i % PRIORITIES.length] ?? 100 }));
}

/** kazoo's order: lowest priority number first, then the order of putting (stable sort). */
function queueOrder(entries: readonly Put[]): string[] {
  return [...entries].sort((a, b) => a.priority - b.priority).map((entry) => entry.id);
}

function startQueueScript(mode: string, args: readonly string[]): KazooProcess {
  return KazooProcess.start('kazoo_queue.py', [hosts(), QUEUE, mode, ...args, ...DEADLINE]);
}

async function assertQueueEmpty(client: ZkClient, queue: LockingQueue): Promise<void> {
  assert.equal(await queue.length(), 0);
  assert.deepEqual(await client.getChildren(`${QUEUE}/entries`), []);
  assert.deepEqual(await client.getChildren(`${QUEUE}/taken`), []);
}

function assertKazooGotCleanly(got: readonly KazooEvent[]): void {
  for (const event of got) {
    assert.equal(event.holds, true, `kazoo's holds_lock() on ${JSON.stringify(event)}`);
    assert.equal(event.consumed, true, `kazoo's consume() on ${JSON.stringify(event)}`);
  }
}

before(async () => {
  server = await startZooKeeper();
  root = await ZkClient.connect({ connectionString: server.connectionString });
  scratchDir = await mkdtemp(join(tmpdir(), 'kazoo-interop-'));
});

beforeEach(() => {
  testNumber += 1;
  chroot = `/kazoo-interop/t${String(testNumber)}`;
});

afterEach(async () => {
  for (const controller of campaigns.splice(0)) controller.abort(new Error('test over'));
  for (const queue of queues.splice(0)) await queue.close();
  await killKazooProcesses();
  await Promise.all(clients.splice(0).map((client) => client.close()));
  if (root !== undefined) await removeTree(root, chroot);
});

after(async () => {
  await killKazooProcesses();
  if (root !== undefined) {
    await removeTree(root, '/kazoo-interop');
    await root.close();
  }
  await server?.stop();
  if (scratchDir !== undefined) await rm(scratchDir, { recursive: true, force: true });
});

describe('LockingQueue with kazoo', () => {
  test('kazoo put -> our take/consume: every id once, priority then FIFO', async () => {
    const client = await connect();
    const entries = puts('py', 20);
    const producer = startQueueScript(
      'put',
      entries.map((entry) => `${entry.id}:${String(entry.priority)}`),
    );
    await producer.finished();
    assert.equal(producer.all('put').length, entries.length);

    const queue = openQueue(client);
    assert.equal(await queue.length(), entries.length);
    const taken: QueueItem[] = [];
    while (taken.length < entries.length) {
      const item = await queue.take(AbortSignal.timeout(5000));
      taken.push(item);
      assert.ok(await queue.holds(item), `holds ${item.name}`);
      await queue.consume(item);
    }
    assert.deepEqual(
      taken.map((item) => item.jobId),
      queueOrder(entries),
    );
    assert.deepEqual(
      taken.map((item) => item.priority),
      entries.map((entry) => entry.priority).sort((a, b) => a - b),
    );
    await assertQueueEmpty(client, queue);
    // Nothing left: a take waits instead of handing out something twice.
    await assert.rejects(queue.take(AbortSignal.timeout(300)), { name: 'TimeoutError' });
  });

  test('our put/putMany -> kazoo get/consume: every id once, same order, kazoo holds the lock', async () => {
    const client = await connect();
    const queue = openQueue(client);
    const entries = puts('ts', 20);
    const names: string[] = [];
    for (const entry of entries.slice(0, 6)) names.push(await queue.put(entry.id, entry.priority));
    // One request without a priority: kazoo's default, 100, must be what it sees.
    const batch = entries
      .slice(6)
      .map((entry) => (entry.priority === 100 ? { jobId: entry.id } : { jobId: entry.id, priority: entry.priority }));
    names.push(...(await queue.putMany(batch)));
    assert.equal(names.length, entries.length);
    const ourLength = await queue.length();
    assert.equal(ourLength, entries.length);

    const consumer = startQueueScript('get', [String(entries.length)]);
    await consumer.finished();
    assert.equal(consumer.all('length')[0]?.length, ourLength, "kazoo's len(queue) vs our length()");
    const got = consumer.all('got');
    assert.deepEqual(
      got.map((event) => event.id),
      queueOrder(entries),
    );
    assert.deepEqual(
      got.map((event) => event.entry),
      [...names].sort(),
    );
    assertKazooGotCleanly(got);
    assert.equal(consumer.all('done')[0]?.length, 0);
    await assertQueueEmpty(client, queue);
  });

  test('kazoo and our 16 concurrent takers share one queue: every id consumed exactly once', async (t) => {
    const client = await connect();
    const queue = openQueue(client);
    const pyIds = puts('py', 250).map((entry) => entry.id);
    const tsEntries = puts('ts', 250);
    const expected = [...pyIds, ...tsEntries.map((entry) => entry.id)].sort();

    const consumer = startQueueScript('consume', []);
    await consumer.next('connected');
    const stop = new AbortController();
    const ours: string[] = [];
    const takers = Promise.all(
      Array.from({ length: 16 }, async () => {
        for (;;) {
          let item: QueueItem;
          try {
            item = await queue.take(stop.signal);
          } catch (error) {
            if (stop.signal.aborted) return;
            throw error;
          }
          await queue.consume(item);
          ours.push(item.jobId);
        }
      }),
    );
    // Both sides put while both sides consume.
    const producer = startQueueScript('put-all', ['100', ...pyIds]);
    await queue.putMany(tsEntries.map((entry) => ({ jobId: entry.id, priority: entry.priority })));
    await producer.finished();

    await Promise.race([
      waitFor(() => ours.length + consumer.all('got').length >= expected.length, {
        timeoutMs: 20_000,
        message: `${String(expected.length)} ids consumed by both sides together`,
      }),
      takers.then(() => {
        throw new Error('our takers stopped early');
      }),
    ]);
    stop.abort();
    await takers;
    consumer.send('stop');
    await consumer.finished();

    const got = consumer.all('got');
    const theirs = got.map((event) => String(event.id));
    assert.deepEqual([...ours, ...theirs].sort(), expected, 'each id consumed exactly once overall');
    assert.ok(ours.length > 0 && theirs.length > 0, `both sides consumed (ours ${String(ours.length)}, kazoo ${String(theirs.length)})`);
    assertKazooGotCleanly(got);
    await assertQueueEmpty(client, queue);
    t.diagnostic(`consumed: ours ${String(ours.length)}, kazoo ${String(theirs.length)}`);
  });
});

interface Interval {
  readonly who: string;
  readonly start: number;
  end: number | undefined;
}

/** Leadership intervals from both sides on one wall clock: exactly one leader at any time means no overlap. */
class LeadershipLog {
  readonly #intervals: Interval[] = [];

  /** Ours: from campaign() resolving until the Leadership's signal aborts (resign() aborts it first). */
  async campaign(election: LeaderElection): Promise<Leadership> {
    const controller = new AbortController();
    campaigns.push(controller);
    const leadership = await election.campaign(controller.signal);
    const interval: Interval = { who: election.identifier, start: Date.now(), end: undefined };
    this.#intervals.push(interval);
    if (leadership.signal.aborted) interval.end = interval.start;
    leadership.signal.addEventListener(
      'abort',
      () => {
        interval.end = Date.now();
      },
      { once: true },
    );
    return leadership;
  }

  /** kazoo's: from entering the leader function to leaving it, or until its process was killed. */
  kazoo(who: string, contender: KazooProcess, killedAt?: number): void {
    const ends = contender.all('stepping-down');
    contender.all('leading').forEach((leading, i) => {
      this.#intervals.push({ who, start: leading.t, end: ends[i]?.t ?? killedAt });
    });
  }

  assertOneLeaderAtATime(expectedOrder: readonly string[]): void {
    const intervals = [...this.#intervals].sort((a, b) => a.start - b.start);
    const shown = JSON.stringify(intervals);
    assert.deepEqual(
      intervals.map((interval) => interval.who),
      expectedOrder,
      shown,
    );
    intervals.slice(1).forEach((interval, i) => {
      const previous = intervals[i];
      assert.ok(previous?.end !== undefined && previous.end <= interval.start, `overlapping leaders: ${shown}`);
    });
  }
}

function startContender(identifier: string, extra: readonly string[] = []): KazooProcess {
  return KazooProcess.start('kazoo_election.py', [
    hosts(),
    ELECTION,
    identifier,
    '--session-timeout',
    String(KAZOO_SESSION_TIMEOUT_S),
    ...extra,
    ...DEADLINE,
  ]);
}

async function contendersAre(election: LeaderElection, expected: readonly string[]): Promise<void> {
  await waitFor(async () => (await election.contenders()).length === expected.length, {
    message: `${String(expected.length)} contenders`,
  });
  assert.deepEqual(await election.contenders(), expected);
}

/** Asks the kazoo contender for its own view, to check both sides read the election the same way. */
async function kazooContenders(contender: KazooProcess): Promise<unknown> {
  contender.send('contenders');
  return (await contender.next('contenders')).contenders;
}

describe('LeaderElection with kazoo', () => {
  test('kazoo leads first; ours takes over when kazoo steps down', async () => {
    const election = new LeaderElection(await connect(), { path: ELECTION, identifier: 'ts-a' });
    const log = new LeadershipLog();
    const kazoo = startContender('py-a');
    await kazoo.next('leading');

    let ours: Leadership | undefined;
    const campaign = log.campaign(election).then((leadership) => (ours = leadership));
    campaign.catch(() => undefined); // a failed test aborts it in afterEach
    await contendersAre(election, ['py-a', 'ts-a']);
    assert.deepEqual(await kazooContenders(kazoo), ['py-a', 'ts-a']);
    assert.equal(ours, undefined, 'ours must wait while kazoo leads');

    kazoo.send('stop');
    const leadership = await campaign;
    await kazoo.finished();
    await contendersAre(election, ['ts-a']);
    await leadership.resign();
    assert.ok(leadership.signal.aborted);
    await contendersAre(election, []);
    log.kazoo('py-a', kazoo);
    log.assertOneLeaderAtATime(['py-a', 'ts-a']);
  });

  test('ours leads first; kazoo takes over on resign(), ours again when kazoo stops', async () => {
    const election = new LeaderElection(await connect(), { path: ELECTION, identifier: 'ts-b' });
    const log = new LeadershipLog();
    const first = await log.campaign(election);
    assert.ok(scratchDir);
    const stopFile = join(scratchDir, 'stop-py-b');
    const kazoo = startContender('py-b', ['--stop-file', stopFile]);
    await contendersAre(election, ['ts-b', 'py-b']);
    assert.deepEqual(await kazooContenders(kazoo), ['ts-b', 'py-b']);
    assert.equal(kazoo.has('leading'), false, 'kazoo must wait while ours leads');

    await first.resign();
    await kazoo.next('leading');
    let second: Leadership | undefined;
    const campaign = log.campaign(election).then((leadership) => (second = leadership));
    campaign.catch(() => undefined);
    await contendersAre(election, ['py-b', 'ts-b']);
    assert.equal(second, undefined, 'ours must wait while kazoo leads');

    await writeFile(stopFile, '');
    const leadership = await campaign;
    await kazoo.finished();
    await leadership.resign();
    log.kazoo('py-b', kazoo);
    log.assertOneLeaderAtATime(['ts-b', 'py-b', 'ts-b']);
  });

  test('our client closed while leading: its signal aborts before kazoo leads', async () => {
    const client = await connect();
    const election = new LeaderElection(client, { path: ELECTION, identifier: 'ts-d' });
    const log = new LeadershipLog();
    const leadership = await log.campaign(election);
    const kazoo = startContender('py-d');
    await contendersAre(election, ['ts-d', 'py-d']);

    await client.close();
    assert.ok(leadership.signal.aborted, 'closing the client ends leadership');
    await kazoo.next('leading');
    kazoo.send('stop');
    await kazoo.finished();
    log.kazoo('py-d', kazoo);
    log.assertOneLeaderAtATime(['ts-d', 'py-d']);
  });

  test('kazoo leader killed with SIGKILL: ours leads once its session expires', async (t) => {
    const election = new LeaderElection(await connect(), { path: ELECTION, identifier: 'ts-c' });
    const log = new LeadershipLog();
    const kazoo = startContender('py-c');
    await kazoo.next('leading');
    const campaign = log.campaign(election);
    campaign.catch(() => undefined);
    await contendersAre(election, ['py-c', 'ts-c']);

    const status = await kazoo.kill('SIGKILL');
    assert.equal(status.signal, 'SIGKILL');
    const killedAt = Date.now();
    const leadership = await campaign;
    const takeoverMs = Date.now() - killedAt;
    // Its node stays until ZooKeeper expires the session: ours must not lead before.
    assert.ok(
      takeoverMs >= (KAZOO_SESSION_TIMEOUT_S * 1000) / 2 && takeoverMs <= KAZOO_SESSION_TIMEOUT_S * 1000 * 3,
      `took over ${String(takeoverMs)} ms after the kill; kazoo's session timeout is ${String(KAZOO_SESSION_TIMEOUT_S)} s`,
    );
    t.diagnostic(`kill -9 -> ours leads: ${String(takeoverMs)} ms`);
    assert.deepEqual(await election.contenders(), ['ts-c']);
    await leadership.resign();
    log.kazoo('py-c', kazoo, killedAt);
    log.assertOneLeaderAtATime(['py-c', 'ts-c']);
  });
});
