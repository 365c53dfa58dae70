/**
 * The job API's HTTP surface over loopback, with raw requests (the client has its own tests): the
 * Nuvla-compatible calls, the engine's additions, access control, and bad input, where each failure
 * must be a clear 4xx that changes nothing already stored.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestApi, type ApiKey, type TestApi } from './fixtures/api-server.js';

let api: TestApi;
let executor: ApiKey;
let viewer: ApiKey;

before(async () => {
  api = await startTestApi({ bodyLimitBytes: 256 * 1024, maxBulkCreate: 100 });
  // Edits and cancels any job here: an operator (an executor key edits only owned jobs, test/security-api.test.ts).
  executor = await api.createKey('operator');
  viewer = await api.createKey('viewer');
});

after(async () => {
  await api.close();
});

interface Reply {
  status: number;
  body: Record<string, unknown>;
  headers: Headers;
}

async function call(
  method: string,
  path: string,
  options: { body?: unknown; raw?: string; key?: ApiKey | null; headers?: Record<string, string>; form?: Record<string, string> } = {},
): Promise<Reply> {
  const key = options.key === undefined ? api.adminKey : options.key;
  const headers: Record<string, string> = {
    ...(key === null ? {} : { authorization: `Bearer ${key.key}:${key.secret}` }),
    ...options.headers,
  };
  let body: string | undefined;
  if (options.form !== undefined) {
    headers['content-type'] = 'application/x-www-form-urlencoded';
    body = new URLSearchParams(options.form).toString();
  } else if (options.raw !== undefined || options.body !== undefined) {
    headers['content-type'] = 'application/json';
    body = options.raw ?? JSON.stringify(options.body);
  }
  const response = await fetch(`${api.baseUrl}${path}`, { method, headers, ...(body === undefined ? {} : { body }) });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>), headers: response.headers };
}

async function createJob(fields: Record<string, unknown> = {}): Promise<string> {
  const reply = await call('POST', '/api/job', { body: { action: 'dummy_test_action', ...fields } });
  assert.equal(reply.status, 201, JSON.stringify(reply.body));
  return String(reply.body['resource-id']);
}

const path = (id: string): string => `/api/${id}`;

describe('access', () => {
  test('no credentials: 401; a viewer writing: 403; a viewer reading: fine', async () => {
    const anonymous = await call('GET', '/api/job', { key: null });
    assert.equal(anonymous.status, 401);
    assert.match(String(anonymous.body.message), /no credentials/);
    const denied = await call('POST', '/api/job', { key: viewer, body: { action: 'x' } });
    assert.equal(denied.status, 403);
    assert.match(String(denied.body.message), /role viewer may not create jobs/);
    assert.equal((await call('GET', '/api/job', { key: viewer })).status, 200);
    const viewerDeleting = await call('DELETE', path(await createJob()), { key: viewer });
    assert.equal(viewerDeleting.status, 403);
  });

  test("Nuvla's cookie login", async () => {
    const login = await call('POST', '/api/session', {
      key: null,
      body: { template: { href: 'session-template/api-key', key: executor.key, secret: executor.secret } },
    });
    assert.equal(login.status, 201);
    const cookie = (login.headers.get('set-cookie') ?? '').split(';')[0] ?? '';
    assert.match(cookie, /^com\.sixsq\.nuvla\.cookie=/);
    assert.equal((await call('GET', '/api/job', { key: null, headers: { cookie } })).status, 200);
    const wrong = await call('POST', '/api/session', {
      key: null,
      body: { template: { href: 'session-template/api-key', key: executor.key, secret: 'wrong' } },
    });
    assert.equal(wrong.status, 401);
  });
});

describe('jobs', () => {
  test('create, read with ETag and operations, Location', async () => {
    const reply = await call('POST', '/api/job', {
      body: { action: 'dummy_test_action', 'target-resource': { href: 'nuvlabox/1' }, priority: 10 },
    });
    assert.equal(reply.status, 201);
    const id = String(reply.body['resource-id']);
    assert.match(id, /^job\/[0-9a-f-]{36}$/);
    assert.equal(reply.headers.get('location'), `/api/${id}`);
    const read = await call('GET', path(id));
    assert.equal(read.status, 200);
    assert.equal(read.headers.get('etag'), '"1"');
    assert.equal(read.body.state, 'QUEUED');
    assert.deepEqual(read.body['target-resource'], { href: 'nuvlabox/1' });
    assert.ok(Array.isArray(read.body.operations) && read.body.operations.some((op: unknown) => JSON.stringify(op).includes('cancel')));
  });

  test('an idempotency key creates one job however often it is sent', async () => {
    const key = `tick-${String(Date.now())}`;
    const first = await call('POST', '/api/job', { body: { action: 'cleanup_jobs', 'idempotency-key': key } });
    const second = await call('POST', '/api/job', { body: { action: 'cleanup_jobs', 'idempotency-key': key } });
    assert.equal(first.status, 201);
    assert.equal(second.status, 200);
    assert.equal(second.body.created, false);
    assert.equal(second.body['resource-id'], first.body['resource-id']);
    const found = await call('GET', `/api/job?filter=${encodeURIComponent(`idempotency-key='${key}'`)}`);
    assert.equal(found.body.count, 1);
  });

  test('bulk create; one bad job refuses the whole request and names it', async () => {
    const jobs = Array.from({ length: 50 }, (_, i) => ({ action: 'bulk_action', priority: i }));
    const created = await call('POST', '/api/job', { body: jobs, headers: { bulk: 'yes' } });
    assert.equal(created.status, 201);
    assert.equal((created.body.resources as unknown[]).length, 50);
    const before = (await call('GET', `/api/job?filter=${encodeURIComponent("action='bulk_bad'")}&last=0`)).body.count;
    const bad = await call('POST', '/api/job', {
      body: [{ action: 'bulk_bad' }, { action: 'bulk_bad', priority: 'high' }],
      headers: { bulk: 'yes' },
    });
    assert.equal(bad.status, 400);
    assert.match(String(bad.body.message), /^job 1: "priority" must be an integer/);
    assert.equal((await call('GET', `/api/job?filter=${encodeURIComponent("action='bulk_bad'")}&last=0`)).body.count, before);
    const tooMany = await call('POST', '/api/job', {
      body: Array.from({ length: 101 }, () => ({ action: 'x' })),
      headers: { bulk: 'yes' },
    });
    assert.equal(tooMany.status, 400);
    assert.match(String(tooMany.body.message), /at most 100 jobs/);
  });

  test('conditional edits: If-Match the revision, 412 when it moved', async () => {
    const id = await createJob();
    const claimed = await call('PUT', path(id), {
      key: executor,
      body: { state: 'RUNNING', executor: 'exec-1' },
      headers: { 'if-match': '"1"' },
    });
    assert.equal(claimed.status, 200);
    assert.equal(claimed.headers.get('etag'), '"2"');
    const late = await call('PUT', path(id), { key: executor, body: { state: 'SUCCESS' }, headers: { 'if-match': '"1"' } });
    assert.equal(late.status, 412);
    assert.match(String(late.body.message), /revision/);
    assert.equal((await call('GET', path(id))).body.state, 'RUNNING', 'the refused write changed nothing');
    const done = await call('PUT', path(id), { key: executor, body: { state: 'SUCCESS', 'return-code': 0 } });
    assert.equal(done.status, 200);
    assert.equal(done.body.progress, 100);
    const afterFinal = await call('PUT', path(id), { body: { progress: 5 } });
    assert.equal(afterFinal.status, 409);
  });

  test('cancel, twice', async () => {
    const id = await createJob();
    const canceled = await call('POST', `${path(id)}/cancel`, { key: executor });
    assert.equal(canceled.status, 200);
    assert.equal((await call('GET', path(id))).body.state, 'CANCELED');
    assert.equal((await call('POST', `${path(id)}/cancel`, { key: executor })).status, 409);
  });

  test('claim: a QUEUED job becomes RUNNING for the executor as its next attempt; anything else is a 409 carrying the job', async () => {
    const id = await createJob();
    const claimed = await call('POST', `${path(id)}/claim`, {
      key: executor,
      body: { executor: 'node-1@0123456789abcdef', 'status-message': 'claimed by node-1' },
    });
    assert.equal(claimed.status, 200, JSON.stringify(claimed.body));
    assert.equal(claimed.body.state, 'RUNNING');
    assert.equal(claimed.body.executor, 'node-1@0123456789abcdef');
    assert.equal(claimed.body.attempt, 1);
    assert.equal(claimed.body['status-message'], 'claimed by node-1');
    assert.equal(typeof claimed.body.started, 'string');
    assert.equal(claimed.headers.get('etag'), `"${String(claimed.body.revision)}"`);

    const again = await call('POST', `${path(id)}/claim`, { key: executor, body: { executor: 'node-2@0123456789abcdef' } });
    assert.equal(again.status, 409);
    assert.equal(again.body.code, 'conflict');
    assert.match(String(again.body.message), /cannot be claimed: it is RUNNING/);
    const current = again.body.job as Record<string, unknown>;
    assert.equal(current.executor, 'node-1@0123456789abcdef');
    assert.equal(current.revision, claimed.body.revision);

    assert.equal(
      (await call('POST', `${path('job/00000000-0000-7000-8000-00000000beef')}/claim`, { key: executor, body: { executor: 'x' } })).status,
      404,
    );
    const queued = await createJob();
    assert.equal((await call('POST', `${path(queued)}/claim`, { key: viewer, body: { executor: 'x' } })).status, 403);
    const bad = await call('POST', `${path(queued)}/claim`, { key: executor, body: { executor: '', state: 'SUCCESS' } });
    assert.equal(bad.status, 400);
    assert.match(String(bad.body.message), /unknown field|"executor" must name/);
    assert.equal((await call('GET', path(queued))).body.state, 'QUEUED');

    // With "actions", a job of another action is not claimed and gains no attempt.
    const other = await call('POST', `${path(queued)}/claim`, {
      key: executor,
      body: { executor: 'b@0123456789abcdef', actions: ['beta'] },
    });
    assert.equal(other.status, 409);
    assert.match(String(other.body.message), /cannot be claimed: its action "[^"]+" is not one the claimant runs/);
    assert.equal((other.body.job as Record<string, unknown>).attempt, undefined);
    const badActions = await call('POST', `${path(queued)}/claim`, {
      key: executor,
      body: { executor: 'b@0123456789abcdef', actions: 'beta' },
    });
    assert.equal(badActions.status, 400);
    assert.match(String(badActions.body.message), /"actions" must be a list of action names/);
  });

  test('job operations: claims and conditional edits in one request, each answered as its single call would be', async () => {
    const [a, b, c] = [await createJob(), await createJob(), await createJob()];
    const before = await call('GET', path(b));
    const reply = await call('POST', '/api/job/operations', {
      key: executor,
      body: {
        operations: [
          { op: 'claim', id: a, executor: 'node-1@0123456789abcdef' },
          { op: 'claim', id: a, executor: 'node-2@0123456789abcdef' },
          { op: 'edit', id: b, 'if-match': before.body.revision, changes: { progress: 40 } },
          { op: 'edit', id: b, 'if-match': before.body.revision, changes: { progress: 50 } },
          { op: 'edit', id: 'job/00000000-0000-7000-8000-00000000abcd', changes: { progress: 1 } },
          { op: 'edit', id: c, changes: { state: 'SUCCESS' } },
        ],
      },
    });
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const results = reply.body.results as Record<string, unknown>[];
    assert.deepEqual(
      results.map((result) => result.status),
      [200, 409, 200, 412, 404, 409],
    );
    assert.equal((results[0]?.job as Record<string, unknown>).executor, 'node-1@0123456789abcdef');
    assert.equal((results[1]?.job as Record<string, unknown>).executor, 'node-1@0123456789abcdef', 'a refused claim carries the job');
    assert.equal((results[2]?.job as Record<string, unknown>).progress, 40);
    assert.equal(results[3]?.code, 'precondition-failed');
    assert.match(String(results[5]?.message), /cannot go from QUEUED to SUCCESS/);
    assert.equal((await call('GET', path(b))).body.progress, 40);
  });

  test('job operations refuse a malformed request whole, naming the operation', async () => {
    const id = await createJob();
    const cases: [unknown, RegExp][] = [
      [{}, /a body like \{"operations": \[\.\.\.\]\}/],
      [{ operations: [{ op: 'delete', id }] }, /operation 0: "op" must be "claim" or "edit"/],
      [{ operations: [{ op: 'claim', id: 'job/nope', executor: 'x' }] }, /operation 0: "id" must be a job id/],
      [
        {
          operations: [
            { op: 'edit', id, changes: { progress: 5 } },
            { op: 'edit', id, changes: { progress: 'lots' } },
          ],
        },
        /operation 1: "progress" must be an integer/,
      ],
      [{ operations: [{ op: 'edit', id, 'if-match': 'x', changes: {} }] }, /"if-match" must be a job revision/],
      [{ operations: Array.from({ length: 101 }, () => ({ op: 'edit', id, changes: {} })) }, /at most 100 operations per request, got 101/],
    ];
    for (const [body, message] of cases) {
      const reply = await call('POST', '/api/job/operations', { key: executor, body });
      assert.equal(reply.status, 400, JSON.stringify(body).slice(0, 80));
      assert.match(String(reply.body.message), message);
    }
    assert.equal((await call('GET', path(id))).body.progress, 0, 'nothing applied');
    assert.equal((await call('POST', '/api/job/operations', { key: viewer, body: { operations: [] } })).status, 403);
  });

  test('search by GET and by PUT form, counts per state, select, count only', async () => {
    const marker = `search-${String(Date.now())}`;
    for (let i = 0; i < 3; i++) await createJob({ tags: [marker], priority: i });
    await call('POST', `${path(await createJob({ tags: [marker] }))}/cancel`);
    const filter = `tags='${marker}'`;
    const viaGet = await call('GET', `/api/job?filter=${encodeURIComponent(filter)}&orderby=priority:desc&select=priority,state`);
    assert.equal(viaGet.body.count, 4);
    assert.deepEqual(Object.keys((viaGet.body.resources as Record<string, unknown>[])[0] ?? {}).sort(), ['id', 'priority', 'state']);
    const viaPut = await call('PUT', '/api/job', { form: { filter, first: '1', last: '2', aggregation: 'terms:state' } });
    assert.equal(viaPut.body.count, 4);
    assert.equal((viaPut.body.resources as unknown[]).length, 2);
    const buckets =
      (viaPut.body.aggregations as Record<string, { buckets: { key: string; doc_count: number }[] }>)['terms:state']?.buckets ?? [];
    assert.equal(buckets.find((bucket) => bucket.key === 'QUEUED')?.doc_count, 3);
    assert.equal(buckets.find((bucket) => bucket.key === 'CANCELED')?.doc_count, 1);
    const countOnly = await call('GET', `/api/job?filter=${encodeURIComponent(filter)}&last=0`);
    assert.deepEqual(countOnly.body.resources, []);
    assert.equal(countOnly.body.count, 4);
  });

  test("Nuvla's clients' forms: repeated select and orderby, numbers in a JSON body", async () => {
    const response = await fetch(`${api.baseUrl}/api/job`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${api.adminKey.key}:${api.adminKey.secret}`, 'content-type': 'application/x-www-form-urlencoded' },
      body: 'select=state&select=priority&orderby=priority:desc&orderby=created&last=1',
    });
    assert.equal(response.status, 200);
    const body = (await response.json()) as { resources: Record<string, unknown>[] };
    assert.deepEqual(Object.keys(body.resources[0] ?? {}).sort(), ['id', 'priority', 'state']);
    const json = await call('PUT', '/api/job', { body: { last: 0, first: 1 } });
    assert.equal(json.status, 200);
    assert.deepEqual(json.body.resources, []);
  });

  test('bulk delete needs the bulk header and a filter', async () => {
    const marker = `delete-${String(Date.now())}`;
    await createJob({ tags: [marker] });
    await createJob({ tags: [marker] });
    const filter = encodeURIComponent(`tags='${marker}'`);
    assert.equal((await call('DELETE', `/api/job?filter=${filter}`)).status, 400);
    assert.equal((await call('DELETE', '/api/job', { headers: { bulk: 'yes' } })).status, 400);
    const deleted = await call('DELETE', `/api/job?filter=${filter}`, { headers: { bulk: 'yes' } });
    assert.equal(deleted.status, 200);
    assert.equal(deleted.body.count, 2);
  });
});

describe('bad input gets a clear 4xx and changes nothing', () => {
  let id = '';
  before(async () => {
    id = await createJob();
  });

  after(async () => {
    const stored = await call('GET', path(id));
    assert.equal(stored.headers.get('etag'), '"1"', 'none of the bad requests changed the job');
  });

  const cases: { name: string; send: () => Promise<Reply>; status: number; message: RegExp }[] = [
    { name: 'invalid JSON', send: () => call('PUT', path(id), { raw: '{"progress": ' }), status: 400, message: /invalid JSON body/ },
    {
      name: 'unknown state',
      send: () => call('PUT', path(id), { body: { state: 'DONE' } }),
      status: 400,
      message: /"state" must be one of/,
    },
    {
      name: 'wrong type',
      send: () => call('PUT', path(id), { body: { progress: 'half' } }),
      status: 400,
      message: /"progress" must be an integer/,
    },
    {
      name: 'unknown field',
      send: () => call('PUT', path(id), { body: { colour: 'red' } }),
      status: 400,
      message: /unknown field "colour"/,
    },
    {
      name: 'immutable field',
      send: () => call('PUT', path(id), { body: { action: 'other' } }),
      status: 400,
      message: /"action" cannot be changed/,
    },
    {
      name: 'invalid transition',
      send: () => call('PUT', path(id), { body: { state: 'SUCCESS' } }),
      status: 409,
      message: /cannot go from QUEUED to SUCCESS/,
    },
    {
      name: 'body over the limit',
      send: () => call('PUT', path(id), { body: { 'status-message': 'x'.repeat(300 * 1024) } }),
      status: 413,
      message: /./,
    },
    {
      name: 'bad If-Match',
      send: () => call('PUT', path(id), { body: { progress: 1 }, headers: { 'if-match': 'yesterday' } }),
      status: 412,
      message: /If-Match must carry a job revision/,
    },
    {
      name: 'filter syntax',
      send: () => call('GET', `/api/job?filter=${encodeURIComponent("state='QUEUED' and")}`),
      status: 400,
      message: /position 18: expected an attribute/,
    },
    {
      name: 'unsupported operator',
      send: () => call('GET', `/api/job?filter=${encodeURIComponent("state~'Q'")}`),
      status: 400,
      message: /unsupported operator/,
    },
    {
      name: 'unknown search parameter',
      send: () => call('GET', '/api/job?limit=5'),
      status: 400,
      message: /unknown search parameter "limit"/,
    },
    {
      name: 'unsupported media type',
      send: async () => {
        const response = await fetch(`${api.baseUrl}${path(id)}`, {
          method: 'PUT',
          headers: { authorization: `Bearer ${api.adminKey.key}:${api.adminKey.secret}`, 'content-type': 'application/xml' },
          body: '<job/>',
        });
        return { status: response.status, body: (await response.json()) as Record<string, unknown>, headers: response.headers };
      },
      status: 415,
      message: /./,
    },
    { name: 'not a job id', send: () => call('GET', '/api/job/42'), status: 404, message: /job ids are job\/<uuid>/ },
    { name: 'missing job', send: () => call('GET', '/api/job/00000000-0000-4000-8000-000000000000'), status: 404, message: /not found/ },
  ];
  for (const { name, send, status, message } of cases) {
    test(`${name}: ${String(status)}`, async () => {
      const reply = await send();
      assert.equal(reply.status, status, JSON.stringify(reply.body));
      assert.match(String(reply.body.message), message);
      assert.equal(reply.body.status, status, "Nuvla's error body carries the status");
      if (status === 415) assert.equal(reply.body.code, 'unsupported-media-type');
    });
  }
});
