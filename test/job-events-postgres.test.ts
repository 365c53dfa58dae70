/**
 * Job events across two API replicas sharing one PostgreSQL database (a private cluster): a stream
 * on one replica carries the events of the writes the other served, numbered by its own hub.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { JobApiClient } from '../src/api/client/index.js';
import type { JobEvent } from '../src/api/job/events.js';
import { JobApiServer } from '../src/api/server/job-api-server.js';
import { compileJobApiServerOptions } from '../src/api/server/options.js';
import { startPostgres, type PostgresServer } from '../src/harness/postgres-server.js';
import { waitFor } from '../src/harness/wait-for.js';
import { silentLogger } from '../src/util/logger.js';

let server: PostgresServer;
const replicas: JobApiServer[] = [];

async function startReplica(url: string): Promise<JobApiServer> {
  const options = await compileJobApiServerOptions({
    database: url,
    host: '127.0.0.1',
    port: 0,
    'body-limit': 1 << 20,
    'max-bulk-create': 1000,
  });
  return JobApiServer.start(options, silentLogger);
}

before(async () => {
  server = await startPostgres();
  const url = await server.createDatabase(`events_${String(process.pid)}`);
  replicas.push(await startReplica(url), await startReplica(url));
});

after(async () => {
  for (const replica of replicas.splice(0)) await replica.stop();
  await server.stop();
});

test("a stream on one replica carries the events of the other replica's writes", async () => {
  const [a, b] = replicas;
  assert.ok(a !== undefined && b !== undefined);
  const key = await a.stores.credentials.create('admin');
  const onA = await JobApiClient.create({ baseUrl: a.address, credentials: key, compatibility: 'engine' });
  const onB = await JobApiClient.create({ baseUrl: b.address, credentials: key, compatibility: 'engine' });
  const controller = new AbortController();
  const seen: JobEvent[] = [];
  let opened = false;
  const reading = (async () => {
    for await (const event of onA.events({ action: 'relayed', signal: controller.signal, onOpen: () => (opened = true) })) seen.push(event);
  })();
  try {
    await waitFor(() => opened, { timeoutMs: 10_000, message: 'the stream on replica A to open' });
    const { id } = await onB.create({ action: 'relayed' });
    await onB.claim(id, 'tester@0000000000000001');
    await onB.edit(id, { state: 'SUCCESS', 'return-code': 0 });
    await waitFor(() => seen.length >= 4, { timeoutMs: 10_000, message: "replica B's four events on replica A" });
    assert.deepEqual(
      seen.map((event) => [event.job, event.type]),
      [
        [id, 'created'],
        [id, 'taken'],
        [id, 'started'],
        [id, 'finished'],
      ],
    );
    assert.deepEqual(
      seen.map((event) => event.seq),
      [1, 2, 3, 4],
      "numbered by replica A's hub",
    );
  } finally {
    controller.abort();
    await reading.catch(() => undefined);
    await onA.close();
    await onB.close();
  }
});

test("a viewer's stream on one replica leaves out the other replica's events of jobs it may not see", async () => {
  const [a, b] = replicas;
  assert.ok(a !== undefined && b !== undefined);
  const admin = await a.stores.credentials.create('admin');
  const viewer = await a.stores.credentials.create('viewer');
  const watching = await JobApiClient.create({ baseUrl: a.address, credentials: viewer, compatibility: 'engine' });
  const onB = await JobApiClient.create({ baseUrl: b.address, credentials: admin, compatibility: 'engine' });
  const controller = new AbortController();
  const seen: JobEvent[] = [];
  let opened = false;
  const reading = (async () => {
    for await (const event of watching.events({ action: 'relayed_acl', signal: controller.signal, onOpen: () => (opened = true) })) {
      seen.push(event);
    }
  })();
  try {
    await waitFor(() => opened, { timeoutMs: 10_000, message: 'the stream on replica A to open' });
    const hidden = await onB.create({ action: 'relayed_acl', acl: { owners: ['user/alice'] } });
    const shared = await onB.create({ action: 'relayed_acl', acl: { owners: ['user/alice'], 'view-meta': [viewer.key] } });
    const open = await onB.create({ action: 'relayed_acl' });
    await waitFor(() => seen.some((event) => event.job === open.id), { timeoutMs: 10_000, message: "replica B's last event on replica A" });
    assert.deepEqual(
      seen.map((event) => event.job),
      [shared.id, open.id],
      `only the jobs the viewer may see, not ${hidden.id}`,
    );
  } finally {
    controller.abort();
    await reading.catch(() => undefined);
    await watching.close();
    await onB.close();
  }
});
