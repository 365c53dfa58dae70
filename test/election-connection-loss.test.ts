/**
 * LeaderElection when a connection loss (the session surviving) hits one exact step: a proxy in front
 * of a real ZooKeeper cuts the connection at a chosen request (or holds it, as a partition would).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, afterEach, before, describe, test } from 'node:test';

import { waitFor } from '../src/harness/wait-for.js';
import { startZooKeeper, type ZooKeeperServer } from '../src/harness/zookeeper-server.js';
import { ZkClient, type ClientStateChange } from '../src/zk/client.js';
import { startCutProxy, ZK_OP, type CutProxy } from './fixtures/election-cut-proxy.js';
import {
  ELECTION,
  abortedAt,
  campaign,
  elect,
  electionNodes,
  reasonOf,
  settledAfter,
  watchedPaths,
  within,
} from './fixtures/election-testbed.js';
import { removeTreeAt } from './fixtures/zk-cleanup.js';

const ROOT = '/election-connection-loss-tests';
const LOCK_NODE = /__lock__\d{10}$/;

let zk: ZooKeeperServer | undefined;
let proxy: CutProxy | undefined;
let chroot = ROOT;
const clients: ZkClient[] = [];

function server(): ZooKeeperServer {
  if (zk === undefined) throw new Error('ZooKeeper did not start');
  return zk;
}

function cutProxy(): CutProxy {
  if (proxy === undefined) throw new Error('the proxy did not start');
  return proxy;
}

async function connect(via: 'proxy' | 'direct'): Promise<ZkClient> {
  const hosts = via === 'proxy' ? cutProxy().connectionString : server().connectionString;
  const client = await ZkClient.connect({ connectionString: `${hosts}${chroot}` });
  clients.push(client);
  return client;
}

/** Resolves once `client` is back on the same session after a connection loss. */
function reconnected(client: ZkClient): Promise<ClientStateChange> {
  return new Promise((resolve) => {
    const unsubscribe = client.onStateChange((change) => {
      if (change.state === 'CONNECTED' && change.reconnected) {
        unsubscribe();
        resolve(change);
      }
    });
  });
}

describe('LeaderElection across connection losses', () => {
  let testNumber = 0;

  before(async () => {
    zk = await startZooKeeper();
    proxy = await startCutProxy(zk);
  });

  afterEach(async () => {
    proxy?.restore();
    await Promise.allSettled(clients.splice(0).map((client) => client.close()));
    await removeTreeAt(server().connectionString, chroot);
  });

  after(async () => {
    try {
      await removeTreeAt(server().connectionString, ROOT);
    } finally {
      await proxy?.close();
      await zk?.stop();
    }
  });

  const newChroot = (): void => {
    testNumber += 1;
    chroot = `${ROOT}/t${String(testNumber)}-${randomUUID().slice(0, 8)}`;
  };

  test('a leader whose node watch is cut in flight still notices the deletion of its node', async () => {
    newChroot();
    const leaderClient = await connect('proxy');
    const otherClient = await connect('direct');
    const cut = cutProxy().cutAt({
      match: (request) => request.type === ZK_OP.EXISTS && request.watch === true && LOCK_NODE.test(request.path ?? ''),
    });
    const back = reconnected(leaderClient);
    const leader = await within(elect(leaderClient, 'leader').campaign(), 5000, 'the leader');
    await within(cut, 2000, "the leader's node watch to be cut");
    await within(back, 5000, 'the leader to reconnect');
    assert.equal(leader.signal.aborted, false, 'a short connection loss within the grace period costs nothing');

    const lost = abortedAt(leader.signal);
    await otherClient.remove(`${ELECTION}/${leader.node}`);
    await within(lost, 2000, "the leader's signal to abort: another contender may lead now");
    assert.match(reasonOf(leader.signal), /deleted/);
  });

  test('a leader notices on reconnection that its node was deleted while it was cut off', async () => {
    newChroot();
    const leaderClient = await connect('proxy');
    const otherClient = await connect('direct');
    const leader = await within(elect(leaderClient, 'leader', { suspendedGraceMs: 8000 }).campaign(), 5000, 'the leader');
    const nodePath = `${chroot}${ELECTION}/${leader.node}`;
    await waitFor(async () => (await watchedPaths(server(), leaderClient)).includes(nodePath), { message: 'the leader to watch its node' });
    // The server sets the watch before it replies; replies come in order, so after this round trip the
    // client has the reply too and registered the watch (to set it again on reconnection).
    await leaderClient.exists('/');
    const lost = abortedAt(leader.signal);

    cutProxy().isolate();
    await waitFor(() => leaderClient.state === 'SUSPENDED', { message: 'the leader to be cut off' });
    await otherClient.remove(`${ELECTION}/${leader.node}`);
    const back = reconnected(leaderClient);
    cutProxy().restore();
    await within(back, 5000, 'the leader to reconnect');
    await within(lost, 2000, "the leader's signal to abort");
    assert.match(reasonOf(leader.signal), /deleted/);
  });

  test('a contender whose turn check is cut by a connection loss keeps one node and leads in turn', async () => {
    newChroot();
    const leaderClient = await connect('direct');
    const waiterClient = await connect('proxy');
    const leader = await within(elect(leaderClient, 'leader').campaign(), 5000, 'the leader');
    const cut = cutProxy().cutAt({ match: (request) => request.type === ZK_OP.GET_CHILDREN2 && request.path === `${chroot}${ELECTION}` });
    const waiting = campaign(elect(waiterClient, 'waiter'));
    await within(cut, 5000, "the waiter's turn check to be cut");
    await waitFor(async () => (await watchedPaths(server(), waiterClient)).some((path) => LOCK_NODE.test(path)), {
      message: 'the waiter to wait again after reconnecting',
    });
    const nodes = await electionNodes(leaderClient);

    // Were it in twice, its newer node would wait on its older one for as long as its session lives.
    await leader.resign();
    await within(
      waiting.result,
      2000,
      `the waiter to lead once the leader resigned (nodes: ${nodes.map((node) => node.identifier).join(', ')})`,
    );
    assert.deepEqual(
      nodes.map((node) => node.identifier),
      ['leader', 'waiter'],
    );
  });

  test("a closing leader's signal aborts before its node can go, even when the close is not confirmed", async (t) => {
    newChroot();
    const leaderClient = await connect('proxy');
    const standbyClient = await connect('direct');
    const leader = await within(elect(leaderClient, 'leader').campaign(), 5000, 'the leader');
    const lost = abortedAt(leader.signal);
    const standby = campaign(elect(standbyClient, 'standby'));
    await waitFor(async () => (await watchedPaths(server(), standbyClient)).includes(`${chroot}${ELECTION}/${leader.node}`), {
      message: 'the standby to watch the leader',
    });
    // The server gets the close (and deletes the node) but its confirmation never reaches the leader.
    const held = cutProxy().cutAt({ match: (request) => request.type === ZK_OP.CLOSE_SESSION, forward: true, hold: true });

    const closedAt = performance.now();
    const closing = leaderClient.close();
    await within(held, 2000, 'the close request');
    await within(standby.result, 2000, 'the standby to lead');
    const overlapMs = settledAfter(standby, closedAt);
    const leaderStillLeading = !leader.signal.aborted;
    await closing;
    t.diagnostic(`leader aborted ${((await lost) - closedAt).toFixed(0)} ms after close(); standby led after ${overlapMs.toFixed(0)} ms`);
    assert.equal(leaderStillLeading, false, 'the standby led while the closing leader still held a live leadership');
  });

  test('a contender whose create reply is lost finds its node instead of entering twice', async () => {
    newChroot();
    const leaderClient = await connect('direct');
    const waiterClient = await connect('proxy');
    const leader = await within(elect(leaderClient, 'leader').campaign(), 5000, 'the leader');
    const cut = cutProxy().cutAt({
      match: (request) => (request.type === ZK_OP.CREATE || request.type === ZK_OP.CREATE2) && (request.path ?? '').endsWith('__lock__'),
      forward: true,
    });
    const waiting = campaign(elect(waiterClient, 'waiter'));
    await within(cut, 5000, "the waiter's create to be cut");
    await waitFor(async () => (await watchedPaths(server(), waiterClient)).includes(`${chroot}${ELECTION}/${leader.node}`), {
      message: 'the waiter to watch the leader',
    });
    const nodes = await electionNodes(leaderClient);
    assert.deepEqual(
      nodes.map((node) => node.identifier),
      ['leader', 'waiter'],
    );

    await leader.resign();
    const next = await within(waiting.result, 2000, 'the waiter to lead once the leader resigned');
    assert.equal(next.node, nodes[1]?.name);
  });
});
