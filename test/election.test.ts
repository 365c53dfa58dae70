/**
 * LeaderElection against a real standalone ZooKeeper: hand-over on resign, abort, deletion and close;
 * takeover after a leader's crash (kill -9) only once its session expired; a frozen server costs the
 * leader its leadership within the grace period; a short outage within the grace period does not.
 */
import assert from 'node:assert/strict';
import { fork, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { after, afterEach, before, describe, test } from 'node:test';

import { waitFor } from '../src/harness/wait-for.js';
import { startZooKeeper, type ZooKeeperServer } from '../src/harness/zookeeper-server.js';
import { ZkClient, type ClientStateChange } from '../src/zk/client.js';
import type { ContenderConfig, ContenderReport } from './fixtures/election-contender.js';
import {
  ELECTION,
  abortedAt,
  campaign,
  elect,
  electionNodes,
  reasonOf,
  sessionNumber,
  sessionsWithEphemerals,
  settledAfter,
  watchedPaths,
  within,
} from './fixtures/election-testbed.js';
import { removeTreeAt } from './fixtures/zk-cleanup.js';

const ROOT = '/election-tests';
const CONTENDER_SCRIPT = fileURLToPath(new URL('./fixtures/election-contender.ts', import.meta.url));
const REPO_ROOT = fileURLToPath(new URL('..', import.meta.url));

let zk: ZooKeeperServer | undefined;
let chroot = ROOT;
const clients: ZkClient[] = [];
const children: ChildProcess[] = [];
let frozen = false;
let serverDown = false;

function server(): ZooKeeperServer {
  if (zk === undefined) throw new Error('ZooKeeper did not start');
  return zk;
}

async function connect(sessionTimeoutMs?: number): Promise<ZkClient> {
  const client = await ZkClient.connect({
    connectionString: `${server().connectionString}${chroot}`,
    ...(sessionTimeoutMs === undefined ? {} : { sessionTimeoutMs }),
  });
  clients.push(client);
  return client;
}

/** True once the server holds a watch by `waiter` on the election node `name`. */
async function isWatching(name: string, waiter: ZkClient): Promise<boolean> {
  return (await watchedPaths(server(), waiter)).includes(`${chroot}${ELECTION}/${name}`);
}

interface ContenderProcess {
  readonly child: ChildProcess;
  readonly leading: Promise<Extract<ContenderReport, { type: 'leading' }>>;
  readonly exited: Promise<unknown>;
}

function spawnContender(config: ContenderConfig): ContenderProcess {
  const child = fork(CONTENDER_SCRIPT, [], {
    cwd: REPO_ROOT,
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, ELECTION_CONTENDER_CONFIG: JSON.stringify(config) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  children.push(child);
  const exited = new Promise<unknown>((resolve) => child.once('exit', resolve));
  const report = <T extends ContenderReport['type']>(type: T): Promise<Extract<ContenderReport, { type: T }>> =>
    new Promise((resolve, reject) => {
      child.on('message', (raw: unknown) => {
        const message = raw as ContenderReport;
        if (message.type === type) resolve(message as Extract<ContenderReport, { type: T }>);
        else if (message.type === 'failed') reject(new Error(`contender failed: ${message.message}`));
      });
      void exited.then(() => {
        reject(new Error(`contender exited before reporting ${type}`));
      });
    });
  return { child, leading: report('leading'), exited };
}

describe('LeaderElection on a real ZooKeeper', () => {
  let testNumber = 0;

  before(async () => {
    zk = await startZooKeeper();
  });

  afterEach(async () => {
    for (const child of children.splice(0)) {
      if (child.exitCode === null && child.signalCode === null) {
        const exit = once(child, 'exit');
        child.kill('SIGKILL');
        await exit;
      }
    }
    if (frozen) server().unfreeze();
    frozen = false;
    if (serverDown) await server().restart();
    serverDown = false;
    await Promise.allSettled(clients.splice(0).map((client) => client.close()));
    await removeTreeAt(server().connectionString, chroot);
  });

  after(async () => {
    try {
      await removeTreeAt(server().connectionString, ROOT);
    } finally {
      await zk?.stop();
    }
  });

  const newChroot = (): void => {
    testNumber += 1;
    chroot = `${ROOT}/t${String(testNumber)}-${randomUUID().slice(0, 8)}`;
  };

  test('three contenders: one leads, the others wait in order; resign hands over at once', async (t) => {
    newChroot();
    const [clientA, clientB, clientC] = await Promise.all([connect(), connect(), connect()]);
    const [a, b, c] = [elect(clientA, 'a'), elect(clientB, 'b'), elect(clientC, 'c')];
    const leaderA = await within(campaign(a).result, 5000, 'a to lead alone');
    const lostA = abortedAt(leaderA.signal);

    // One at a time, so that sequence order is a, b, c.
    const campaignB = campaign(b);
    await waitFor(async () => (await electionNodes(clientA)).length === 2, { message: "b's node" });
    const campaignC = campaign(c);
    const nodes = await waitFor(
      async () => {
        const found = await electionNodes(clientA);
        return found.length === 3 && found;
      },
      { message: "c's node" },
    );
    assert.deepEqual(
      nodes.map((node) => node.identifier),
      ['a', 'b', 'c'],
    );
    assert.equal(nodes[0]?.name, leaderA.node);
    const nodeA = leaderA.node;
    const nodeB = nodes[1]?.name ?? '';
    await waitFor(async () => (await isWatching(nodeA, clientB)) && (await isWatching(nodeB, clientC)), {
      message: 'b to watch a and c to watch b',
    });
    assert.equal(campaignB.settledAt, undefined, 'b leads while a does');
    assert.equal(campaignC.settledAt, undefined, 'c leads while a does');
    assert.deepEqual(await a.contenders(), ['a', 'b', 'c']);
    assert.deepEqual(await c.contenders(), ['a', 'b', 'c']);

    const resignedAt = performance.now();
    await leaderA.resign();
    const leaderB = await within(campaignB.result, 1000, 'b to lead after a resigned');
    const takeoverMs = settledAfter(campaignB, resignedAt);
    t.diagnostic(`resign -> next leader: ${takeoverMs.toFixed(1)} ms`);
    assert.ok(takeoverMs < 500, `b took ${takeoverMs.toFixed(0)} ms to lead`);
    assert.ok((await lostA) - resignedAt <= takeoverMs, "a's signal aborts before b leads");
    assert.match(reasonOf(leaderA.signal), /resigned/);
    assert.equal(await clientA.exists(`${ELECTION}/${leaderA.node}`), undefined, "a's node is gone");
    assert.equal(leaderB.node, nodeB);
    assert.equal(campaignC.settledAt, undefined, 'c leads alongside b');
    assert.deepEqual(await a.contenders(), ['b', 'c']);

    await leaderB.resign();
    const leaderC = await within(campaignC.result, 1000, 'c to lead after b resigned');
    assert.deepEqual(await a.contenders(), ['c']);
    await leaderC.resign();
    assert.deepEqual(await clientA.getChildren(ELECTION), []);
  });

  test('an aborted campaign rejects and leaves no node behind', async () => {
    newChroot();
    const [leaderClient, waiterClient] = await Promise.all([connect(), connect()]);
    const leader = await within(campaign(elect(leaderClient, 'leader')).result, 5000, 'the leader');
    const waiter = elect(waiterClient, 'waiter');

    // Aborted while waiting for its turn.
    const controller = new AbortController();
    const waiting = campaign(waiter, controller.signal);
    const nodes = await waitFor(
      async () => {
        const found = await electionNodes(leaderClient);
        return found.length === 2 && found;
      },
      { message: "the waiter's node" },
    );
    await waitFor(() => isWatching(leader.node, waiterClient), { message: 'the waiter to watch the leader' });
    controller.abort(new Error('the test gave up waiting'));
    await assert.rejects(within(waiting.result, 2000, 'the campaign to reject'), /the test gave up waiting/);
    assert.equal(await leaderClient.exists(`${ELECTION}/${nodes[1]?.name ?? ''}`), undefined);
    assert.deepEqual(await leaderClient.getChildren(ELECTION), [leader.node]);

    // Aborted while still entering (its node being created).
    const early = new AbortController();
    const entering = campaign(waiter, early.signal);
    early.abort(new Error('aborted on entry'));
    await assert.rejects(within(entering.result, 2000, 'the campaign to reject'), /aborted on entry/);
    assert.deepEqual(await leaderClient.getChildren(ELECTION), [leader.node]);

    // Aborted before it starts.
    await assert.rejects(waiter.campaign(AbortSignal.abort(new Error('never started'))), /never started/);
    assert.deepEqual(await waiter.contenders(), ['leader']);
    assert.equal(leader.signal.aborted, false);
  });

  test('a leader whose node someone else deletes loses leadership; the next one leads', async (t) => {
    newChroot();
    const [leaderClient, standbyClient, otherClient] = await Promise.all([connect(), connect(), connect()]);
    const leader = await within(campaign(elect(leaderClient, 'leader')).result, 5000, 'the leader');
    const lost = abortedAt(leader.signal);
    const standby = campaign(elect(standbyClient, 'standby'));
    await waitFor(() => isWatching(leader.node, standbyClient), { message: 'the standby to watch the leader' });

    const deletedAt = performance.now();
    await otherClient.remove(`${ELECTION}/${leader.node}`);
    const lostAt = await within(lost, 2000, "the leader's signal to abort");
    assert.match(reasonOf(leader.signal), /deleted/);
    await within(standby.result, 2000, 'the standby to lead');
    t.diagnostic(
      `deletion -> leader aborted: ${(lostAt - deletedAt).toFixed(1)} ms; ` +
        `-> standby leads: ${settledAfter(standby, deletedAt).toFixed(1)} ms`,
    );
    assert.equal(leaderClient.state, 'CONNECTED', 'leadership was lost, not the session');
    assert.deepEqual(await elect(otherClient, 'other').contenders(), ['standby']);
  });

  test("a leader's closed client aborts its signal and the standby leads at once", async (t) => {
    newChroot();
    const [leaderClient, standbyClient] = await Promise.all([connect(), connect()]);
    const leader = await within(campaign(elect(leaderClient, 'leader')).result, 5000, 'the leader');
    const lost = abortedAt(leader.signal);
    const standby = campaign(elect(standbyClient, 'standby'));
    await waitFor(() => isWatching(leader.node, standbyClient), { message: 'the standby to watch the leader' });

    const closedAt = performance.now();
    await leaderClient.close();
    const lostAt = await within(lost, 2000, "the leader's signal to abort");
    assert.match(reasonOf(leader.signal), /closed/);
    await within(standby.result, 2000, 'the standby to lead');
    const takeoverMs = settledAfter(standby, closedAt);
    t.diagnostic(`close -> leader aborted: ${(lostAt - closedAt).toFixed(1)} ms; -> standby leads: ${takeoverMs.toFixed(1)} ms`);
    assert.ok(takeoverMs < 500, `the standby took ${takeoverMs.toFixed(0)} ms to lead`);
    assert.equal(await standbyClient.exists(`${ELECTION}/${leader.node}`), undefined);
  });

  test('kill -9 of a leader process: the standby leads only once its session expired', async (t) => {
    newChroot();
    const sessionTimeoutMs = 2000;
    const standbyClient = await connect();
    const contender = spawnContender({
      connectionString: `${server().connectionString}${chroot}`,
      path: ELECTION,
      identifier: 'child',
      sessionTimeoutMs,
    });
    const leading = await within(contender.leading, 20_000, 'the child process to lead');
    const standby = campaign(elect(standbyClient, 'standby'));
    await waitFor(() => isWatching(leading.node, standbyClient), { message: "the standby to watch the child's node" });
    assert.equal(standby.settledAt, undefined, 'the standby leads while the child does');

    const killedAt = performance.now();
    contender.child.kill('SIGKILL');
    await contender.exited;
    const leadership = await within(standby.result, sessionTimeoutMs + 5000, 'the standby to lead');
    const takeoverMs = settledAfter(standby, killedAt);
    // Checked before anything else: the child's session must already be over when the standby leads.
    const childNode = await standbyClient.exists(`${ELECTION}/${leading.node}`);
    const owners = await sessionsWithEphemerals(server());
    t.diagnostic(`kill -9 -> standby leads: ${takeoverMs.toFixed(0)} ms (session timeout ${sessionTimeoutMs} ms)`);
    assert.equal(childNode, undefined, "the child's node outlived the takeover");
    assert.ok(!owners.includes(sessionNumber(leading.sessionId)), "the child's session still owns ephemerals");
    assert.ok(takeoverMs >= sessionTimeoutMs - 1000, `the standby led after ${takeoverMs.toFixed(0)} ms, before expiry`);
    assert.ok(takeoverMs <= sessionTimeoutMs + 1500, `the standby led only after ${takeoverMs.toFixed(0)} ms`);
    assert.equal(leadership.signal.aborted, false);
    assert.deepEqual(await elect(standbyClient, 'x').contenders(), ['standby']);
  });

  test('a leader cut off by a frozen server loses leadership after the grace period, before expiry', async (t) => {
    newChroot();
    const sessionTimeoutMs = 3000;
    const graceMs = 500;
    const leaderClient = await connect(sessionTimeoutMs);
    const standbyClient = await connect();
    const leader = await within(campaign(elect(leaderClient, 'leader', { suspendedGraceMs: graceMs })).result, 5000, 'the leader');
    const lost = abortedAt(leader.signal);
    const leaderSession = leaderClient.session.sessionId;

    const frozenAt = performance.now();
    server().freeze();
    frozen = true;
    const lostAt = await within(lost, sessionTimeoutMs + 1000, "the leader's signal to abort");
    server().unfreeze();
    frozen = false;
    const abortMs = lostAt - frozenAt;
    assert.match(reasonOf(leader.signal), /suspended/);
    // Liveness detection: a probe overdue by a third of the session timeout, sent and checked on watchdog
    // ticks (a twelfth each), so at most timeout/3 + 2 ticks; then the grace; then 500 ms of slack.
    const detectionMs = sessionTimeoutMs / 3 + 2 * (sessionTimeoutMs / 12);
    assert.ok(abortMs >= graceMs, `aborted after ${abortMs.toFixed(0)} ms, within the grace period`);
    assert.ok(abortMs <= detectionMs + graceMs + 500, `aborted only after ${abortMs.toFixed(0)} ms`);

    await waitFor(() => leaderClient.state === 'CONNECTED', { timeoutMs: 15_000, message: 'the old leader to reconnect' });
    const recoveredAt = performance.now();
    const sameSession = leaderClient.session.sessionId === leaderSession;
    const standby = campaign(elect(standbyClient, 'standby'));
    await within(standby.result, sessionTimeoutMs + 3000, 'the standby to lead past the old leader');
    t.diagnostic(
      `freeze -> leader aborted: ${abortMs.toFixed(0)} ms; old leader back on the ` +
        `${sameSession ? 'same' : 'a new'} session; standby led ${settledAfter(standby, recoveredAt).toFixed(0)} ms later`,
    );
    assert.equal(await standbyClient.exists(`${ELECTION}/${leader.node}`), undefined, "the old leader's node is still there");
    assert.deepEqual(await elect(standbyClient, 'x').contenders(), ['standby']);
  });

  test('a leader survives a server restart shorter than its grace period', async (t) => {
    newChroot();
    const leaderClient = await connect(8000);
    const changes: ClientStateChange[] = [];
    leaderClient.onStateChange((change) => changes.push(change));
    const leader = await within(campaign(elect(leaderClient, 'leader', { suspendedGraceMs: 5000 })).result, 5000, 'the leader');
    const leaderSession = leaderClient.session.sessionId;
    const nodePath = `${ELECTION}/${leader.node}`;
    // A leader whose own node watch is cut off in flight never sets it again (see the connection-loss
    // tests); this test is about an outage after the watch is in place.
    await waitFor(() => isWatching(leader.node, leaderClient), { message: 'the leader to watch its node' });
    await leaderClient.exists('/'); // replies come in order: the client has registered that watch too

    const killedAt = performance.now();
    serverDown = true;
    await server().kill();
    await server().restart();
    serverDown = false;
    const reconnected = await waitFor(() => changes.find((change) => change.state === 'CONNECTED'), {
      timeoutMs: 5000,
      message: 'the leader to reconnect',
    });
    t.diagnostic(`kill -9 + restart -> leader reconnected after ${(performance.now() - killedAt).toFixed(0)} ms`);
    assert.deepEqual(
      changes.map((change) => change.state),
      ['SUSPENDED', 'CONNECTED'],
    );
    assert.equal(reconnected.reconnected, true);
    assert.equal(leaderClient.session.sessionId, leaderSession);
    assert.equal(leader.signal.aborted, false, `leadership lost: ${leader.signal.aborted ? reasonOf(leader.signal) : ''}`);
    assert.equal((await leaderClient.exists(nodePath))?.ephemeralOwner, leaderSession);

    // The node watch was carried over the reconnection: a deletion is still noticed.
    const lost = abortedAt(leader.signal);
    const otherClient = await connect();
    await otherClient.remove(nodePath);
    await within(lost, 2000, "the leader's signal to abort after its node's deletion");
    assert.match(reasonOf(leader.signal), /deleted/);
  });
});
