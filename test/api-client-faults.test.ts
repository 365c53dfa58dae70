import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, test } from 'node:test';
import axios from 'axios';
import {
  ApiError,
  JobApiClient,
  backoffDelayMs,
  isRetryable,
  mayHaveBeenApplied,
  type JobApiClientOptions,
} from '../src/api/client/index.js';
import { waitFor } from '../src/harness/wait-for.js';
import type { Logger } from '../src/util/logger.js';
import { FaultInjector } from './fixtures/api-server-faults.js';
import { startTestApi, type TestApi } from './fixtures/api-server.js';

/** A logger that keeps the client's retry messages, to count attempts from the client's side. */
function retryLog(): { logger: Logger; retries: () => number } {
  const lines: string[] = [];
  const keep = (message: string): void => {
    lines.push(message);
  };
  return {
    logger: { error: keep, warn: keep, info: keep, debug: keep },
    retries: () => lines.filter((line) => line.includes('retrying')).length,
  };
}

function unavailable(check: (error: ApiError) => void = () => undefined): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof ApiError, `expected an ApiError, got ${String(error)}`);
    assert.equal(error.code, 'unavailable', error.message);
    check(error);
    return true;
  };
}

const RETRIES = 3;
const faults = new FaultInjector();
let api: TestApi;
const clients: JobApiClient[] = [];

async function client(overrides: Partial<JobApiClientOptions> = {}): Promise<JobApiClient> {
  const created = await JobApiClient.create({
    baseUrl: api.baseUrl,
    credentials: api.adminKey,
    retry: { retries: RETRIES, baseDelayMs: 5, maxDelayMs: 40 },
    ...overrides,
  });
  clients.push(created);
  return created;
}

const count = (method: string, path: string): number => api.requestsTo(method, path).length;
const onJob = (id: string): string => `/api/job/${id.slice(4)}`;

before(async () => {
  api = await startTestApi({ hooks: [faults.hook] });
});
beforeEach(() => {
  faults.clear();
});
after(async () => {
  faults.clear();
  await Promise.allSettled(clients.map((each) => each.close()));
  await api.close();
});

describe('back-off', () => {
  test('full jitter under an exponential ceiling, capped; Retry-After is a floor', () => {
    const policy = { retries: 10, baseDelayMs: 100, maxDelayMs: 1000 };
    const top = (): number => 0.999_999;
    assert.deepEqual(
      [1, 2, 3, 4, 5, 9].map((retry) => backoffDelayMs(retry, policy, undefined, top)),
      [99, 199, 399, 799, 999, 999],
    );
    assert.equal(
      backoffDelayMs(3, policy, undefined, () => 0),
      0,
      'full jitter reaches zero',
    );
    for (let i = 0; i < 1000; i += 1) {
      const waited = backoffDelayMs(2, policy);
      assert.ok(waited >= 0 && waited < 200, String(waited));
    }
    assert.equal(
      backoffDelayMs(1, policy, '0.5', () => 0),
      0,
      'a non-integer Retry-After is ignored',
    );
    assert.equal(
      backoffDelayMs(1, policy, '1', () => 0),
      1000,
    );
    assert.equal(
      backoffDelayMs(1, policy, '60', () => 0),
      1000,
      'capped by maxDelayMs',
    );
  });
});

describe('retries of idempotent calls', () => {
  test('a read retried through two 503s succeeds, with the retries logged', async () => {
    const log = retryLog();
    const jobs = await client({ logger: log.logger });
    const { id } = await jobs.create({ action: 'retry_test' });
    const before = count('GET', onJob(id));
    faults.inject({ kind: { status: 503 }, times: 2 });
    assert.equal((await jobs.get(id)).job.id, id);
    assert.equal(count('GET', onJob(id)) - before, 3);
    assert.equal(log.retries(), 2);
  });

  test('a server that stays unavailable: retries+1 attempts, then a retryable ApiError', async () => {
    const jobs = await client();
    const { id } = await jobs.create({ action: 'retry_test' });
    const before = count('GET', onJob(id));
    faults.inject({ kind: { status: 503 } });
    await assert.rejects(
      jobs.get(id),
      unavailable((error) => {
        assert.equal(error.message, 'injected failure 503', "the server's message");
        assert.equal(error.details?.attempts, RETRIES + 1);
        assert.equal(error.details.httpStatus, 503);
        assert.equal(isRetryable(error), true);
        assert.equal(mayHaveBeenApplied(error), false);
      }),
    );
    assert.equal(count('GET', onJob(id)) - before, RETRIES + 1);
  });

  test('which calls are retried on 503: reads, unconditional edits, deletes, keyed creates; not the others', async () => {
    const jobs = await client();
    const { id } = await jobs.create({ action: 'retry_test' });
    const { revision } = await jobs.get(id);
    faults.inject({ kind: { status: 503 } });
    const attempts = async (method: string, path: string, call: () => Promise<unknown>): Promise<number> => {
      const before = count(method, path);
      await assert.rejects(call(), unavailable());
      return count(method, path) - before;
    };
    assert.equal(await attempts('PUT', '/api/job', () => jobs.search({})), RETRIES + 1, 'search');
    assert.equal(await attempts('PUT', '/api/job', () => jobs.countByState()), RETRIES + 1, 'countByState');
    assert.equal(await attempts('PUT', onJob(id), () => jobs.edit(id, { progress: 5 })), RETRIES + 1, 'unconditional edit');
    assert.equal(await attempts('DELETE', onJob(id), () => jobs.delete(id)), RETRIES + 1, 'delete');
    assert.equal(await attempts('DELETE', '/api/job', () => jobs.deleteMatching("action='none'")), RETRIES + 1, 'deleteMatching');
    assert.equal(
      await attempts('POST', '/api/job', () => jobs.create({ action: 'x' }, { idempotencyKey: 'retry-k' })),
      RETRIES + 1,
      'keyed create',
    );
    assert.equal(await attempts('POST', '/api/job', () => jobs.create({ action: 'x' })), 1, 'create without a key');
    assert.equal(
      await attempts('POST', '/api/job', () => jobs.createMany([{ action: 'x' }, { action: 'y', 'idempotency-key': 'k2' }])),
      1,
      'bulk with an unkeyed job',
    );
    assert.equal(await attempts('PUT', onJob(id), () => jobs.edit(id, { progress: 5 }, { ifRevision: revision })), 1, 'conditional edit');
    assert.equal(await attempts('POST', `${onJob(id)}/cancel`, () => jobs.cancel(id)), 1, 'cancel');
  });

  test('a 500 is retried for reads only', async () => {
    const jobs = await client();
    const { id } = await jobs.create({ action: 'retry_test' });
    faults.inject({ kind: { status: 500 } });
    let before = count('GET', onJob(id));
    await assert.rejects(jobs.get(id), (error: unknown) => error instanceof ApiError && error.code === 'internal' && !isRetryable(error));
    assert.equal(count('GET', onJob(id)) - before, RETRIES + 1);
    before = count('PUT', onJob(id));
    await assert.rejects(jobs.edit(id, { progress: 5 }), (error: unknown) => error instanceof ApiError && error.code === 'internal');
    assert.equal(count('PUT', onJob(id)) - before, 1);
  });

  test('a hung server: each attempt times out; the error says so and chains the cause', async () => {
    const jobs = await client({ timeoutMs: 150, retry: { retries: 1, baseDelayMs: 1, maxDelayMs: 1 } });
    const { id } = await jobs.create({ action: 'timeout_test' });
    faults.inject({ kind: 'hang' });
    const before = count('GET', onJob(id));
    await assert.rejects(
      jobs.get(id),
      unavailable((error) => {
        assert.match(error.message, /GET \/api\/job\/[0-9a-f-]+: the job API did not answer: no complete answer within 150 ms/);
        assert.ok(axios.isAxiosError(error.cause), 'the network error is the cause');
        assert.equal(error.details?.attempts, 2);
        assert.equal(isRetryable(error), true);
        assert.equal(mayHaveBeenApplied(error), true, 'a request that timed out may have been carried out');
      }),
    );
    assert.equal(count('GET', onJob(id)) - before, 2);
  });
});

describe('lost replies', () => {
  test('an unconditional edit whose reply was lost: the replay says 409, and the client sees the edit did happen', async () => {
    const jobs = await client();
    const { id } = await jobs.create({ action: 'lost_reply_test' });
    await jobs.edit(id, { state: 'RUNNING' });
    const before = count('PUT', onJob(id));
    faults.inject({ kind: 'drop-reply', times: 1, match: ({ method }) => method === 'PUT' });
    const done = await jobs.edit(id, { state: 'SUCCESS', 'return-code': 0 });
    assert.equal(done.state, 'SUCCESS');
    assert.equal(count('PUT', onJob(id)) - before, 2, 'the first attempt and its replay');
  });

  test('a conditional edit or a cancel whose reply was lost is not replayed: it fails with maybeApplied, and it did apply', async () => {
    const jobs = await client();
    const { id } = await jobs.create({ action: 'lost_reply_test' });
    const { revision } = await jobs.get(id);
    faults.inject({ kind: 'drop-reply', times: 1, match: ({ method }) => method === 'PUT' });
    let before = count('PUT', onJob(id));
    await assert.rejects(
      jobs.edit(id, { state: 'RUNNING' }, { ifRevision: revision }),
      unavailable((error) => {
        assert.equal(mayHaveBeenApplied(error), true);
      }),
    );
    assert.equal(count('PUT', onJob(id)) - before, 1);
    const after = await jobs.get(id);
    assert.equal(after.job.state, 'RUNNING', 'a replay would have answered 412 for our own edit');
    assert.equal(after.revision, (revision ?? 0) + 1);

    faults.inject({ kind: 'drop-reply', times: 1, match: ({ method }) => method === 'POST' });
    before = count('POST', `${onJob(id)}/cancel`);
    await assert.rejects(
      jobs.cancel(id),
      unavailable((error) => {
        assert.equal(mayHaveBeenApplied(error), true);
      }),
    );
    assert.equal(count('POST', `${onJob(id)}/cancel`) - before, 1);
    assert.equal((await jobs.get(id)).job.state, 'CANCELED', 'a replay would have answered 409 for our own cancel');
  });

  test('a delete whose reply was lost: the replay finds nothing, which is success', async () => {
    const jobs = await client();
    const { id } = await jobs.create({ action: 'lost_reply_test' });
    faults.inject({ kind: 'drop-reply', times: 1, match: ({ method }) => method === 'DELETE' });
    await jobs.delete(id);
    assert.equal(count('DELETE', onJob(id)), 2);
    await assert.rejects(jobs.get(id), (error: unknown) => error instanceof ApiError && error.code === 'not-found');
  });

  test('a keyed create whose reply was lost: the replay returns the same job, and there is one', async () => {
    const jobs = await client();
    const key = `lost-${process.pid}`;
    faults.inject({ kind: 'drop-reply', times: 1, match: ({ method, path }) => method === 'POST' && path === '/api/job' });
    const before = count('POST', '/api/job');
    const created = await jobs.create({ action: 'lost_reply_test', tags: [key] }, { idempotencyKey: key });
    assert.equal(count('POST', '/api/job') - before, 2);
    assert.equal(created.created, false, 'the replay found the job the first attempt created');
    assert.deepEqual(
      (await jobs.search({ filter: `tags='${key}'` })).jobs.map((job) => job.id),
      [created.id],
    );
  });
});

describe('server down', () => {
  test('stopped mid-way and restarted on the same port: an idempotent call succeeds after back-off, attempts bounded', async () => {
    const log = retryLog();
    const retries = 30;
    const jobs = await client({ logger: log.logger, retry: { retries, baseDelayMs: 20, maxDelayMs: 200 } });
    const { id } = await jobs.create({ action: 'restart_test' });
    await api.stop();
    try {
      const pending = jobs.get(id);
      await waitFor(() => log.retries() >= 2, { message: 'the client to retry twice against the stopped server' });
      const before = count('GET', onJob(id));
      await api.restart();
      const { job } = await pending;
      assert.equal(job.id, id);
      assert.equal(count('GET', onJob(id)) - before, 1, 'one attempt reached the restarted server');
      assert.ok(log.retries() >= 2 && log.retries() <= retries, `${log.retries()} retries`);
    } finally {
      await api.restart().catch(() => undefined);
    }
    const again = await jobs.count();
    assert.ok(again >= 1, 'the client goes on with the new server instance');
  });

  test('a server that stays down: retries+1 attempts, then unavailable, retryable, not applied, cause chained', async () => {
    const log = retryLog();
    const jobs = await client({ logger: log.logger });
    await jobs.login();
    await api.stop();
    try {
      await assert.rejects(
        jobs.count(),
        unavailable((error) => {
          assert.match(error.message, /PUT \/api\/job: the job API did not answer: .*ECONNREFUSED/);
          assert.equal(error.details?.networkCode, 'ECONNREFUSED');
          assert.equal(error.details.attempts, RETRIES + 1);
          assert.ok(error.cause instanceof Error);
          assert.equal(isRetryable(error), true);
          assert.equal(mayHaveBeenApplied(error), false, 'a refused connection never reached a server');
        }),
      );
      assert.equal(log.retries(), RETRIES);
    } finally {
      await api.restart();
    }
  });

  test('close() ends a call waiting to retry', async () => {
    const jobs = await client({ retry: { retries: 5, baseDelayMs: 60_000, maxDelayMs: 60_000 } });
    const { id } = await jobs.create({ action: 'close_test' });
    faults.inject({ kind: { status: 503 } });
    const pending = jobs.get(id);
    await waitFor(() => faults.hits >= 1, { message: 'the first attempt' });
    await jobs.close();
    await assert.rejects(
      pending,
      unavailable((error) => {
        assert.match(error.message, /closed while waiting to retry/);
        assert.equal(isRetryable(error), false);
      }),
    );
  });
});
