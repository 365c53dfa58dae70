/**
 * Several job API replicas behind one client: the choice of replica (round-robin over those that
 * answer, a silent one set aside 1 s doubling to 30 s) and the options that name them. The failover
 * itself, against real replicas on one PostgreSQL, is in api-replicas-postgres.test.ts.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { JobApiClient } from '../src/api/client/index.js';
import { ClientOptionsError, resolveOptions } from '../src/api/client/options.js';
import { FIRST_BENCH_MS, MAX_BENCH_MS, ReplicaSet, type Replica } from '../src/api/client/replicas.js';
import { readApiOptions } from '../src/cli/option-readers.js';
import { startTestApi } from './fixtures/api-server.js';
import { freePort } from '../src/harness/free-port.js';

function clock(start = 1_000_000): { now: () => number; advance: (ms: number) => void } {
  let time = start;
  return {
    now: () => time,
    advance: (ms) => {
      time += ms;
    },
  };
}

function urls(picked: readonly (Replica | undefined)[]): string[] {
  return picked.map((replica) => replica?.baseUrl ?? 'none');
}

describe('ReplicaSet', () => {
  test('spreads picks round-robin over the replicas', () => {
    const set = new ReplicaSet(['http://a', 'http://b', 'http://c']);
    assert.deepEqual(urls([set.pick(), set.pick(), set.pick(), set.pick()]), ['http://a', 'http://b', 'http://c', 'http://a']);
  });

  test('sets a silent replica aside for 1 s, doubling with each failure in a row up to 30 s, and takes it back once it answers', () => {
    const time = clock();
    const set = new ReplicaSet(['http://a', 'http://b'], time.now);
    const [a] = set.replicas;
    assert.ok(a !== undefined);
    const benches: number[] = [];
    for (let failure = 0; failure < 7; failure += 1) benches.push(set.failed(a));
    assert.deepEqual(benches, [FIRST_BENCH_MS, 2_000, 4_000, 8_000, 16_000, MAX_BENCH_MS, MAX_BENCH_MS]);
    assert.deepEqual(urls([set.pick(), set.pick(), set.pick()]), ['http://b', 'http://b', 'http://b'], 'a is set aside');
    time.advance(MAX_BENCH_MS);
    assert.deepEqual(urls([set.pick(), set.pick()]), ['http://a', 'http://b'], 'a is back after its time');
    a.answered();
    assert.equal(set.failed(a), FIRST_BENCH_MS, 'an answer starts the doubling again');
  });

  test('when every replica is set aside, picks the one that comes back first; skips those a call already tried', () => {
    const time = clock();
    const set = new ReplicaSet(['http://a', 'http://b', 'http://c'], time.now);
    const [a, b, c] = set.replicas;
    assert.ok(a !== undefined && b !== undefined && c !== undefined);
    set.failed(a);
    set.failed(a); // 2 s
    set.failed(b); // 1 s
    assert.equal(set.hasAnswering(new Set()), true);
    assert.equal(set.hasAnswering(new Set([c])), false);
    assert.deepEqual(urls([set.pick(new Set([c]))]), ['http://b'], 'b comes back before a');
    assert.deepEqual(urls([set.pick(new Set([a, b, c]))]), ['none']);
    set.failed(c);
    assert.deepEqual(urls([set.pick()]), ['http://b']);
  });
});

describe('options naming several replicas', () => {
  test('the client takes a list of roots, checks each and drops repeats', () => {
    const resolved = resolveOptions({ baseUrl: ['http://127.0.0.1:1/', 'http://127.0.0.1:2', 'http://127.0.0.1:1'] });
    assert.deepEqual(resolved.baseUrls, ['http://127.0.0.1:1', 'http://127.0.0.1:2']);
    assert.equal(resolved.baseUrl, 'http://127.0.0.1:1');
    assert.throws(() => resolveOptions({ baseUrl: [] }), { name: 'ClientOptionsError', message: /at least one URL/ });
    assert.throws(
      () => resolveOptions({ baseUrl: ['http://127.0.0.1:1', 'ftp://x'] }),
      (error: unknown) => error instanceof ClientOptionsError && error.message.startsWith('"baseUrl[1]" must be http: or https:'),
    );
  });

  test('--api-url may be repeated and may hold a comma-separated list', async () => {
    const options = await readApiOptions({ 'api-url': ['http://a:1,http://b:2', 'http://c:3', 'http://a:1'] }, 10);
    assert.deepEqual(options.baseUrls, ['http://a:1', 'http://b:2', 'http://c:3']);
    assert.equal(options.baseUrl, 'http://a:1');
    await assert.rejects(readApiOptions({ 'api-url': 'http://a:1,,http://b:2' }, 10), /--api-url has an empty URL in a list/);
    assert.deepEqual((await readApiOptions({}, 10)).baseUrls, ['http://127.0.0.1:8200']);
  });
});

describe('a client with a replica that does not answer', () => {
  test('sends every call, creates included, to the one that does, without waiting out back-offs', async () => {
    const api = await startTestApi();
    const silentUrl = `http://127.0.0.1:${String(await freePort())}`;
    const client = await JobApiClient.create({
      baseUrl: [silentUrl, api.baseUrl],
      credentials: api.adminKey,
      compatibility: 'engine',
      // Back-offs of a minute: a call that waited for one would never finish within the test's bound.
      retry: { retries: 3, baseDelayMs: 60_000, maxDelayMs: 60_000 },
    });
    try {
      const started = Date.now();
      const created = [];
      // A create without an idempotency key is not replayed blindly: it may go elsewhere only because
      // the refused connection says the silent replica never got it.
      for (let index = 0; index < 20; index += 1) created.push(await client.create({ action: 'noop' }));
      for (const job of created) assert.equal((await client.get(job.id)).job.state, 'QUEUED');
      const tookMs = Date.now() - started;
      assert.ok(tookMs < 10_000, `40 calls took ${String(tookMs)} ms`);
      const creates = api.requests.filter((request) => request.method === 'POST' && request.path === '/api/job');
      assert.equal(creates.length, 20, 'each create reached the answering replica once');
    } finally {
      await client.close();
      await api.close();
    }
  });
});
