import assert from 'node:assert/strict';
import { access } from 'node:fs/promises';
import { after, describe, test } from 'node:test';

import { createClient, CreateMode, State, type Client } from 'node-zookeeper-client';

import { fourLetterWord } from '../src/harness/four-letter-word.js';
import { freePort, freePorts } from '../src/harness/free-port.js';
import { waitFor } from '../src/harness/wait-for.js';
import { startEnsemble, type ZooKeeperEnsemble } from '../src/harness/zookeeper-ensemble.js';
import { startZooKeeper, type ZooKeeperServer } from '../src/harness/zookeeper-server.js';

function assertProcessGone(pid: number): void {
  assert.throws(() => process.kill(pid, 0), { code: 'ESRCH' }, `process ${pid} is still alive`);
}

async function assertMissing(path: string): Promise<void> {
  await assert.rejects(access(path), { code: 'ENOENT' }, `${path} still exists`);
}

/** Runs `use` with a connected client; closes it only once connected (closing mid-handshake crashes it). */
async function withClient<T>(connectionString: string, use: (client: Client) => Promise<T>): Promise<T> {
  const client = createClient(connectionString, { sessionTimeout: 4000 });
  client.connect();
  await waitFor(() => client.getState() === State.SYNC_CONNECTED, {
    timeoutMs: 10_000,
    message: `a ZooKeeper session with ${connectionString}`,
  });
  try {
    return await use(client);
  } finally {
    client.close();
  }
}

function createNode(client: Client, path: string, data: string): Promise<void> {
  return new Promise((resolve, reject) => {
    client.create(path, Buffer.from(data), CreateMode.PERSISTENT, (error) => {
      if (error === null) resolve();
      else reject(new Error(`create ${path}: ${error.toString()}`));
    });
  });
}

function readNode(client: Client, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    client.getData(path, (error, data) => {
      if (error === null) resolve(data.toString('utf8'));
      else reject(new Error(`getData ${path}: ${error.toString()}`));
    });
  });
}

describe('helpers', () => {
  test('freePorts hands out distinct ports', async () => {
    const ports = await freePorts(9);
    assert.equal(new Set(ports).size, 9);
  });

  test('fourLetterWord rejects a word that is not four letters', async () => {
    await assert.rejects(fourLetterWord('127.0.0.1', 1, 'stat;'), /not a four-letter word/);
  });

  test('fourLetterWord reports a refused connection', async () => {
    const port = await freePort();
    await assert.rejects(fourLetterWord('127.0.0.1', port, 'ruok'), /failed: .*ECONNREFUSED/);
  });

  test('waitFor returns the first truthy value and reports the last error on timeout', async () => {
    let calls = 0;
    assert.equal(await waitFor(() => (++calls >= 3 ? 'ready' : undefined), { intervalMs: 1 }), 'ready');
    await assert.rejects(
      waitFor(
        () => {
          throw new Error('still booting');
        },
        { timeoutMs: 100, intervalMs: 10, message: 'the thing' },
      ),
      /Timed out after 100 ms .* waiting for the thing; last error: still booting/,
    );
  });
});

describe('standalone ZooKeeper', () => {
  const servers: ZooKeeperServer[] = [];
  after(async () => {
    await Promise.all(servers.map((server) => server.stop()));
  });

  test('starts, answers ruok, reports standalone; stop() reaps the JVM and removes its directory', async () => {
    const zk = await startZooKeeper();
    servers.push(zk);
    assert.equal(zk.connectionString, `127.0.0.1:${zk.port}`);
    assert.equal(await fourLetterWord(zk.host, zk.port, 'ruok'), 'imok');
    assert.equal(await zk.mode(), 'standalone');

    await zk.stop();
    assertProcessGone(zk.pid);
    await assertMissing(zk.dataDir);
    await zk.stop();
  });

  test('kill() then restart() keeps the data and serves on the same port', async () => {
    const zk = await startZooKeeper();
    servers.push(zk);
    const { port, dataDir } = zk;
    const firstPid = zk.pid;
    await withClient(zk.connectionString, (client) => createNode(client, '/harness-marker', 'kept'));

    await zk.kill();
    assertProcessGone(firstPid);
    await assert.rejects(fourLetterWord(zk.host, port, 'ruok'), /ECONNREFUSED/);

    await zk.restart();
    assert.notEqual(zk.pid, firstPid);
    assert.equal(zk.port, port);
    assert.equal(zk.dataDir, dataDir);
    assert.equal(await fourLetterWord(zk.host, port, 'ruok'), 'imok');
    assert.equal(await withClient(zk.connectionString, (client) => readNode(client, '/harness-marker')), 'kept');
  });

  test('freeze() makes it unresponsive; unfreeze() brings it back', async () => {
    const zk = await startZooKeeper();
    servers.push(zk);

    zk.freeze();
    await assert.rejects(fourLetterWord(zk.host, zk.port, 'ruok', 500), /no complete answer within 500 ms/);
    zk.unfreeze();
    assert.equal(await fourLetterWord(zk.host, zk.port, 'ruok'), 'imok');
  });
});

describe('three-node ensemble', () => {
  let ensemble: ZooKeeperEnsemble | undefined;
  after(async () => {
    await ensemble?.stop();
  });

  test('elects one leader, re-elects after the leader is killed, and stop() cleans up', async () => {
    const zk = await startEnsemble();
    ensemble = zk;
    const { members } = zk;
    assert.equal(members.length, 3);
    assert.equal(zk.connectionString, members.map((member) => `127.0.0.1:${member.port}`).join(','));

    const modes = await Promise.all(members.map((member) => member.mode()));
    assert.deepEqual([...modes].sort(), ['follower', 'follower', 'leader']);

    const oldLeader = await zk.leader();
    await oldLeader.kill();
    const newLeader = await waitFor(
      async () => {
        const leader = await zk.leader({ timeoutMs: 1000 });
        return leader.id !== oldLeader.id ? leader : undefined;
      },
      { timeoutMs: 20_000, message: 'a new leader among the two survivors' },
    );
    assert.notEqual(newLeader.id, oldLeader.id);

    await oldLeader.restart();
    assert.equal(await oldLeader.mode(), 'follower');

    await zk.stop();
    for (const member of members) {
      assertProcessGone(member.pid);
      await assertMissing(member.dataDir);
    }
    await zk.stop();
  });
});
