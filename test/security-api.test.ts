/**
 * Issue 14 attacked over HTTP against the real job API (SQLite): idempotency-key squatting
 * (finding 8).
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
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
