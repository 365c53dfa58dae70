/**
 * Issue 14, finding 5, attacked over HTTP against the real server (two replicas on one SQLite file):
 *  - a copy of the database alone must not let anyone mint a session cookie the API accepts;
 *  - the database files (and the session secret file) are readable by their owner only;
 *  - logout ends the session at once on this replica and within the stated bound on another;
 *  - revoking a key ends its sessions.
 */
import assert from 'node:assert/strict';
import { createHmac, randomUUID } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import Database from 'better-sqlite3';

import { SESSION_COOKIE } from '../src/api/auth/sessions.js';
import { JobApiServer } from '../src/api/server/job-api-server.js';
import { compileJobApiServerOptions } from '../src/api/server/options.js';
import { silentLogger } from '../src/util/logger.js';

/** How long another replica may still accept a session logged out elsewhere (docs/security-api.md). */
const OTHER_REPLICA_BOUND_MS = 5_000;

let dir: string;
let database: string;
let replicaA: JobApiServer | undefined;
let replicaB: JobApiServer | undefined;
let admin: { key: string; secret: string };
let servers: { a: JobApiServer; b: JobApiServer };

async function start(): Promise<JobApiServer> {
  return JobApiServer.start(await compileJobApiServerOptions({ database, host: '127.0.0.1', port: 0 }), silentLogger);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'session-forgery-'));
  // A directory the server creates, as a first start on a new host does.
  database = join(dir, 'data', 'jobs.sqlite');
  replicaA = await start();
  replicaB = await start();
  admin = await replicaA.stores.credentials.create('admin', 'forgery test');
  servers = { a: replicaA, b: replicaB };
});

after(async () => {
  await replicaB?.stop();
  await replicaA?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function login(server: JobApiServer, key: { key: string; secret: string }): Promise<string> {
  const response = await fetch(`${server.address}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ template: { href: 'session-template/api-key', key: key.key, secret: key.secret } }),
  });
  assert.equal(response.status, 201, await response.text());
  const setCookie = response.headers.get('set-cookie') ?? '';
  const token = /^[^=]+=([^;]+)/.exec(setCookie)?.[1];
  assert.ok(token !== undefined, `no cookie in ${setCookie}`);
  return token;
}

async function withCookie(server: JobApiServer, token: string, method = 'GET', path = '/api/job?last=0'): Promise<number> {
  const response = await fetch(`${server.address}${path}`, { method, headers: { cookie: `${SESSION_COOKIE}=${token}` } });
  await response.arrayBuffer();
  return response.status;
}

/** Every text value in every table of a copy of the database: what an attacker holding it has. */
function textsOfCopy(copy: string): string[] {
  const db = new Database(copy, { readonly: true });
  try {
    const tables = db.prepare("SELECT name FROM sqlite_master WHERE type = 'table'").all() as { name: string }[];
    const texts: string[] = [];
    for (const { name } of tables) {
      for (const row of db.prepare(`SELECT * FROM "${name.replaceAll('"', '""')}"`).all() as Record<string, unknown>[]) {
        for (const value of Object.values(row)) if (typeof value === 'string') texts.push(value);
      }
    }
    return texts;
  } finally {
    db.close();
  }
}

/** The cookie format's signature under `key`, with every claim a server could want. */
function forge(key: Buffer): string {
  const claims = { credentialId: admin.key, role: 'admin', expires: Date.now() + 3_600_000, sid: randomUUID(), id: randomUUID() };
  const payload = Buffer.from(JSON.stringify(claims)).toString('base64url');
  return `${payload}.${createHmac('sha256', key).update(payload).digest('base64url')}`;
}

describe('session forgery and revocation', () => {
  test('a copy of the database alone cannot mint a cookie the API accepts', async () => {
    // A legitimate login first, so that whatever a server keeps for sessions exists by now.
    const real = await login(servers.a, admin);
    assert.equal(await withCookie(servers.a, real), 200, 'a real session works');
    const copy = join(dir, 'stolen.sqlite');
    const source = new Database(database, { readonly: true, fileMustExist: true });
    try {
      await source.backup(copy);
    } finally {
      source.close();
    }
    const candidates = new Set<string>(textsOfCopy(copy));
    let tried = 0;
    for (const text of candidates) {
      for (const key of [Buffer.from(text, 'utf8'), Buffer.from(text, 'base64url')]) {
        if (key.length === 0) continue;
        tried += 1;
        assert.equal(
          await withCookie(servers.a, forge(key)),
          401,
          `a cookie signed with a value from the database got in: ${text.slice(0, 12)}...`,
        );
      }
    }
    assert.ok(tried > 0, 'the copy held no text at all');
  });

  test('the database files and the session secret are readable by their owner only', async () => {
    // Written through the API, so the WAL files exist too.
    const token = await login(servers.a, admin);
    assert.equal(await withCookie(servers.a, token, 'POST', '/api/job'), 400, 'an empty create is refused, after opening the files');
    const files = [database, `${database}-wal`, `${database}-shm`, `${database}.session-secret`];
    for (const file of files) {
      assert.ok(existsSync(file), `${file} should exist`);
      const mode = (await stat(file)).mode & 0o777;
      assert.equal(mode.toString(8), '600', `${file} has mode ${mode.toString(8)}`);
    }
    const dirMode = (await stat(join(dir, 'data'))).mode & 0o777;
    assert.equal(dirMode & 0o077, 0, `the database directory has mode ${dirMode.toString(8)}`);
  });

  test('after logout the cookie gets 401: at once on this replica, within the bound on another', async () => {
    const token = await login(servers.a, admin);
    assert.equal(await withCookie(servers.a, token), 200);
    assert.equal(await withCookie(servers.b, token), 200, 'replicas accept each other sessions');
    assert.equal(await withCookie(servers.a, token, 'DELETE', '/api/session'), 200);
    assert.equal(await withCookie(servers.a, token), 401, 'this replica refuses a logged-out session at once');
    const deadline = Date.now() + OTHER_REPLICA_BOUND_MS + 5_000;
    let status = await withCookie(servers.b, token);
    while (status !== 401 && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 200));
      status = await withCookie(servers.b, token);
    }
    assert.equal(status, 401, 'the other replica still accepts the logged-out session');
    // Another session of the same key is not affected.
    assert.equal(await withCookie(servers.b, await login(servers.b, admin)), 200);
  });

  test('after key revocation its sessions get 401', async () => {
    const viewer = await servers.a.stores.credentials.create('viewer', 'revoked');
    const token = await login(servers.a, viewer);
    assert.equal(await withCookie(servers.a, token), 200);
    assert.equal(await servers.a.stores.credentials.revoke(viewer.key), true);
    assert.equal(await withCookie(servers.a, token), 401);
  });
});
