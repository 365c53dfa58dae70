import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiError, ClientOptionsError, JobApiClient, isRetryable, type JobApiClientOptions } from '../src/api/client/index.js';
import { bulkChunks } from '../src/api/client/bulk.js';
import { apiError, httpError, refusedByClient } from './fixtures/api-server-asserts.js';
import { startTestApi, type ApiKey, type TestApi } from './fixtures/api-server.js';

let api: TestApi;
const clients: JobApiClient[] = [];
let run = 0;

async function client(overrides: Partial<JobApiClientOptions> = {}, key: ApiKey = api.adminKey): Promise<JobApiClient> {
  const created = await JobApiClient.create({ baseUrl: api.baseUrl, credentials: key, ...overrides });
  clients.push(created);
  return created;
}

/** A tag unique to one test, so its filters see only its own jobs. */
function tag(): string {
  run += 1;
  return `t${run}-${process.pid}`;
}

before(async () => {
  api = await startTestApi();
});
after(async () => {
  await Promise.allSettled(clients.map((each) => each.close()));
  await api.close();
});

describe('options', () => {
  test('are checked with errors that say what is wrong', async () => {
    const base = { baseUrl: 'http://127.0.0.1:8200' };
    const refused: [unknown, RegExp][] = [
      [{ baseUrl: 'not a url' }, /"baseUrl" is not a valid URL/],
      [{ baseUrl: 'ftp://example.org' }, /must be http: or https:/],
      [{ baseUrl: 'http://127.0.0.1:8200/api' }, /without \/api: use "http:\/\/127\.0\.0\.1:8200"/],
      [{ baseUrl: 'http://127.0.0.1:8200/?x=1' }, /query or fragment/],
      [{ baseUrl: 'http://key:secret@127.0.0.1:8200' }, /must not carry credentials/],
      [{ ...base, credentials: { key: 'k' } }, /"credentials.secret" must be a non-empty string/],
      [{ ...base, timeoutMs: 0 }, /"timeoutMs" must be an integer from 1/],
      [{ ...base, retry: { baseDelayMs: 500, maxDelayMs: 100 } }, /"retry.maxDelayMs" \(100\) is below "retry.baseDelayMs" \(500\)/],
      [{ ...base, retry: { retries: -1 } }, /"retry.retries" must be an integer from 0 to 100/],
      [{ ...base, compatibility: 'soap' }, /"compatibility" must be one of auto, engine, nuvla/],
      [{ ...base, timeout: 5 }, /unknown JobApiClient option "timeout"/],
    ];
    for (const [options, message] of refused) {
      await assert.rejects(JobApiClient.create(options as JobApiClientOptions), (error: unknown) => {
        assert.ok(error instanceof ClientOptionsError, String(error));
        assert.match(error.message, message);
        return true;
      });
    }
    const ok = await JobApiClient.create({ baseUrl: 'http://127.0.0.1:8200/prefix/' });
    await ok.close();
  });
});

describe('calls', () => {
  test('login, create, get: the job as stored, with its revision; the server is detected as the engine', async () => {
    const jobs = await client();
    assert.equal(jobs.compatibility, undefined, 'nothing detected before the first answer');
    const logins = api.requestsTo('POST', '/api/session').length;
    await jobs.login();
    assert.equal(api.requestsTo('POST', '/api/session').length, logins + 1);

    const created = await jobs.create({
      action: 'start_deployment',
      'target-resource': { href: 'deployment/1' },
      priority: 50,
      payload: '{"a":1}',
    });
    assert.match(created.id, /^job\/[0-9a-f-]{36}$/);
    assert.equal(created.created, true);
    assert.equal(api.requestsTo('POST', '/api/session').length, logins + 1, 'the session is reused');

    const { job, revision } = await jobs.get(created.id);
    assert.equal(revision, 1);
    assert.equal(job.id, created.id);
    assert.equal(job.state, 'QUEUED');
    assert.equal(job.action, 'start_deployment');
    assert.deepEqual(job['target-resource'], { href: 'deployment/1' });
    assert.equal(job.priority, 50);
    assert.equal(job.payload, '{"a":1}');
    assert.equal(job.progress, 0);
    assert.equal(job.version, 2);
    assert.ok(!('operations' in job), 'presentation fields are dropped');
    assert.equal(jobs.compatibility, 'engine');
    assert.deepEqual(await jobs.get(created.id.slice(4)), { job, revision }, 'a bare uuid works too');
  });

  test('create with an idempotency key: the same key gives the same job', async () => {
    const jobs = await client();
    const key = `${tag()}-key`;
    const first = await jobs.create({ action: 'a' }, { idempotencyKey: key });
    const second = await jobs.create({ action: 'a' }, { idempotencyKey: key });
    assert.deepEqual(second, { id: first.id, created: false });
    assert.equal(first.created, true);
    assert.equal((await jobs.get(first.id)).job['idempotency-key'], key);
    await assert.rejects(jobs.create({ action: 'a', 'idempotency-key': 'one' }, { idempotencyKey: 'other' }), refusedByClient('differ'));
  });

  test('createMany: one bulk request per 1000 jobs, results in input order', async () => {
    const jobs = await client();
    const label = tag();
    const bulkBefore = api.requestsTo('POST', '/api/job').filter((request) => request.headers.bulk === 'yes').length;
    const wanted = Array.from({ length: 2100 }, (_, index) => ({ action: 'bulk_test', tags: [label, `n${index}`] }));
    const created = await jobs.createMany(wanted);
    assert.equal(created.length, 2100);
    assert.ok(created.every((each) => each.created));
    assert.equal(new Set(created.map((each) => each.id)).size, 2100);
    const bulk = api.requestsTo('POST', '/api/job').filter((request) => request.headers.bulk === 'yes');
    assert.equal(bulk.length - bulkBefore, 3, '1000 + 1000 + 100');
    for (const index of [0, 999, 1000, 2099]) {
      const id = created[index]?.id ?? '';
      assert.deepEqual((await jobs.get(id)).job.tags, [label, `n${index}`]);
    }
    assert.equal(await jobs.count(`tags='${label}'`), 2100);
    assert.deepEqual(await jobs.createMany([]), []);
  });

  test('createMany: bulk requests stay within about 1 MiB, and a batch a smaller server limit refuses (413) is halved', async () => {
    assert.deepEqual(
      bulkChunks([{ action: 'a' }, { action: 'b' }, { action: 'c' }], 2).map((chunk) => chunk.length),
      [2, 1],
    );
    const big = { action: 'a', payload: JSON.stringify('x'.repeat(400 * 1024)) };
    assert.deepEqual(
      bulkChunks([big, big, big, { action: 'b' }]).map((chunk) => chunk.length),
      [2, 2],
      '~1 MiB per request',
    );
    assert.deepEqual(
      bulkChunks([{ ...big, payload: JSON.stringify('x'.repeat(2 * 1024 * 1024)) }]).map((chunk) => chunk.length),
      [1],
    );

    const small = await startTestApi({ bodyLimitBytes: 64 * 1024 });
    try {
      const jobs = await JobApiClient.create({ baseUrl: small.baseUrl, credentials: small.adminKey });
      clients.push(jobs);
      const wanted = Array.from({ length: 300 }, (_, index) => ({
        action: 'big_bulk',
        payload: JSON.stringify({ index, pad: 'p'.repeat(1000) }),
      }));
      const created = await jobs.createMany(wanted);
      assert.equal(created.length, 300);
      const bulk = small.requestsTo('POST', '/api/job').filter((request) => request.headers.bulk === 'yes');
      assert.ok(bulk.length > 4, `${bulk.length} bulk requests: refused ones split in halves`);
      for (const index of [0, 150, 299]) {
        assert.equal((await jobs.get(created[index]?.id ?? '')).job.payload, wanted[index]?.payload, 'results in input order');
      }
      assert.equal(await jobs.count(), 300, 'no job created twice');
    } finally {
      await small.close();
    }
  });

  test('edit: a merge, conditional with ifRevision (If-Match); 412 when the revision moved; 409 once final', async () => {
    const jobs = await client();
    const { id } = await jobs.create({ action: 'edit_test' });
    const running = await jobs.edit(id, { state: 'RUNNING', progress: 10, executor: 'exec-1' });
    assert.equal(running.state, 'RUNNING');
    assert.equal(running.revision, 2);
    assert.equal(running.attempt, 1);
    assert.equal(running.executor, 'exec-1');
    assert.ok(running.started !== undefined);

    const progressed = await jobs.edit(id, { progress: 50 }, { ifRevision: 2 });
    assert.equal(progressed.revision, 3);
    assert.equal(api.requestsTo('PUT', `/api/job/${id.slice(4)}`).at(-1)?.headers['if-match'], '"2"');

    await assert.rejects(jobs.edit(id, { progress: 60 }, { ifRevision: 2 }), (error: unknown) => {
      httpError(412, 'precondition-failed', 'not at the expected revision 2')(error);
      assert.ok(error instanceof ApiError);
      assert.equal(error.details?.actualRevision, 3, 'the server details are kept');
      assert.equal(error.details.httpStatus, 412);
      assert.equal(isRetryable(error), false);
      return true;
    });

    const done = await jobs.edit(id, { state: 'SUCCESS', 'return-code': 0, 'status-message': 'ok', executor: null });
    assert.equal(done.progress, 100);
    assert.equal(done.executor, undefined);
    await assert.rejects(jobs.edit(id, { progress: 1 }), httpError(409, 'conflict', 'final state'));
    await assert.rejects(jobs.edit(id, { state: 'RUNNING' }, { ifRevision: done.revision }), httpError(409, 'conflict'));
    await assert.rejects(jobs.edit(id, { progress: 101 }), httpError(400, 'bad-request', '"progress"'));
  });

  test('get of a missing job is not-found; a malformed id is refused without a request', async () => {
    const jobs = await client();
    await assert.rejects(jobs.get('job/5f6a1c1e-0000-4000-8000-000000000000'), httpError(404, 'not-found', 'not found'));
    const before = api.requests.length;
    await assert.rejects(jobs.get('job/../../session'), refusedByClient('is not a job id'));
    assert.equal(api.requests.length, before);
  });

  test('search: filter, orderby, first/last, select; count', async () => {
    const jobs = await client();
    const label = tag();
    for (const priority of [30, 10, 20]) await jobs.create({ action: 'search_test', priority, tags: [label] });
    const all = await jobs.search({ filter: `tags='${label}'`, orderby: 'priority:asc' });
    assert.equal(all.count, 3);
    assert.deepEqual(
      all.jobs.map((job) => job.priority),
      [10, 20, 30],
    );
    const page = await jobs.search({ filter: `tags='${label}'`, orderby: 'priority:desc', first: 2, last: 2 });
    assert.equal(page.count, 3);
    assert.deepEqual(
      page.jobs.map((job) => job.priority),
      [20],
    );

    const selected = await jobs.search({ filter: `tags='${label}'`, orderby: 'priority:asc', select: ['priority', 'state'] });
    assert.deepEqual(
      selected.jobs.map((job) => Object.keys(job).sort()),
      Array.from({ length: 3 }, () => ['id', 'priority', 'state']),
    );
    assert.equal(selected.jobs[0]?.priority, 10);

    assert.equal(await jobs.count(`tags='${label}' and priority>15`), 2);
    assert.deepEqual(await jobs.search({ filter: `tags='${label}'`, last: 0 }), { count: 3, jobs: [] });
    await assert.rejects(jobs.search({ filter: "state='QUEUED' and (" }), httpError(400, 'bad-request'));
    await assert.rejects(jobs.search({ select: ['state', 'nope' as 'state'] }), refusedByClient('unknown: nope'));
  });

  test('countByState: every state, zero when none', async () => {
    const jobs = await client();
    const label = tag();
    const ids = await jobs.createMany(Array.from({ length: 5 }, () => ({ action: 'count_test', tags: [label] })));
    const [a, b, c] = ids.map((each) => each.id);
    assert.ok(a !== undefined && b !== undefined && c !== undefined);
    await jobs.edit(a, { state: 'RUNNING' });
    await jobs.edit(b, { state: 'RUNNING' });
    await jobs.edit(b, { state: 'FAILED', 'return-code': 1 });
    await jobs.cancel(c);
    assert.deepEqual(await jobs.countByState(`tags='${label}'`), { QUEUED: 2, RUNNING: 1, SUCCESS: 0, FAILED: 1, CANCELED: 1 });
    const everything = await jobs.countByState();
    assert.equal(
      Object.values(everything).reduce((sum, n) => sum + n, 0),
      await jobs.count(),
    );
  });

  test('cancel: QUEUED to CANCELED; again is a conflict', async () => {
    const jobs = await client();
    const { id } = await jobs.create({ action: 'cancel_test' });
    await jobs.cancel(id);
    const { job } = await jobs.get(id);
    assert.equal(job.state, 'CANCELED');
    assert.match(job['status-message'] ?? '', /canceled by credential\//);
    await assert.rejects(jobs.cancel(id), httpError(409, 'conflict', 'already CANCELED'));
  });

  test('claim: QUEUED to RUNNING for the executor; a job in another state comes back unclaimed, as it is', async () => {
    const jobs = await client();
    const { id } = await jobs.create({ action: 'claim_test' });
    const first = await jobs.claim(id, 'node-1@0000000000000001', 'claimed by node-1');
    assert.equal(first.claimed, true);
    assert.equal(first.job.state, 'RUNNING');
    assert.equal(first.job.executor, 'node-1@0000000000000001');
    assert.equal(first.job.attempt, 1);
    const second = await jobs.claim(id, 'node-2@0000000000000002');
    assert.equal(second.claimed, false);
    assert.equal(second.job.executor, 'node-1@0000000000000001');
    assert.equal(second.job.revision, first.job.revision);
    await assert.rejects(jobs.claim('job/00000000-0000-7000-8000-0000000000aa', 'node-1@0000000000000001'), httpError(404, 'not-found'));
  });

  test('delete and deleteMatching', async () => {
    const jobs = await client();
    const label = tag();
    const [one, ...rest] = await jobs.createMany(Array.from({ length: 4 }, () => ({ action: 'delete_test', tags: [label] })));
    assert.ok(one !== undefined);
    await jobs.delete(one.id);
    await assert.rejects(jobs.get(one.id), httpError(404, 'not-found'));
    await assert.rejects(jobs.delete(one.id), httpError(404, 'not-found'));
    assert.equal(await jobs.deleteMatching(`tags='${label}'`), rest.length);
    assert.equal(await jobs.count(`tags='${label}'`), 0);
    assert.equal(await jobs.deleteMatching(`tags='${label}'`), 0);
    await assert.rejects(jobs.deleteMatching(' '), refusedByClient('non-empty filter'));
  });

  test('connections are kept alive and shared', async () => {
    const jobs = await client();
    const { id } = await jobs.create({ action: 'keepalive_test' });
    const start = api.requests.length;
    for (let i = 0; i < 20; i += 1) await jobs.get(id);
    const ports = new Set(api.requests.slice(start).map((request) => request.remotePort));
    assert.equal(ports.size, 1, 'twenty sequential calls on one connection');
    await Promise.all(Array.from({ length: 50 }, () => jobs.get(id)));
    const concurrent = new Set(api.requests.slice(start + 20).map((request) => request.remotePort));
    assert.ok(concurrent.size > 1 && concurrent.size <= 50, `${concurrent.size} connections for 50 concurrent calls`);
  });

  test('close ends the client: later calls fail at once, not retryable', async () => {
    const jobs = await client();
    await jobs.login();
    await jobs.close();
    const before = api.requests.length;
    await assert.rejects(jobs.count(), (error: unknown) => {
      apiError('unavailable', 'closed')(error);
      assert.equal(isRetryable(error), false);
      return true;
    });
    assert.equal(api.requests.length, before);
  });
});
