import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { JobApiClient, NO_REVISION, type JobApiClientOptions } from '../src/api/client/index.js';
import { apiError, httpError, refusedByClient } from './fixtures/api-server-asserts.js';
import { nuvlaFlavour } from './fixtures/api-server-faults.js';
import { startTestApi, type ApiKey, type TestApi } from './fixtures/api-server.js';

const PROBE = '/api/job/00000000-0000-4000-8000-000000000000';
let engine: TestApi;
let nuvla: TestApi;
const clients: JobApiClient[] = [];

async function client(api: TestApi, options: Partial<JobApiClientOptions> = {}, key: ApiKey = api.adminKey): Promise<JobApiClient> {
  const created = await JobApiClient.create({
    baseUrl: api.baseUrl,
    credentials: key,
    retry: { retries: 2, baseDelayMs: 5, maxDelayMs: 20 },
    ...options,
  });
  clients.push(created);
  return created;
}

const bulkCreates = (api: TestApi): number =>
  api.requestsTo('POST', '/api/job').filter((request) => request.headers.bulk !== undefined).length;

before(async () => {
  engine = await startTestApi();
  nuvla = await startTestApi({ hooks: [nuvlaFlavour] });
});
after(async () => {
  await Promise.allSettled(clients.map((each) => each.close()));
  await Promise.allSettled([engine.close(), nuvla.close()]);
});

describe("compatibility 'nuvla' against our server: none of the engine's additions are used", () => {
  test('sequential creates, no If-Match, no revision; additions refused before anything is sent', async () => {
    const jobs = await client(engine, { compatibility: 'nuvla' });
    assert.equal(jobs.compatibility, 'nuvla');
    const posts = engine.requestsTo('POST', '/api/job').length;
    const bulk = bulkCreates(engine);
    const created = await jobs.createMany([{ action: 'a' }, { action: 'b' }, { action: 'c' }]);
    assert.deepEqual(
      created.map((each) => each.created),
      [true, true, true],
    );
    assert.equal(engine.requestsTo('POST', '/api/job').length - posts, 3, 'one create per job');
    assert.equal(bulkCreates(engine), bulk, 'no bulk header');
    assert.equal(engine.requestsTo('GET', PROBE).length, 0, 'no probe: the mode was given');

    const id = created[0]?.id ?? '';
    const fetched = await jobs.get(id);
    assert.equal(fetched.revision, undefined);
    assert.equal(fetched.job.action, 'a');

    const edited = await jobs.edit(id, { state: 'RUNNING', progress: 20 });
    assert.equal(edited.progress, 20);
    const puts = engine.requestsTo('PUT', `/api/job/${id.slice(4)}`);
    assert.equal(puts.at(-1)?.headers['if-match'], undefined, 'no If-Match');

    const before = engine.requests.length;
    await assert.rejects(
      jobs.edit(id, { progress: 30 }, { ifRevision: 2 }),
      refusedByClient('ifRevision (If-Match)', 'nuvla compatibility mode'),
    );
    await assert.rejects(jobs.edit(id, { executor: 'e1' }), refusedByClient('executor'));
    await assert.rejects(jobs.create({ action: 'x' }, { idempotencyKey: 'k' }), refusedByClient('an idempotency key'));
    await assert.rejects(jobs.create({ action: 'x', timeout: 60 }), refusedByClient('timeout'));
    await assert.rejects(jobs.claim(id, 'e1@0000000000000001'), refusedByClient('the claim operation'));
    assert.equal(engine.requests.length, before, 'refused without a request');
    assert.ok(
      (await jobs.edit(id, { progress: 30 }, { ifRevision: undefined })).progress === 30,
      'an undefined ifRevision is no condition',
    );
  });

  test('search, countByState, cancel, delete, deleteMatching work the Nuvla way', async () => {
    const jobs = await client(engine, { compatibility: 'nuvla' });
    const label = `nuvla-mode-${process.pid}`;
    const [a, b] = await jobs.createMany([
      { action: 'n', tags: [label] },
      { action: 'n', tags: [label] },
    ]);
    assert.ok(a !== undefined && b !== undefined);
    await jobs.cancel(a.id);
    assert.deepEqual(await jobs.countByState(`tags='${label}'`), { QUEUED: 1, RUNNING: 0, SUCCESS: 0, FAILED: 0, CANCELED: 1 });
    assert.equal((await jobs.search({ filter: `tags='${label}'`, orderby: 'created:asc' })).count, 2);
    await jobs.delete(a.id);
    assert.equal(await jobs.deleteMatching(`tags='${label}'`), 1);
  });
});

describe("'auto' against a Nuvla-like server (our server with every addition hidden)", () => {
  test('detected from the first job document; revisions are absent', async () => {
    const admin = await client(nuvla, { compatibility: 'nuvla' });
    const { id, created } = await admin.create({ action: 'detect' });
    assert.equal(created, true, '201 says created when the body does not');

    const jobs = await client(nuvla);
    const fetched = await jobs.get(id);
    assert.equal(jobs.compatibility, 'nuvla');
    assert.equal(fetched.revision, undefined);
    assert.equal(fetched.job.revision, NO_REVISION);
    assert.equal(nuvla.requestsTo('GET', PROBE).length, 0, 'a document answered the question: no probe');
    await assert.rejects(jobs.edit(id, { progress: 1 }, { ifRevision: 1 }), refusedByClient('ifRevision'));
  });

  test('a bulk create before anything else was seen: one probe, then creates one by one', async () => {
    const jobs = await client(nuvla);
    const bulk = bulkCreates(nuvla);
    const created = await jobs.createMany([{ action: 'p1' }, { action: 'p2' }]);
    assert.equal(created.length, 2);
    assert.equal(jobs.compatibility, 'nuvla');
    assert.equal(nuvla.requestsTo('GET', PROBE).length, 1);
    assert.equal(bulkCreates(nuvla), bulk);
    await jobs.createMany([{ action: 'p3' }]);
    assert.equal(nuvla.requestsTo('GET', PROBE).length, 1, 'detected once');
  });

  test("Nuvla's 403 for an ended session: one re-login and the call is replayed; a real 403 stays one", async () => {
    const jobs = await client(nuvla);
    const { id } = await jobs.create({ action: 'relogin' });
    await jobs.get(id);
    const logins = nuvla.requestsTo('POST', '/api/session').length;
    nuvla.invalidateSessions();
    assert.equal((await jobs.get(id)).job.id, id);
    assert.equal(nuvla.requestsTo('POST', '/api/session').length, logins + 1);

    const viewer = await client(nuvla, { compatibility: 'nuvla' }, await nuvla.createKey('viewer'));
    await viewer.get(id);
    const viewerLogins = nuvla.requestsTo('POST', '/api/session').length;
    await assert.rejects(viewer.cancel(id), httpError(403, 'forbidden', 'role viewer may not edit jobs'));
    assert.equal(nuvla.requestsTo('POST', '/api/session').length, viewerLogins + 1, 'one re-login, then the 403 is believed');
  });

  test("'engine' against it: a clear error instead of a wrong guess", async () => {
    const admin = await client(nuvla, { compatibility: 'nuvla' });
    const { id } = await admin.create({ action: 'wrong_mode' });
    const jobs = await client(nuvla, { compatibility: 'engine' });
    await assert.rejects(jobs.get(id), apiError('internal', 'has no "revision"', "compatibility 'nuvla'"));
  });
});

describe("'auto' against our server", () => {
  test('a bulk create before anything else was seen: one probe, then bulk', async () => {
    const jobs = await client(engine);
    const bulk = bulkCreates(engine);
    const probes = engine.requestsTo('GET', PROBE).length;
    const created = await jobs.createMany([{ action: 'q1' }, { action: 'q2' }]);
    assert.equal(created.length, 2);
    assert.equal(jobs.compatibility, 'engine');
    assert.equal(engine.requestsTo('GET', PROBE).length, probes + 1);
    assert.equal(bulkCreates(engine), bulk + 1);
    assert.equal(await jobs.detectCompatibility(), 'engine');
    assert.equal(engine.requestsTo('GET', PROBE).length, probes + 1);
  });
});
