/**
 * Job events across two API replicas sharing one PostgreSQL database (a private cluster): a stream
 * on one replica carries the events of the writes the other served, numbered by its own hub.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { FastifyInstance } from 'fastify';
import { JobApiClient } from '../src/api/client/index.js';
import { Authenticator } from '../src/api/auth/authenticator.js';
import { openBackends, type Backends } from '../src/api/backends.js';
import type { JobEvent } from '../src/api/job/events.js';
import { buildJobApi } from '../src/api/server/app.js';
import { JobEventHub } from '../src/api/server/event-hub.js';
import { PgEventRelay } from '../src/api/server/pg-event-relay.js';
import { startPostgres, type PostgresServer } from '../src/harness/postgres-server.js';
import { waitFor } from '../src/harness/wait-for.js';
import { silentLogger } from '../src/util/logger.js';

interface Replica {
  readonly app: FastifyInstance;
  readonly backends: Backends;
  readonly relay: PgEventRelay;
  readonly baseUrl: string;
}

let server: PostgresServer;
const replicas: Replica[] = [];

async function startReplica(url: string): Promise<Replica> {
  const backends = await openBackends(url);
  const events = new JobEventHub(silentLogger);
  const relay = await PgEventRelay.start(url, events, silentLogger);
  const app = await buildJobApi({ store: backends.jobs, access: new Authenticator(backends.credentials), logger: silentLogger, bodyLimitBytes: 1 << 20, maxBulkCreate: 1000, events });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  return { app, backends, relay, baseUrl: address };
}

before(async () => {
  server = await startPostgres();
  const url = await server.createDatabase(`events_${String(process.pid)}`);
  replicas.push(await startReplica(url), await startReplica(url));
});

after(async () => {
  for (const replica of replicas.splice(0)) {
    await replica.app.close();
    await replica.relay.close();
    await replica.backends.close();
  }
  await server.stop();
});

test("a stream on one replica carries the events of the other replica's writes", async () => {
  const [a, b] = replicas;
  assert.ok(a !== undefined && b !== undefined);
  const key = await a.backends.credentials.create('admin');
  const onA = await JobApiClient.create({ baseUrl: a.baseUrl, credentials: key, compatibility: 'engine' });
  const onB = await JobApiClient.create({ baseUrl: b.baseUrl, credentials: key, compatibility: 'engine' });
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
      [[id, 'created'], [id, 'taken'], [id, 'started'], [id, 'finished']],
    );
    assert.deepEqual(seen.map((event) => event.seq), [1, 2, 3, 4], "numbered by replica A's hub");
  } finally {
    controller.abort();
    await reading.catch(() => undefined);
    await onA.close();
    await onB.close();
  }
});
