import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createServer, type Server, type Socket } from 'node:net';
import { once } from 'node:events';
import { randomUUID } from 'node:crypto';
import { startZooKeeper, type ZooKeeperServer } from '../src/harness/zookeeper-server.js';
import { waitFor } from '../src/harness/wait-for.js';
import { ZkClient, type ClientStateChange } from '../src/zk/client.js';
import { isZkError } from '../src/zk/errors.js';
import { parseConnectionString } from '../src/zk/connection-string.js';
import { LockingQueue } from '../src/recipes/locking-queue.js';
import { startFaultProxy } from './fixtures/zk-fault-proxy.js';
import { removeTree } from './fixtures/zk-cleanup.js';

let server: ZooKeeperServer;
let admin: ZkClient;
const roots: string[] = [];

function uniqueRoot(): string {
  const root = `/session-test-${randomUUID()}`;
  roots.push(root);
  return root;
}

before(async () => {
  server = await startZooKeeper();
  admin = await ZkClient.connect({ connectionString: server.connectionString });
});

after(async () => {
  for (const root of roots) await removeTree(admin, root);
  await admin.close();
  await server.stop();
});

function recordStates(client: ZkClient): ClientStateChange[] {
  const changes: ClientStateChange[] = [];
  client.onStateChange((change) => changes.push(change));
  return changes;
}

describe('connection string', () => {
  test('parses servers and chroot', () => {
    const parsed = parseConnectionString('a:1, b:2/x/y/');
    assert.deepEqual(parsed.servers, [
      { host: 'a', port: 1 },
      { host: 'b', port: 2 },
    ]);
    assert.equal(parsed.chroot, '/x/y');
    assert.equal(parsed.hosts, 'a:1,b:2');
    assert.equal(parseConnectionString('zk').servers[0]?.port, 2181);
  });

  test('names the bad part', () => {
    assert.throws(() => parseConnectionString(''), /empty/);
    assert.throws(() => parseConnectionString('a:99999'), /port "99999" of "a:99999" is not 1-65535/);
    assert.throws(() => parseConnectionString('a:1,,b:2'), /empty server entry/);
    assert.throws(() => parseConnectionString('a:1/x//y'), /chroot "\/x\/\/y" is not a valid absolute path/);
  });

  test('bad options are refused before connecting', async () => {
    await assert.rejects(
      ZkClient.connect({ connectionString: server.connectionString, sessionTimeoutMs: 10 }),
      /session timeout must be an integer >= 1000/,
    );
    await assert.rejects(ZkClient.connect({ connectionString: server.connectionString, acl: 'creator-all' }), /needs digest credentials/);
  });
});

describe('connecting', () => {
  test('nothing listening: a clear error naming the servers, within the connect timeout', async () => {
    const probe = createServer();
    probe.listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const address = probe.address();
    assert.ok(address !== null && typeof address !== 'string');
    probe.close();
    const started = Date.now();
    await assert.rejects(
      ZkClient.connect({ connectionString: `127.0.0.1:${String(address.port)}`, connectTimeoutMs: 1500 }),
      (error: unknown) => isZkError(error, 'CONNECT_TIMEOUT') && error.message.includes(`127.0.0.1:${String(address.port)}`),
    );
    assert.ok(Date.now() - started < 4000);
  });

  test('a server that accepts but never answers is left for the next one', async () => {
    const silent = await silentServer();
    try {
      for (let i = 0; i < 3; i++) {
        const started = Date.now();
        const client = await ZkClient.connect({
          connectionString: `${silent.connectionString},${server.connectionString}`,
          sessionTimeoutMs: 3000,
        });
        assert.equal(client.session.server, server.connectionString);
        assert.ok(Date.now() - started < 3000, `connected in ${String(Date.now() - started)} ms`);
        await client.close();
      }
      // With only the silent server, connect gives up cleanly (close() of a client mid-handshake is unsafe).
      await assert.rejects(
        ZkClient.connect({ connectionString: silent.connectionString, sessionTimeoutMs: 3000, connectTimeoutMs: 2500 }),
        (error: unknown) => isZkError(error, 'CONNECT_TIMEOUT'),
      );
    } finally {
      await silent.close();
    }
  });

  test('a chroot is created and confines every operation, watches and transactions included', async () => {
    const root = uniqueRoot();
    const client = await ZkClient.connect({ connectionString: `${server.connectionString}${root}/inner` });
    const queue = new LockingQueue(client);
    try {
      await queue.put('job/in-chroot', 3);
      assert.deepEqual(await admin.getChildren(`${root}/inner/job/entries`), [(await client.getChildren('/job/entries'))[0]]);
      const item = await queue.take();
      assert.equal(item.jobId, 'job/in-chroot');
      await queue.consume(item);
      assert.equal(await queue.length(), 0);
    } finally {
      await queue.close();
      await client.close();
    }
  });
});

describe('errors', () => {
  test('are typed with the server code and path', async () => {
    const root = uniqueRoot();
    await admin.mkdirp(root);
    await assert.rejects(
      admin.create(root),
      (error: unknown) => isZkError(error, 'NODE_EXISTS') && error.zkCode === -110 && error.path === root,
    );
    await assert.rejects(admin.getData(`${root}/none`), (error: unknown) => isZkError(error, 'NO_NODE') && !error.retryable);
    await assert.rejects(
      admin.multi([
        { op: 'create', path: `${root}/a` },
        { op: 'remove', path: `${root}/missing` },
      ]),
      (error: unknown) => isZkError(error, 'NO_NODE') && error.failedOp === 1 && error.path === `${root}/missing`,
    );
    assert.equal(await admin.exists(`${root}/a`), undefined, 'a failed transaction changes nothing');
  });

  test('an error code the client library does not know fails the request, not the process', async () => {
    const proxy = await startFaultProxy(server);
    const client = await ZkClient.connect({ connectionString: proxy.connectionString });
    try {
      proxy.injectErrorCode(-127);
      await assert.rejects(client.exists('/'), (error: unknown) => isZkError(error, 'THROTTLED_OP') && error.retryable);
      proxy.injectErrorCode(-118);
      await assert.rejects(client.getChildren('/'), (error: unknown) => isZkError(error, 'SESSION_MOVED'));
      proxy.injectErrorCode(-999);
      await assert.rejects(client.getData('/'), (error: unknown) => isZkError(error, 'UNKNOWN_CODE') && error.zkCode === -999);
      assert.ok(Array.isArray(await client.getChildren('/')), 'the session still works');
    } finally {
      await client.close();
      await proxy.close();
    }
  });
});

describe('digest auth', () => {
  test('creator-all nodes are closed to other identities', async () => {
    const root = uniqueRoot();
    const owner = await ZkClient.connect({
      connectionString: server.connectionString,
      auth: { scheme: 'digest', credentials: 'engine:s3cret' },
      acl: 'creator-all',
    });
    const stranger = await ZkClient.connect({
      connectionString: server.connectionString,
      auth: { scheme: 'digest', credentials: 'other:pw' },
    });
    try {
      await owner.create(root, Buffer.from('private'));
      assert.equal((await owner.getData(root)).data.toString(), 'private');
      await assert.rejects(stranger.getData(root), (error: unknown) => isZkError(error, 'NO_AUTH'));
      await assert.rejects(admin.getData(root), (error: unknown) => isZkError(error, 'NO_AUTH'));
      await owner.remove(root);
    } finally {
      await owner.close();
      await stranger.close();
    }
  });
});

describe('session states', () => {
  test('server restarted within the session timeout: suspended, then reconnected to the same session', async () => {
    const root = uniqueRoot();
    const client = await ZkClient.connect({ connectionString: server.connectionString, sessionTimeoutMs: 8000 });
    const states = recordStates(client);
    const sessionId = client.session.sessionId;
    try {
      await client.mkdirp(root);
      await client.create(`${root}/mine`, undefined, 'ephemeral');
      await server.kill();
      await waitFor(() => client.state === 'SUSPENDED', { timeoutMs: 5000, message: 'client suspended' });
      await server.restart();
      await waitFor(() => client.state === 'CONNECTED', { timeoutMs: 8000, message: 'client reconnected' });
      assert.equal(client.session.sessionId, sessionId);
      assert.deepEqual(
        states.map((change) => change.state),
        ['SUSPENDED', 'CONNECTED'],
      );
      assert.equal(states[1]?.reconnected, true);
      assert.ok((await client.exists(`${root}/mine`)) !== undefined, 'the ephemeral node survived');
    } finally {
      await client.close();
    }
  });

  test('cut off longer than the session timeout: LOST, held items know, and a new session follows', async () => {
    const root = uniqueRoot();
    const sessionTimeoutMs = 2000;
    const client = await ZkClient.connect({ connectionString: server.connectionString, sessionTimeoutMs });
    const queue = new LockingQueue(client, { path: root });
    const states = recordStates(client);
    const oldSession = client.session;
    try {
      await queue.put('job/held');
      const item = await queue.take();
      server.freeze();
      const frozenAt = Date.now();
      await waitFor(() => item.lost.aborted, { timeoutMs: 3 * sessionTimeoutMs, message: 'held item lost' });
      const lostAfter = Date.now() - frozenAt;
      // Lost when the lease runs out: the session timeout less its margin after the last answered
      // request, so before the server can expire the session, and not long before (session-lease.ts).
      assert.ok(lostAfter >= sessionTimeoutMs / 2 && lostAfter < sessionTimeoutMs, `lost after ${String(lostAfter)} ms`);
      await assert.rejects(queue.consume(item), (error: unknown) => isZkError(error, 'SESSION_LOST'));
      server.unfreeze();
      await waitFor(() => client.state === 'CONNECTED', { timeoutMs: 10_000, message: 'new session' });
      assert.notEqual(client.session.sessionId, oldSession.sessionId);
      assert.deepEqual(
        states.map((change) => change.state),
        ['SUSPENDED', 'LOST', 'CONNECTING', 'CONNECTED'],
      );
      assert.ok(oldSession.isEnded);
      // The entry is free again once the server has expired the old session.
      const again = await queue.take(AbortSignal.timeout(10_000));
      assert.equal(again.jobId, 'job/held');
      await queue.consume(again);
    } finally {
      server.unfreeze();
      await queue.close();
      await client.close();
    }
  });

  test('close() while still connecting resolves without a crash', async () => {
    const silent = await silentServer();
    try {
      const connecting = ZkClient.connect({ connectionString: silent.connectionString, sessionTimeoutMs: 3000, connectTimeoutMs: 300 });
      await assert.rejects(connecting, (error: unknown) => isZkError(error, 'CONNECT_TIMEOUT'));
    } finally {
      await silent.close();
    }
  });
});

async function silentServer(): Promise<{ connectionString: string; close: () => Promise<void> }> {
  const sockets = new Set<Socket>();
  const silent: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => undefined);
  });
  silent.listen(0, '127.0.0.1');
  await once(silent, 'listening');
  const address = silent.address();
  if (address === null || typeof address === 'string') throw new Error('no address');
  return {
    connectionString: `127.0.0.1:${String(address.port)}`,
    close: async () => {
      for (const socket of sockets) socket.destroy();
      silent.close();
      await once(silent, 'close');
    },
  };
}
