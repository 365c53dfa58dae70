import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { JobApiClient, type JobApiClientOptions } from '../src/api/client/index.js';
import { SessionCookie } from '../src/api/client/session.js';
import { apiError, httpError } from './fixtures/api-server-asserts.js';
import { startTestApi, type ApiKey, type TestApi } from './fixtures/api-server.js';

let api: TestApi;
const clients: JobApiClient[] = [];

async function client(overrides: Partial<JobApiClientOptions> = {}, key: ApiKey = api.adminKey): Promise<JobApiClient> {
  const created = await JobApiClient.create({ baseUrl: api.baseUrl, credentials: key, ...overrides });
  clients.push(created);
  return created;
}

before(async () => {
  api = await startTestApi();
});
after(async () => {
  await Promise.allSettled(clients.map((each) => each.close()));
  await api.close();
});

describe('session cookie', () => {
  test('keeps the login cookie and renews it before it expires', () => {
    const session = new SessionCookie();
    assert.equal(session.needsLogin(0), true);
    assert.equal(session.accept(['other=; Max-Age=0', 'com.sixsq.nuvla.cookie=tok.en; Path=/; Max-Age=100; HttpOnly'], 0), true);
    assert.equal(session.header, 'com.sixsq.nuvla.cookie=tok.en');
    assert.equal(session.generation, 1);
    assert.equal(session.needsLogin(89_999), false);
    assert.equal(session.needsLogin(90_000), true, 'a tenth of a short lifetime early');
    assert.equal(session.accept(['s=long; Max-Age=86400'], 0), true);
    assert.equal(session.needsLogin(86_400_000 - 30_001), false);
    assert.equal(session.needsLogin(86_400_000 - 30_000), true, '30 s early');
    assert.equal(session.accept(['s=gone; Expires=Thu, 01 Jan 1970 00:00:00 GMT'], 1000), false, 'an expired cookie is none');
    assert.equal(session.accept(['s=; Max-Age=100'], 0), false);
    assert.equal(session.header, 's=long', 'a refused cookie leaves the current one');
  });
});

describe('authentication and roles', () => {
  test('wrong credentials: unauthorized, after one login attempt', async () => {
    const jobs = await client({}, { key: api.adminKey.key, secret: 'wrong' });
    const logins = api.requestsTo('POST', '/api/session').length;
    await assert.rejects(jobs.count(), httpError(401, 'unauthorized', 'login with API key', 'unknown key or wrong secret'));
    assert.equal(api.requestsTo('POST', '/api/session').length, logins + 1);
    await assert.rejects(jobs.login(), apiError('unauthorized'));
  });

  test('no credentials: calls go out without any, and the server says 401', async () => {
    const anonymous = await JobApiClient.create({ baseUrl: api.baseUrl });
    clients.push(anonymous);
    await assert.rejects(anonymous.count(), httpError(401, 'unauthorized', 'no credentials'));
    await assert.rejects(anonymous.login(), apiError('unauthorized', 'no credentials to log in with'));
  });

  test('a viewer reads but may not write or delete (403); an operator may', async () => {
    const admin = await client();
    const { id } = await admin.create({ action: 'roles_test' });
    const viewer = await client({}, await api.createKey('viewer'));
    assert.equal((await viewer.get(id)).job.id, id);
    const logins = api.requestsTo('POST', '/api/session').length;
    await assert.rejects(viewer.create({ action: 'x' }), httpError(403, 'forbidden', 'role viewer may not create jobs'));
    await assert.rejects(viewer.edit(id, { progress: 5 }), httpError(403, 'forbidden'));
    await assert.rejects(viewer.cancel(id), httpError(403, 'forbidden'));
    assert.equal(api.requestsTo('POST', '/api/session').length, logins, 'a 403 from the engine is about the role: no re-login');
    const executor = await client({}, await api.createKey('operator'));
    await executor.edit(id, { state: 'RUNNING' });
    await assert.rejects(viewer.delete(id), httpError(403, 'forbidden', 'role viewer may not delete'));
    await executor.delete(id);
    await assert.rejects(admin.get(id), httpError(404, 'not-found'));
  });

  test('a session ended server-side: one re-login, shared by concurrent calls, and the calls succeed', async () => {
    const jobs = await client();
    const { id } = await jobs.create({ action: 'relogin_test' });
    const logins = api.requestsTo('POST', '/api/session').length;
    const gets = api.requestsTo('GET', `/api/job/${id.slice(4)}`).length;

    api.invalidateSessions();
    const results = await Promise.all(Array.from({ length: 10 }, () => jobs.get(id)));
    assert.ok(results.every((result) => result.job.id === id));
    assert.equal(api.requestsTo('POST', '/api/session').length, logins + 1, 'one login for ten refused calls');
    assert.equal(api.requestsTo('GET', `/api/job/${id.slice(4)}`).length, gets + 20, 'each call: refused once, replayed once');

    api.invalidateSessions();
    assert.equal((await jobs.edit(id, { progress: 3 })).progress, 3, 'a write is replayed after the re-login too');
  });

  test('a revoked key: the re-login fails and the call says unauthorized, without looping', async () => {
    const key = await api.createKey('producer');
    const jobs = await client({}, key);
    await jobs.login();
    const { id } = await jobs.create({ action: 'revoke_test' });
    await api.credentials.revoke(key.key);
    const logins = api.requestsTo('POST', '/api/session').length;
    const gets = api.requestsTo('GET', `/api/job/${id.slice(4)}`).length;
    await assert.rejects(jobs.get(id), httpError(401, 'unauthorized', 'login with API key'));
    assert.equal(api.requestsTo('POST', '/api/session').length, logins + 1);
    assert.equal(api.requestsTo('GET', `/api/job/${id.slice(4)}`).length, gets + 1);
  });
});
