import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { JobApiClient, type JobApi } from '../src/api/client/index.js';
import { LazyJobApi } from '../src/api/client/lazy-job-api.js';
import { startTestApi, type TestApi } from './fixtures/api-server.js';

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

test('LazyJobApi makes its client on the first call only, and passes every call through', async () => {
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
