/**
 * Issue 14, finding 6: guessing credentials is limited per client and per key (429 with
 * Retry-After), on login and on every request's Authorization alike, while legitimate traffic is not:
 * a burst of 2,000 authenticated requests from one key sees no 429 (the time it takes is printed).
 * Attacked over HTTP against the real server.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { JobApiServer } from '../src/api/server/job-api-server.js';
import { compileJobApiServerOptions } from '../src/api/server/options.js';
import { silentLogger } from '../src/util/logger.js';

interface Key {
  readonly key: string;
  readonly secret: string;
}

const dirs: string[] = [];
const servers: JobApiServer[] = [];

async function serve(args: Record<string, unknown> = {}): Promise<JobApiServer> {
  const dir = await mkdtemp(join(tmpdir(), 'rate-limits-'));
  dirs.push(dir);
  const options = await compileJobApiServerOptions({ database: join(dir, 'jobs.sqlite'), host: '127.0.0.1', port: 0, ...args });
  const server = await JobApiServer.start(options, silentLogger);
  servers.push(server);
  return server;
}

after(async () => {
  for (const server of servers) await server.stop();
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

async function login(server: JobApiServer, key: string, secret: string, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.address}/api/session`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ template: { href: 'session-template/api-key', key, secret } }),
  });
}

async function bearer(server: JobApiServer, key: Key, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(`${server.address}/api/job?last=0`, { headers: { authorization: `Bearer ${key.key}:${key.secret}`, ...headers } });
}

/** Statuses of `count` sequential calls, with the Retry-After of the first 429. */
async function statuses(count: number, call: () => Promise<Response>): Promise<{ codes: number[]; retryAfter: string | null }> {
  const codes: number[] = [];
  let retryAfter: string | null = null;
  for (let i = 0; i < count; i++) {
    const response = await call();
    await response.arrayBuffer();
    codes.push(response.status);
    if (response.status === 429) retryAfter ??= response.headers.get('retry-after');
  }
  return { codes, retryAfter };
}

function assertLimited(result: { codes: number[]; retryAfter: string | null }, what: string): void {
  const first429 = result.codes.indexOf(429);
  assert.ok(first429 > 0, `${what}: no 429 in ${result.codes.join(',')}`);
  assert.ok(
    result.codes.slice(0, first429).every((code) => code === 401),
    `${what}: before the limit, 401s: ${result.codes.join(',')}`,
  );
  assert.ok(
    result.codes.slice(first429).every((code) => code === 429),
    `${what}: after the limit, only 429s: ${result.codes.join(',')}`,
  );
  assert.ok(result.retryAfter !== null && Number(result.retryAfter) > 0, `${what}: Retry-After is ${String(result.retryAfter)}`);
}

describe('credential rate limits', () => {
  let server: JobApiServer;
  let admin: Key;
  before(async () => {
    server = await serve();
    admin = await server.stores.credentials.create('admin', 'rate limits');
  });

  test('50 wrong logins from one client: 401s, then 429 with Retry-After; even the right secret waits', async () => {
    const wrong = await statuses(50, () => login(server, admin.key, 'wrong-secret'));
    assertLimited(wrong, 'wrong logins');
    const right = await login(server, admin.key, admin.secret);
    assert.equal(right.status, 429, 'a limited client is not told whether a guess was right');
  });

  test('50 wrong bearer credentials from one client: 401s, then 429 with Retry-After', async () => {
    const other = await serve();
    const viewer = await other.stores.credentials.create('viewer', 'bearer guess');
    assertLimited(await statuses(50, () => bearer(other, { key: viewer.key, secret: 'guess' })), 'wrong bearer secrets');
  });

  test('per key: wrong secrets for one key from many clients are limited, other keys are not', async () => {
    // Clients told apart by X-Forwarded-For, as behind a proxy (--trust-proxy), with a high per-client limit.
    const proxied = await serve({ 'trust-proxy': true, 'auth-failures-per-client': 1000, 'auth-failures-per-key': 10 });
    const target = await proxied.stores.credentials.create('executor', 'targeted');
    const bystander = await proxied.stores.credentials.create('viewer', 'bystander');
    let client = 0;
    const guess = (): Promise<Response> =>
      bearer(proxied, { key: target.key, secret: 'guess' }, { 'x-forwarded-for': `10.0.0.${++client}` });
    assertLimited(await statuses(30, guess), 'wrong secrets for one key');
    const other = await bearer(proxied, bystander, { 'x-forwarded-for': '10.0.1.1' });
    assert.equal(other.status, 200, 'another key is not limited');
  });

  test('legitimate traffic: a burst of 2,000 authenticated requests from one key sees no 429', async () => {
    const fresh = await serve();
    const busy = await fresh.stores.credentials.create('executor', 'busy');
    const started = performance.now();
    const codes = new Map<number, number>();
    const concurrency = 20;
    let next = 0;
    await Promise.all(
      Array.from({ length: concurrency }, async () => {
        while (next < 2000) {
          next += 1;
          const response = await bearer(fresh, busy);
          await response.arrayBuffer();
          codes.set(response.status, (codes.get(response.status) ?? 0) + 1);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    process.stderr.write(
      `# 2,000 authenticated requests, ${concurrency} at a time: ${seconds.toFixed(1)} s (${(2000 / seconds).toFixed(0)}/s), ` +
        `statuses ${JSON.stringify(Object.fromEntries(codes))}\n`,
    );
    assert.deepEqual(Object.fromEntries(codes), { 200: 2000 });
  });
});
