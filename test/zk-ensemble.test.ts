/**
 * Faults on a real 3-member loopback ensemble: leader killed during a queue run, the client's member
 * frozen past the session timeout, another member frozen, and the whole ensemble down past it.
 */
import assert from 'node:assert/strict';
import { after, afterEach, before, describe, test, type TestContext } from 'node:test';

import { waitFor } from '../src/harness/wait-for.js';
import { startEnsemble, type ZooKeeperEnsemble, type ZooKeeperMember } from '../src/harness/zookeeper-ensemble.js';
import { LockingQueue } from '../src/recipes/locking-queue.js';
import { ZkClient } from '../src/zk/client.js';
import { ZkError } from '../src/zk/errors.js';
import {
  CHROOT_PARENT,
  FaultLedger,
  childrenOf,
  MemoryLogger,
  StateRecorder,
  connectOnFollower,
  connectionStringOf,
  servingMember,
  uniqueChroot,
  waitHealthy,
} from './fixtures/zk-ensemble-faults.js';
import { ConsumptionLedger, consumerLoop, produce } from './fixtures/zk-ensemble-queue-run.js';
import { removeTree } from './fixtures/zk-cleanup.js';

const SESSION_TIMEOUT_MS = 4000;
const JOBS = 3000;
const PUT_BATCH = 100;
const SLOTS = 16;
// Keeps the producer putting while the leader dies, so both sides of the queue see the fault.
const MAX_BACKLOG = 400;

describe('ZooKeeper ensemble faults', () => {
  let ensemble: ZooKeeperEnsemble | undefined;
  const faults = new FaultLedger();
  const closers: (() => Promise<void> | void)[] = [];
  const chroots: string[] = [];

  function theEnsemble(): ZooKeeperEnsemble {
    if (ensemble === undefined) throw new Error('the ensemble did not start');
    return ensemble;
  }

  async function connect(chroot: string, hosts = theEnsemble().connectionString, logger?: MemoryLogger): Promise<ZkClient> {
    const client = await ZkClient.connect({
      connectionString: `${hosts}${chroot}`,
      sessionTimeoutMs: SESSION_TIMEOUT_MS,
      ...(logger === undefined ? {} : { logger }),
    });
    closers.push(() => client.close());
    return client;
  }

  function newChroot(label: string): string {
    const chroot = uniqueChroot(label);
    chroots.push(chroot);
    return chroot;
  }

  before(async () => {
    ensemble = await startEnsemble({ size: 3, tickTimeMs: 500 });
  });

  after(async () => {
    await ensemble?.stop();
  });

  afterEach(async () => {
    // Every step runs even when one fails, so the next test still gets a whole ensemble.
    const failures: unknown[] = [];
    for (const close of closers.splice(0).reverse()) {
      try {
        await close();
      } catch (error) {
        failures.push(error);
      }
    }
    if (ensemble !== undefined) {
      await faults.heal(ensemble);
      const admin = await ZkClient.connect({ connectionString: ensemble.connectionString, sessionTimeoutMs: SESSION_TIMEOUT_MS });
      try {
        for (const chroot of chroots.splice(0)) await removeTree(admin, chroot);
        if ((await childrenOf(admin, CHROOT_PARENT)).length === 0) await removeTree(admin, CHROOT_PARENT);
      } finally {
        await admin.close();
      }
    }
    if (failures.length > 0) throw failures[0];
  });

  test('killing the leader mid-run neither loses nor duplicates queue entries', async (t: TestContext) => {
    const chroot = newChroot('leader-kill');
    const consumerLog = new MemoryLogger();
    const consumerClient = await connect(chroot, undefined, consumerLog);
    const producerClient = await connect(chroot);
    const consumerStates = new StateRecorder(consumerClient);
    closers.push(() => {
      consumerStates.stop();
    });
    const consumer = new LockingQueue(consumerClient);
    closers.push(() => consumer.close());
    const producer = new LockingQueue(producerClient);
    closers.push(() => producer.close());
    const ledger = new ConsumptionLedger();
    const jobIds = Array.from({ length: JOBS }, (_, i) => `job/${String(i).padStart(5, '0')}`);

    const stop = new AbortController();
    closers.push(() => {
      stop.abort();
    });
    const slots = Array.from({ length: SLOTS }, () => consumerLoop(consumer, ledger, stop.signal));
    const producing = produce(producerClient, producer, jobIds, {
      batchSize: PUT_BATCH,
      maxBacklog: MAX_BACKLOG,
      ledger,
      signal: stop.signal,
    });
    // A failing slot or producer must end the run now, not after the deadline of the waits below.
    const runFailure = Promise.all([Promise.all(slots), producing]).then(() => undefined);

    // The consumer's connection history explains most failures of this test.
    try {
      const startedAt = performance.now();
      await Promise.race([
        runFailure,
        waitFor(() => ledger.confirmedCount >= JOBS / 3, { timeoutMs: 60_000, message: 'a third consumed', signal: stop.signal }),
      ]);
      const leader = await theEnsemble().leader();
      const consumerMember = servingMember(theEnsemble(), consumerClient);
      const consumedAtKill = ledger.confirmedCount;
      const producedAtKill = ledger.produced;
      const killedAt = performance.now();
      await faults.kill(leader);
      assert.ok(consumedAtKill < JOBS, 'the leader must die while jobs remain');
      const newLeader = await theEnsemble().leader();
      const electedMs = performance.now() - killedAt;
      const restartedAt = performance.now();
      await faults.restart([leader]);
      const restartMs = performance.now() - restartedAt;

      const producerReport = await producing;
      await Promise.race([
        runFailure,
        waitFor(async () => (await consumer.length()) === 0, {
          timeoutMs: 120_000,
          intervalMs: 100,
          message: 'an empty queue',
          signal: stop.signal,
        }),
      ]);
      stop.abort();
      await Promise.all(slots);
      const runMs = performance.now() - startedAt;

      // A consume cut short by a lost session was applied iff no later take consumed the entry and it is gone.
      let settledByServer = 0;
      for (const [jobId, name] of ledger.unsettled) {
        if ((ledger.confirmed.get(jobId) ?? 0) > 0) continue;
        assert.equal(await consumerClient.exists(`${consumer.paths.entries}/${name}`), undefined, `entry ${name} (${jobId}) left behind`);
        ledger.confirmed.set(jobId, 1);
        settledByServer++;
      }
      const duplicated = [...ledger.confirmed].filter(([, count]) => count > 1).map(([jobId]) => jobId);
      const lost = jobIds.filter((jobId) => !ledger.confirmed.has(jobId));
      assert.deepEqual(duplicated, [], 'jobs consumed more than once');
      assert.deepEqual(lost, [], 'jobs never consumed');
      assert.equal(ledger.confirmed.size, JOBS);
      assert.deepEqual(
        ledger.overlaps,
        [],
        `entries held by two live slots at once\n${ledger.overlaps.map((o) => ledger.explain(o.split(' ')[0] ?? '')).join('\n')}`,
      );
      assert.deepEqual(await consumerClient.getChildren(consumer.paths.entries), []);
      const orphans = await consumerClient.getChildren(consumer.paths.taken);
      const owners = await Promise.all(
        orphans.map(
          async (name) =>
            `${ledger.explain(name)} [owner ${String((await consumerClient.exists(`${consumer.paths.taken}/${name}`))?.ephemeralOwner)}]`,
        ),
      );
      assert.deepEqual(orphans, [], `taken nodes left behind (consumer session ${consumerClient.session.sessionId})\n${owners.join('\n')}`);
      assert.equal(consumer.heldCount, 0);

      // consume() settles a lost reply out of sight; a consume that spans a disconnect is one that may have had to.
      const disconnects = consumerStates.changes.filter((c) => c.state === 'SUSPENDED').map((c) => c.at);
      const acrossDisconnect = ledger.consumeSpans.filter(([from, to]) => disconnects.some((at) => from <= at && at <= to));
      const slowestConsumeMs = Math.max(0, ...ledger.consumeSpans.map(([from, to]) => to - from));
      t.diagnostic(
        `leader ${String(leader.id)} killed at ${consumedAtKill} consumed, ${producedAtKill} put of ${JOBS} (consumer on member ${String(consumerMember?.id)}); ` +
          `member ${String(newLeader.id)} led after ${Math.round(electedMs)} ms; old leader back after ${Math.round(restartMs)} ms; ` +
          `longest consume stall ${Math.round(ledger.longestStallMs)} ms; run ${Math.round(runMs)} ms; takes ${ledger.takes}; ` +
          `consumes across a disconnect ${acrossDisconnect.length}, slowest consume ${Math.round(slowestConsumeMs)} ms; unsettled ${ledger.unsettled.size} (applied ${settledByServer}); ` +
          `uncertain batches ${producerReport.uncertainBatches} (retried ${producerReport.batchRetries}); ` +
          `consumer sessions lost ${consumerStates.changes.filter((c) => c.state === 'LOST').length}`,
      );
    } finally {
      t.diagnostic(`consumer client:\n${consumerStates.describe()}\n${consumerLog.lines.join('\n')}`);
    }
  });

  test('a frozen member: the client moves to another within half the session timeout and keeps its session', async (t: TestContext) => {
    const chroot = newChroot('freeze-own');
    const { client, member: frozen, attempts } = await connectOnFollower(theEnsemble(), chroot, { sessionTimeoutMs: SESSION_TIMEOUT_MS });
    closers.push(() => client.close());
    assert.equal(await frozen.mode(), 'follower');
    assert.equal(servingMember(theEnsemble(), client), frozen, 'the client talks to the follower about to be frozen');
    const others = theEnsemble().members.filter((member) => member !== frozen);
    const observer = await connect(chroot, connectionStringOf(others, ''));
    assert.notEqual(servingMember(theEnsemble(), observer), frozen);

    const timeoutMs = client.session.negotiatedTimeoutMs;
    assert.equal(timeoutMs, SESSION_TIMEOUT_MS);
    const sessionId = client.session.sessionId;
    await client.create('/owned', Buffer.from('x'), 'ephemeral');
    const states = new StateRecorder(client);
    closers.push(() => {
      states.stop();
    });

    const frozenAt = performance.now();
    faults.freeze(frozen);
    const back = await states.waitFor(
      frozenAt,
      (c) => c.state === 'CONNECTED' || c.state === 'LOST',
      2 * timeoutMs,
      'the client to reconnect after the freeze',
    );
    const reconnectMs = back.at - frozenAt;
    assert.equal(back.state, 'CONNECTED', states.describe());
    assert.equal(back.reconnected, true);
    assert.equal(back.sessionId, sessionId);
    assert.ok(reconnectMs <= 0.6 * timeoutMs, `reconnected after ${Math.round(reconnectMs)} ms, over 0.6 x ${timeoutMs} ms`);
    const movedTo = servingMember(theEnsemble(), client);
    assert.ok(movedTo !== undefined && movedTo !== frozen, 'the client is now on another member');

    // Hold the freeze well past the session timeout, checking all along that the session and its node live.
    const holdMs = 1.5 * timeoutMs;
    let gone: string | undefined;
    await waitFor(
      async () => {
        const stat = await observer.exists('/owned');
        if (stat?.ephemeralOwner !== sessionId) gone ??= `after ${Math.round(performance.now() - frozenAt)} ms: ${JSON.stringify(stat)}`;
        return gone !== undefined || performance.now() - frozenAt >= holdMs;
      },
      { timeoutMs: holdMs + 10_000, intervalMs: 250, message: 'the freeze to outlast the session timeout' },
    );
    assert.equal(gone, undefined, `the ephemeral node vanished ${String(gone)}`);
    const heldMs = performance.now() - frozenAt;
    assert.ok(heldMs > timeoutMs);
    assert.equal((await observer.exists('/owned'))?.ephemeralOwner, sessionId);
    assert.equal(client.state, 'CONNECTED');
    assert.equal(client.session.sessionId, sessionId);
    assert.deepEqual(
      states.changes.filter((c) => c.state === 'LOST'),
      [],
    );

    faults.unfreeze(frozen);
    await waitHealthy(theEnsemble());
    // The thawed member serves again and has caught up with what happened while it was frozen.
    const onThawed = await connect(chroot, frozen.connectionString);
    await waitFor(async () => (await onThawed.exists('/owned'))?.ephemeralOwner === sessionId, {
      message: 'the thawed member to see /owned',
    });
    await onThawed.create('/after-thaw', Buffer.from('y'));
    // Another member may not have applied that write yet when asked: ZooKeeper orders a client's own reads only.
    await waitFor(async () => (await client.exists('/after-thaw')) !== undefined, {
      message: 'the write through the thawed member to reach the others',
    });

    t.diagnostic(
      `connected to follower ${String(frozen.id)} after ${attempts} attempt(s); reconnected to member ${String(movedTo.id)} ` +
        `${Math.round(reconnectMs)} ms after the freeze (${(reconnectMs / timeoutMs).toFixed(2)} x timeout); frozen ${Math.round(heldMs)} ms\n${states.describe()}`,
    );
  });

  test('a frozen member the client is not connected to does not disturb it', async (t: TestContext) => {
    const chroot = newChroot('freeze-other');
    const client = await connect(chroot);
    const own = servingMember(theEnsemble(), client);
    assert.ok(own !== undefined);
    const modes = await Promise.all(theEnsemble().members.map((member) => member.mode()));
    const frozen = theEnsemble().members.find((member, index) => member !== own && modes[index] === 'follower');
    assert.ok(frozen !== undefined, `a follower other than member ${String(own.id)}`);
    await client.create('/counter', Buffer.from('0'));
    const states = new StateRecorder(client);
    closers.push(() => {
      states.stop();
    });

    const frozenAt = performance.now();
    faults.freeze(frozen);
    const holdMs = 1.5 * client.session.negotiatedTimeoutMs;
    let writes = 0;
    let slowestMs = 0;
    await waitFor(
      async () => {
        const began = performance.now();
        await client.setData('/counter', Buffer.from(String(++writes)));
        assert.equal((await client.getData('/counter')).data.toString(), String(writes));
        slowestMs = Math.max(slowestMs, performance.now() - began);
        return performance.now() - frozenAt >= holdMs;
      },
      { timeoutMs: holdMs + 10_000, intervalMs: 100, message: 'the freeze to outlast the session timeout' },
    );
    assert.deepEqual(states.changes, [], 'no state change while another member is frozen');
    assert.equal(servingMember(theEnsemble(), client), own);

    faults.unfreeze(frozen);
    await waitHealthy(theEnsemble());
    t.diagnostic(
      `client on member ${String(own.id)}, member ${String(frozen.id)} frozen ${Math.round(performance.now() - frozenAt)} ms; ` +
        `${writes} write+read pairs, slowest ${Math.round(slowestMs)} ms`,
    );
  });

  test('the whole ensemble down past the session timeout: a new session, and held items are lost', async (t: TestContext) => {
    const chroot = newChroot('all-down');
    const client = await connect(chroot);
    const queue = new LockingQueue(client);
    closers.push(() => queue.close());
    await queue.put('job/held');
    const item = await queue.take(AbortSignal.timeout(10_000));
    assert.equal(item.jobId, 'job/held');
    const oldSession = client.session;
    const states = new StateRecorder(client);
    closers.push(() => {
      states.stop();
    });

    const members: readonly ZooKeeperMember[] = theEnsemble().members;
    const downAt = performance.now();
    await Promise.all(members.map((member) => faults.kill(member)));
    const lost = await states.waitFor(downAt, (c) => c.state === 'LOST', 3 * SESSION_TIMEOUT_MS, 'the client to declare its session lost');
    const suspended = states.changes.find((c) => c.state === 'SUSPENDED');
    assert.equal(lost.sessionId, oldSession.sessionId);
    assert.equal(item.lost.aborted, true, 'the held item is flagged lost');
    assert.ok(oldSession.isEnded);
    await assert.rejects(queue.consume(item), (error: unknown) => error instanceof ZkError && error.code === 'SESSION_LOST');

    const restartAt = performance.now();
    await faults.restart(members);
    const upMs = performance.now() - restartAt;
    const connected = await states.waitFor(lost.at, (c) => c.state === 'CONNECTED', 30_000, 'a new session');
    assert.equal(connected.reconnected, false);
    assert.notEqual(connected.sessionId, oldSession.sessionId);
    assert.equal(client.session.sessionId, connected.sessionId);
    assert.equal(client.state, 'CONNECTED');

    // The entry survived: once the server expires the old session's taken node, it is taken again.
    const again = await queue.take(AbortSignal.timeout(3 * SESSION_TIMEOUT_MS + 10_000));
    const retakenMs = performance.now() - restartAt;
    assert.equal(again.jobId, 'job/held');
    assert.equal(again.session, client.session);
    await queue.consume(again);
    assert.equal(await queue.length(), 0);

    t.diagnostic(
      `suspended ${Math.round((suspended?.at ?? Number.NaN) - downAt)} ms after the kill, lost ${Math.round(lost.at - downAt)} ms after; ` +
        `ensemble back in ${Math.round(upMs)} ms; new session ${Math.round(connected.at - restartAt)} ms after the restart began; ` +
        `item retaken ${Math.round(retakenMs)} ms after it`,
    );
  });
});
