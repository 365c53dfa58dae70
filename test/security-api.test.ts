/**
 * Issue 14 attacked over HTTP against the real job API (SQLite): least-privilege roles (finding 2) and
 * idempotency-key squatting (finding 8).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { openSqliteCredentialStore } from '../src/api/auth/credential-store.js';
import type { Role } from '../src/api/auth/credentials.js';
import { startTestApi, type ApiKey, type TestApi } from './fixtures/api-server.js';

interface Reply {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

let api: TestApi;
before(async () => {
  api = await startTestApi();
});
after(async () => {
  await api.close();
});

async function call(method: string, path: string, key: ApiKey, body?: unknown, headers: Record<string, string> = {}): Promise<Reply> {
  const response = await fetch(`${api.baseUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${key.key}:${key.secret}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
      ...headers,
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

describe('finding 8: an idempotency key is bound to its action and target', () => {
  test('the same key with the same action and target returns the existing job (200)', async () => {
    const key = `tick-${randomUUID()}`;
    const job = { action: 'dummy_test_action', 'target-resource': { href: 'nuvlabox/1' }, 'idempotency-key': key };
    const first = await call('POST', '/api/job', api.adminKey, job);
    assert.equal(first.status, 201);
    const again = await call('POST', '/api/job', api.adminKey, job);
    assert.equal(again.status, 200);
    assert.equal(again.body['resource-id'], first.body['resource-id']);
  });

  test('a squatted key with another action is 409 naming the action', async () => {
    const key = `tick-${randomUUID()}`;
    const squat = await call('POST', '/api/job', api.adminKey, { action: 'dummy_test_action', 'idempotency-key': key });
    assert.equal(squat.status, 201);
    const real = await call('POST', '/api/job', api.adminKey, { action: 'cleanup_jobs', 'idempotency-key': key });
    assert.equal(real.status, 409, JSON.stringify(real.body));
    assert.match(String(real.body.message), /idempotency key .* action "dummy_test_action", not "cleanup_jobs"/);
  });

  test('a squatted key with another target is 409 naming the target', async () => {
    const key = `tick-${randomUUID()}`;
    const base = { action: 'dummy_test_action', 'idempotency-key': key };
    assert.equal((await call('POST', '/api/job', api.adminKey, { ...base, 'target-resource': { href: 'nuvlabox/1' } })).status, 201);
    const other = await call('POST', '/api/job', api.adminKey, { ...base, 'target-resource': { href: 'nuvlabox/2' } });
    assert.equal(other.status, 409, JSON.stringify(other.body));
    assert.match(String(other.body.message), /target "nuvlabox\/1", not "nuvlabox\/2"/);
    const none = await call('POST', '/api/job', api.adminKey, base);
    assert.equal(none.status, 409, 'no target is a different target');
  });

  test('a bulk create that meets a squatted key is 409 naming the job index', async () => {
    const key = `tick-${randomUUID()}`;
    assert.equal((await call('POST', '/api/job', api.adminKey, { action: 'dummy_test_action', 'idempotency-key': key })).status, 201);
    const bulk = await call(
      'POST',
      '/api/job',
      api.adminKey,
      [{ action: 'dummy_test_action' }, { action: 'cleanup_jobs', 'idempotency-key': key }],
      { bulk: 'yes' },
    );
    assert.equal(bulk.status, 409, JSON.stringify(bulk.body));
    assert.match(String(bulk.body.message), /^job 1: idempotency key/);
  });
});

/** A job created (and optionally canceled, i.e. made final) by `key`; its id's uuid part for the routes. */
async function jobOf(key: ApiKey, action = 'dummy_test_action'): Promise<string> {
  const created = await call('POST', '/api/job', key, { action });
  assert.equal(created.status, 201, JSON.stringify(created.body));
  return String(created.body['resource-id']);
}

async function finalJob(): Promise<string> {
  const id = await jobOf(api.adminKey);
  assert.equal((await call('POST', `/api/${id}/cancel`, api.adminKey)).status, 200);
  return id;
}

describe('finding 2: least-privilege roles', () => {
  const keys = new Map<string, ApiKey>();
  const keyOf = async (role: string): Promise<ApiKey> => {
    let key = keys.get(role);
    if (key === undefined) {
      key = await api.createKey(role as Role);
      keys.set(role, key);
    }
    return key;
  };

  test('an executor key may not create, delete or bulk-delete jobs', async () => {
    const executor = await keyOf('executor');
    assert.equal((await call('POST', '/api/job', executor, { action: 'dummy_test_action' })).status, 403);
    const final = await finalJob();
    assert.equal((await call('DELETE', `/api/${final}`, executor)).status, 403);
    const bulk = await call('DELETE', `/api/job?filter=${encodeURIComponent("state='CANCELED'")}`, executor, undefined, { bulk: 'yes' });
    assert.equal(bulk.status, 403);
    assert.equal((await call('GET', `/api/${final}`, api.adminKey)).status, 200, 'still there');
  });

  test('an executor key edits only a job it claimed, and may not hand it to someone else', async () => {
    const executor = await keyOf('executor');
    const queued = await jobOf(api.adminKey);
    const edit = await call('PUT', `/api/${queued}`, executor, { 'status-message': 'hijacked' });
    assert.equal(edit.status, 403, 'a job nobody claimed');
    assert.equal((await call('POST', `/api/${queued}/cancel`, executor)).status, 403);
    const claim = await call('POST', `/api/${queued}/claim`, executor, { executor: 'node-1@0x1' });
    assert.equal(claim.status, 200, JSON.stringify(claim.body));
    assert.equal((await call('PUT', `/api/${queued}`, executor, { progress: 50 })).status, 200);
    const handOver = await call('PUT', `/api/${queued}`, executor, { executor: 'evil@0x2' });
    assert.equal(handOver.status, 403, JSON.stringify(handOver.body));
    assert.equal((await call('PUT', `/api/${queued}`, executor, { state: 'SUCCESS', 'return-code': 0 })).status, 200);
  });

  test('a producer creates jobs, reads them, and cancels only what it created; it may not edit or delete', async () => {
    const producer = await keyOf('producer');
    const own = await jobOf(producer);
    const read = await call('GET', `/api/${own}`, producer);
    assert.equal(read.status, 200);
    assert.equal(read.body['created-by'], producer.key, 'the creator is recorded');
    assert.equal((await call('PUT', `/api/${own}`, producer, { 'status-message': 'x' })).status, 403);
    assert.equal((await call('DELETE', `/api/${own}`, producer)).status, 403);
    const others = await jobOf(api.adminKey);
    assert.equal((await call('POST', `/api/${others}/cancel`, producer)).status, 403);
    assert.equal((await call('POST', `/api/${own}/cancel`, producer)).status, 200);
  });

  test('a maintenance key deletes final jobs only, singly and in bulk', async () => {
    const maintenance = await keyOf('maintenance');
    const queued = await jobOf(api.adminKey);
    const final = await finalJob();
    assert.equal((await call('DELETE', `/api/${queued}`, maintenance)).status, 403);
    assert.equal((await call('POST', '/api/job', maintenance, { action: 'dummy_test_action' })).status, 403);
    const bulk = await call('DELETE', `/api/job?filter=${encodeURIComponent("action='dummy_test_action'")}`, maintenance, undefined, {
      bulk: 'yes',
    });
    assert.equal(bulk.status, 200, JSON.stringify(bulk.body));
    assert.equal((await call('GET', `/api/${queued}`, api.adminKey)).status, 200, 'the QUEUED job survives a bulk delete');
    assert.equal((await call('GET', `/api/${final}`, api.adminKey)).status, 404, 'the final job is gone');
  });

  test('a viewer reads but may not create; an admin key still does everything', async () => {
    const viewer = await keyOf('viewer');
    assert.equal((await call('POST', '/api/job', viewer, { action: 'dummy_test_action' })).status, 403);
    const id = await jobOf(api.adminKey);
    assert.equal((await call('GET', `/api/${id}`, viewer)).status, 200);
    assert.equal((await call('PUT', `/api/${id}`, api.adminKey, { 'status-message': 'ok' })).status, 200);
    assert.equal((await call('DELETE', `/api/${id}`, api.adminKey)).status, 200);
  });
});

describe('finding 2: keys of the new roles in a database made before them', () => {
  test('an SQLite credentials table with the old role CHECK is rebuilt (and given the actions column), and keeps its keys', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'roles-migration-'));
    try {
      const file = join(dir, 'jobs.sqlite');
      const old = new Database(file);
      old.exec(`CREATE TABLE credentials (
        key TEXT PRIMARY KEY, role TEXT NOT NULL CHECK (role IN ('admin', 'executor', 'viewer')),
        secret_hash TEXT NOT NULL, description TEXT, created TEXT NOT NULL)`);
      old
        .prepare('INSERT INTO credentials VALUES (?, ?, ?, ?, ?)')
        .run(`credential/${randomUUID()}`, 'viewer', 'scrypt$x', null, '2026-01-01T00:00:00.000Z');
      old.close();
      const store = await openSqliteCredentialStore(file);
      try {
        const producer = await store.create('producer', undefined, { actions: ['dummy_test_action'] });
        assert.deepEqual(await store.verify(producer.key, producer.secret), {
          credentialId: producer.key,
          role: 'producer',
          actions: ['dummy_test_action'],
        });
        assert.deepEqual((await store.list()).map((info) => info.role).sort(), ['producer', 'viewer']);
      } finally {
        await store.close();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('finding 2: a key may carry an action allowlist', () => {
  test('a producer key limited to dummy_test_action may not create a command job (403 naming the allowed actions)', async () => {
    const created = await api.credentials.create('producer', 'limited producer', { actions: ['dummy_test_action'] });
    const limited = { key: created.key, secret: created.secret };
    assert.equal((await call('POST', '/api/job', limited, { action: 'dummy_test_action' })).status, 201);
    const refused = await call('POST', '/api/job', limited, { action: 'command', payload: '{"command": "/bin/true"}' });
    assert.equal(refused.status, 403, JSON.stringify(refused.body));
    assert.match(String(refused.body.message), /may create jobs of action dummy_test_action only, not "command"/);
    const bulk = await call('POST', '/api/job', limited, [{ action: 'dummy_test_action' }, { action: 'command' }], { bulk: 'yes' });
    assert.equal(bulk.status, 403, 'a bulk create is checked job by job, before anything is created');
  });
});

describe('finding 3: job ACLs are enforced for viewer and producer keys', () => {
  test('a viewer reads, searches and counts only jobs whose acl lets it see them (or that have none)', async () => {
    const viewer = await api.createKey('viewer');
    const tag = `acl-${randomUUID()}`;
    const make = async (acl?: Record<string, unknown>): Promise<string> => {
      const created = await call('POST', '/api/job', api.adminKey, {
        action: 'dummy_test_action',
        tags: [tag],
        ...(acl === undefined ? {} : { acl }),
      });
      assert.equal(created.status, 201, JSON.stringify(created.body));
      return String(created.body['resource-id']);
    };
    const alices = await make({ owners: ['user/alice'] });
    const shared = await make({ owners: ['user/alice'], 'view-data': [viewer.key] });
    const open = await make();
    assert.equal((await call('GET', `/api/${alices}`, viewer)).status, 404, "alice's job is invisible, as if absent");
    assert.equal((await call('GET', `/api/${shared}`, viewer)).status, 200);
    assert.equal((await call('GET', `/api/${open}`, viewer)).status, 200);
    const filter = encodeURIComponent(`tags='${tag}'`);
    const search = await call('GET', `/api/job?filter=${filter}`, viewer);
    assert.equal(search.body.count, 2, 'the count leaves the invisible job out');
    const ids = (search.body.resources as { id: string }[]).map((job) => job.id).sort();
    assert.deepEqual(ids, [open, shared].sort());
    const counted = await call('GET', `/api/job?filter=${filter}&last=0`, viewer);
    assert.equal(counted.body.count, 2);
    const admin = await call('GET', `/api/job?filter=${filter}`, api.adminKey);
    assert.equal(admin.body.count, 3, 'an admin key sees every job');
  });

  test('a producer sees the jobs it created even when their acl names others, and may not cancel jobs it cannot edit', async () => {
    const producer = await api.createKey('producer');
    const created = await call('POST', '/api/job', producer, { action: 'dummy_test_action', acl: { owners: ['user/alice'] } });
    const own = String(created.body['resource-id']);
    assert.equal((await call('GET', `/api/${own}`, producer)).status, 200);
    const hidden = await call('POST', '/api/job', api.adminKey, { action: 'dummy_test_action', acl: { owners: ['user/alice'] } });
    const id = String(hidden.body['resource-id']);
    assert.equal((await call('GET', `/api/${id}`, producer)).status, 404);
    assert.equal((await call('POST', `/api/${id}/cancel`, producer)).status, 404, 'invisible, so not cancelable either');
  });
});
