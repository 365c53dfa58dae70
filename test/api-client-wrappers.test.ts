import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApiError, JobApiClient, type JobApi } from '../src/api/client/index.js';
import { LazyJobApi } from '../src/api/client/lazy-job-api.js';
import { BatchedJobWrites } from '../src/executor/job-writes.js';
import { startTestApi, type TestApi } from './fixtures/api-server.js';
import { nuvlaFlavour } from './fixtures/api-server-faults.js';

let api: TestApi;
let client: JobApiClient;

before(async () => {
  api = await startTestApi();
  client = await JobApiClient.create({ baseUrl: api.baseUrl, credentials: api.adminKey, compatibility: 'engine' });
});
after(async () => {
  await client.close();
  await api.close();
});

const operationRequests = (): number => api.requestsTo('POST', '/api/job/operations').length;

describe('BatchedJobWrites', () => {
  test('writes asked for together leave together, each with its own result', async () => {
    const writes = new BatchedJobWrites(client, { maxInFlight: 1 });
    const created = await client.createMany(Array.from({ length: 40 }, () => ({ action: 'batch_test' })));
    const before = operationRequests();
    const claims = await Promise.all(created.map(({ id }) => writes.claim(id, 'node-1@0000000000000001', 'claimed by node-1')));
    assert.ok(claims.every((claim) => claim.claimed && claim.job.state === 'RUNNING' && claim.job.attempt === 1));
    const requests = operationRequests() - before;
    assert.ok(requests >= 1 && requests <= 2, `${requests} requests for 40 claims`);

    const [first, second] = claims;
    assert.ok(first !== undefined && second !== undefined);
    const [done, stale, again] = await Promise.allSettled([
      writes.edit(first.job.id, { state: 'SUCCESS', 'return-code': 0 }, first.job.revision),
      writes.edit(second.job.id, { progress: 10 }, second.job.revision - 1),
      writes.claim(first.job.id, 'node-2@0000000000000002', 'claimed by node-2'),
    ]);
    assert.equal(done.status === 'fulfilled' ? done.value.state : done.reason, 'SUCCESS');
    assert.ok(
      stale.status === 'rejected' && stale.reason instanceof ApiError && stale.reason.code === 'precondition-failed',
      'a stale revision is refused on its own',
    );
    assert.ok(
      again.status === 'fulfilled' && !again.value.claimed && again.value.job.executor === 'node-1@0000000000000001',
      'a refused claim returns the job',
    );
  });

  test('a lone write leaves at once; a missing job is a not-found error', async () => {
    const writes = new BatchedJobWrites(client);
    const { id } = await client.create({ action: 'batch_test' });
    const { job } = await client.get(id);
    assert.equal((await writes.edit(id, { progress: 5 }, job.revision)).progress, 5);
    await assert.rejects(
      writes.edit('job/00000000-0000-7000-8000-0000000000ff', { progress: 5 }, undefined),
      (error: unknown) => error instanceof ApiError && error.code === 'not-found',
    );
  });

  test('when the API cannot be reached, every write of the request fails as retryable', async () => {
    const writes = new BatchedJobWrites(client);
    const { id } = await client.create({ action: 'batch_test' });
    await api.stop();
    try {
      const results = await Promise.allSettled([writes.edit(id, { progress: 1 }, undefined), writes.edit(id, { progress: 2 }, undefined)]);
      for (const result of results) {
        assert.ok(result.status === 'rejected' && result.reason instanceof ApiError && result.reason.code === 'unavailable');
      }
    } finally {
      await api.restart();
    }
  });

  test("with Nuvla's API each write is its own call", async () => {
    const nuvla = await startTestApi({ hooks: [nuvlaFlavour] });
    const nuvlaClient = await JobApiClient.create({ baseUrl: nuvla.baseUrl, credentials: nuvla.adminKey, compatibility: 'nuvla' });
    try {
      const writes = new BatchedJobWrites(nuvlaClient);
      const { id } = await nuvlaClient.create({ action: 'batch_test' });
      assert.equal((await writes.edit(id, { progress: 7 }, undefined)).progress, 7);
      assert.equal(nuvla.requestsTo('POST', '/api/job/operations').length, 0);
      assert.equal(nuvla.requestsTo('PUT', `/api/job/${id.slice(4)}`).length, 1);
    } finally {
      await nuvlaClient.close();
      await nuvla.close();
    }
  });
});

describe('LazyJobApi', () => {
  test('makes its client on the first call only, and passes every call through', async () => {
    let loads = 0;
    const lazy: JobApi = new LazyJobApi(() => {
      loads += 1;
      return Promise.resolve(client);
    });
    assert.equal(loads, 0, 'nothing loaded before a call');
    const { id } = await lazy.create({ action: 'lazy_test', tags: ['lazy'] });
    const { job } = await lazy.get(id);
    assert.equal(job.action, 'lazy_test');
    assert.equal((await lazy.edit(id, { progress: 3 }, { ifRevision: job.revision })).progress, 3);
    const selected = await lazy.search({ filter: "tags='lazy'", select: ['state'] });
    assert.deepEqual(selected.jobs, [{ id, state: 'QUEUED' }]);
    assert.equal((await lazy.search({ filter: "tags='lazy'" })).jobs[0]?.progress, 3);
    assert.equal(await lazy.count("tags='lazy'"), 1);
    assert.equal((await lazy.countByState("tags='lazy'")).QUEUED, 1);
    await lazy.cancel(id);
    assert.equal(await lazy.deleteMatching("tags='lazy'"), 1);
    assert.equal(loads, 1, 'loaded once');
  });

  test('a client that cannot be made fails the call that needed it; the next call tries again', async () => {
    let attempts = 0;
    const lazy = new LazyJobApi(() => {
      attempts += 1;
      return attempts === 1 ? Promise.reject(new Error('no client here')) : Promise.resolve(client);
    });
    await assert.rejects(lazy.count(), /no client here/);
    assert.equal(typeof (await lazy.count()), 'number');
    assert.equal(attempts, 2);
  });
});
