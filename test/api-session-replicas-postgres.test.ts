/**
 * Issue 14, finding 5, across replicas: two `job-api serve` processes on one PostgreSQL database (a
 * private cluster) sharing a session secret file, attacked over HTTP. A cookie logged in on A works on
 * B; after a logout on A, or after the key is revoked (`job-api revoke-key`, as an operator does), B
 * refuses it within the bound docs/security-api.md states, and so does a Bearer use of the key.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { openBackends } from '../src/api/backends.js';
import { SESSION_COOKIE } from '../src/api/auth/sessions.js';
import { freePort } from '../src/harness/free-port.js';
import { startPostgres, type PostgresServer } from '../src/harness/postgres-server.js';
import { spawnDaemon, type DaemonProcess } from './fixtures/daemon-process.js';

const API_BIN = fileURLToPath(new URL('../src/bin/job-api.ts', import.meta.url));
/** docs/security-api.md: how long another replica may still accept a logged-out session or a revoked key. */
const LOGOUT_BOUND_MS = 5_000;
const REVOCATION_BOUND_MS = 5_000;
/** For the requests themselves on a loaded machine; far below the bounds' own size. */
const SLACK_MS = 1_000;

let postgres: PostgresServer;
let database: string;
let dir: string;
const daemons: DaemonProcess[] = [];
let replicas: { a: string; b: string };

interface Key {
  readonly key: string;
  readonly secret: string;
}

async function spawnReplica(secretFile: string): Promise<string> {
  const port = await freePort();
  const api = spawnDaemon(
    API_BIN,
    ['serve', '--database', database, '--host', '127.0.0.1', '--port', String(port), '--session-secret-file', secretFile],
    {},
  );
  daemons.push(api);
  await Promise.race([
    api.waitForLine(/job api listening/),
    api.exited.then((status) => {
      throw new Error(`job-api exited before listening (${JSON.stringify(status)}):\n${api.lines.join('\n')}`);
    }),
  ]);
  return `http://127.0.0.1:${String(port)}`;
}

before(async () => {
  postgres = await startPostgres();
  database = await postgres.createDatabase(`sessions_${String(process.pid)}`);
  dir = await mkdtemp(join(tmpdir(), 'session-replicas-'));
  const secretFile = join(dir, 'session-secret');
  await writeFile(secretFile, `${randomBytes(32).toString('base64url')}\n`, { mode: 0o600 });
  // A first start creates the tables; then the second, so they do not race to create them.
  const a = await spawnReplica(secretFile);
  const b = await spawnReplica(secretFile);
  replicas = { a, b };
});

after(async () => {
  for (const daemon of daemons.splice(0)) await daemon.kill();
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
});

async function createKey(role: 'admin' | 'viewer'): Promise<Key> {
  const backends = await openBackends(database);
  try {
    const created = await backends.credentials.create(role, 'session replicas test');
    return { key: created.key, secret: created.secret };
  } finally {
    await backends.close();
  }
}

async function login(replica: string, key: Key): Promise<string> {
  const response = await fetch(`${replica}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ template: { href: 'session-template/api-key', key: key.key, secret: key.secret } }),
  });
  assert.equal(response.status, 201, await response.text());
  const token = /^[^=]+=([^;]+)/.exec(response.headers.get('set-cookie') ?? '')?.[1];
  assert.ok(token !== undefined, 'no session cookie');
  return token;
}

async function status(
  replica: string,
  auth: { cookie: string } | { bearer: Key },
  method = 'GET',
  path = '/api/job?last=0',
): Promise<number> {
  const headers =
    'cookie' in auth
      ? { cookie: `${SESSION_COOKIE}=${auth.cookie}` }
      : { authorization: `Bearer ${auth.bearer.key}:${auth.bearer.secret}` };
  const response = await fetch(`${replica}${path}`, { method, headers });
  await response.arrayBuffer();
  return response.status;
}

/** How long after `since` the replica first refused (401), polling until `boundMs` + slack have passed. */
async function refusedAfter(replica: string, auth: { cookie: string } | { bearer: Key }, since: number, boundMs: number): Promise<number> {
  const deadline = since + boundMs + SLACK_MS;
  for (;;) {
    const answer = await status(replica, auth);
    if (answer === 401) return Date.now() - since;
    assert.equal(answer, 200, 'only 200 until the refusal');
    if (Date.now() > deadline) {
      assert.fail(`${replica} still accepted it ${String(Date.now() - since)} ms later; the bound is ${String(boundMs)} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

describe('session revocation across two job-api processes on one PostgreSQL', () => {
  test('a logout on A ends the session on A at once and on B within the bound', async (t) => {
    const admin = await createKey('admin');
    const cookie = await login(replicas.a, admin);
    assert.equal(await status(replicas.a, { cookie }), 200);
    assert.equal(await status(replicas.b, { cookie }), 200, 'B accepts a session A issued');
    const loggedOut = Date.now();
    assert.equal(await status(replicas.a, { cookie }, 'DELETE', '/api/session'), 200);
    assert.equal(await status(replicas.a, { cookie }), 401, 'A refuses a logged-out session at once');
    const tookMs = await refusedAfter(replicas.b, { cookie }, loggedOut, LOGOUT_BOUND_MS);
    t.diagnostic(`B refused the logged-out session after ${String(tookMs)} ms`);
    assert.equal(await status(replicas.b, { cookie: await login(replicas.b, admin) }), 200, 'a new session of the key works');
  });

  test('job-api revoke-key ends the key on both replicas within the bound: its sessions and its Bearer use', async (t) => {
    const viewer = await createKey('viewer');
    const cookie = await login(replicas.a, viewer);
    // Both replicas have just checked the key and its session: whatever they cache, they cache now.
    for (const replica of [replicas.a, replicas.b]) {
      assert.equal(await status(replica, { cookie }), 200);
      assert.equal(await status(replica, { bearer: viewer }), 200);
    }
    const revoke = spawnDaemon(API_BIN, ['revoke-key', viewer.key, '--database', database], {});
    daemons.push(revoke);
    // The key in use on both replicas until the revocation is done (a command takes seconds to
    // start): their last look at it is then just before the revocation, not the bound's length before.
    const revoking = new AbortController();
    const keepingWarm = (async () => {
      while (!revoking.signal.aborted) {
        for (const replica of [replicas.a, replicas.b]) {
          await status(replica, { cookie });
          await status(replica, { bearer: viewer });
        }
      }
    })();
    const exit = await revoke.exited;
    revoking.abort();
    await keepingWarm;
    assert.equal(exit.code, 0, revoke.lines.join('\n'));
    const revoked = Date.now();
    const took = {
      sessionOnA: await refusedAfter(replicas.a, { cookie }, revoked, REVOCATION_BOUND_MS),
      sessionOnB: await refusedAfter(replicas.b, { cookie }, revoked, REVOCATION_BOUND_MS),
      bearerOnA: await refusedAfter(replicas.a, { bearer: viewer }, revoked, REVOCATION_BOUND_MS),
      bearerOnB: await refusedAfter(replicas.b, { bearer: viewer }, revoked, REVOCATION_BOUND_MS),
    };
    t.diagnostic(`refused after (ms): ${JSON.stringify(took)}`);
  });
});
