/**
 * The job API's side of delayed jobs (`not-before`): parsing on create and edit, the claim refused
 * before the time, searches through the scheduler's index, and the SQLite migration that adds it.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import Database from 'better-sqlite3';
import { parseFilter, parseOrderBy } from '../src/api/cimi/parser.js';
import type { JobDocument } from '../src/api/job/document.js';
import { openSqliteStore } from '../src/api/store/sqlite-store.js';
import { startTestApi, type TestApi } from './fixtures/api-server.js';

let api: TestApi;

before(async () => {
  api = await startTestApi();
});

after(async () => {
  await api.close();
});

interface Reply {
  status: number;
  body: Record<string, unknown>;
}

async function call(method: string, path: string, body?: unknown): Promise<Reply> {
  const response = await fetch(`${api.baseUrl}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${api.adminKey.key}:${api.adminKey.secret}`,
      ...(body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

async function create(fields: Record<string, unknown>): Promise<string> {
  const reply = await call('POST', '/api/job', { action: 'noop', ...fields });
  assert.equal(reply.status, 201, JSON.stringify(reply.body));
  return String(reply.body['resource-id']);
}

const inSeconds = (seconds: number): string => new Date(Date.now() + seconds * 1000).toISOString();

describe('not-before on the job API', () => {
  test('a create with a future not-before is QUEUED and keeps it; one already past is dropped', async () => {
    const at = inSeconds(3600);
    const delayed = await create({ 'not-before': at });
    const doc = await call('GET', `/api/${delayed}`);
    assert.equal(doc.body.state, 'QUEUED');
    assert.equal(doc.body['not-before'], at);
    const past = await create({ 'not-before': '2020-01-01T00:00:00Z' });
    assert.equal((await call('GET', `/api/${past}`)).body['not-before'], undefined);
    // No offset means UTC, and the stored form is toISOString()'s, so it compares as text in filters.
    const plain = await create({ 'not-before': '2999-12-05T03:00' });
    assert.equal((await call('GET', `/api/${plain}`)).body['not-before'], '2999-12-05T03:00:00.000Z');
  });

  test('bad not-before values are refused with a 400 naming the field', async () => {
    for (const bad of ['tomorrow', '2026-13-01T00:00:00Z', '2026-02-30', 42, true, '']) {
      const reply = await call('POST', '/api/job', { action: 'noop', 'not-before': bad });
      assert.equal(reply.status, 400, `${JSON.stringify(bad)}: ${JSON.stringify(reply.body)}`);
      assert.match(String(reply.body.message), /"not-before" must be an ISO-8601 instant/);
    }
    const id = await create({});
    const edit = await call('PUT', `/api/${id}`, { 'not-before': 'soon' });
    assert.equal(edit.status, 400);
    assert.match(String(edit.body.message), /"not-before" must be an ISO-8601 instant.*"soon"/);
  });

  test('an edit sets not-before and null clears it', async () => {
    const id = await create({});
    const at = inSeconds(600);
    const set = await call('PUT', `/api/${id}`, { 'not-before': at });
    assert.equal(set.status, 200, JSON.stringify(set.body));
    assert.equal(set.body['not-before'], at);
    const cleared = await call('PUT', `/api/${id}`, { 'not-before': null });
    assert.equal(cleared.status, 200, JSON.stringify(cleared.body));
    assert.equal('not-before' in cleared.body, false);
  });

  test('a job is not claimed nor started before its not-before (409 saying so); once started it waits for nothing', async () => {
    const id = await create({ 'not-before': inSeconds(3600) });
    const claim = await call('POST', `/api/${id}/claim`, { executor: 'x@1' });
    assert.equal(claim.status, 409);
    assert.match(String(claim.body.message), /is not due before .*: it cannot start yet/);
    const start = await call('PUT', `/api/${id}`, { state: 'RUNNING' });
    assert.equal(start.status, 409);
    assert.equal((await call('GET', `/api/${id}`)).body.state, 'QUEUED');
    // Made due by an edit: claimed, and the claim clears the field.
    assert.equal((await call('PUT', `/api/${id}`, { 'not-before': '2020-01-01T00:00:00Z' })).status, 200);
    const claimed = await call('POST', `/api/${id}/claim`, { executor: 'x@1' });
    assert.equal(claimed.status, 200, JSON.stringify(claimed.body));
    assert.equal(claimed.body.state, 'RUNNING');
    assert.equal('not-before' in claimed.body, false);
  });

  test('the scheduler query: QUEUED jobs due by a time, by not-before, with a limit', async () => {
    const tag = `due-${String(Date.now())}`;
    const late = await create({ 'not-before': inSeconds(200), tags: [tag] });
    const early = await create({ 'not-before': inSeconds(100), tags: [tag] });
    await create({ 'not-before': inSeconds(5000), tags: [tag] });
    const filter = encodeURIComponent(`state='QUEUED' and not-before<='now+300s' and tags='${tag}'`);
    const reply = await call('GET', `/api/job?filter=${filter}&orderby=not-before:asc&last=10&select=not-before`);
    assert.equal(reply.status, 200, JSON.stringify(reply.body));
    const ids = (reply.body.resources as { id: string }[]).map((job) => job.id);
    assert.deepEqual(ids, [early, late]);
  });
});

describe('the SQLite store migration', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'delayed-migration-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  test('a file of schema version 1 gains the column and the index; its jobs keep working', async () => {
    const path = join(dir, 'v1.db');
    // The first release's schema, as such a file holds it, with one job in it.
    const db = new Database(path);
    db.exec(`CREATE TABLE schema_version (version INTEGER NOT NULL PRIMARY KEY, applied TEXT NOT NULL);
      INSERT INTO schema_version VALUES (1, '2026-01-01T00:00:00.000Z');
      CREATE TABLE jobs (id TEXT NOT NULL PRIMARY KEY, state TEXT NOT NULL, action TEXT NOT NULL, priority INTEGER NOT NULL,
        created TEXT NOT NULL, updated TEXT NOT NULL, started TEXT, expiry TEXT, target_href TEXT, parent_job TEXT,
        execution_mode TEXT, return_code INTEGER, progress INTEGER NOT NULL, executor TEXT, idempotency_key TEXT,
        revision INTEGER NOT NULL, doc TEXT NOT NULL);
      CREATE UNIQUE INDEX jobs_idempotency_key ON jobs (idempotency_key);`);
    const old: JobDocument = {
      id: 'job/00000000-0000-7000-8000-000000000001',
      'resource-type': 'job',
      created: '2026-01-01T00:00:00.000Z',
      updated: '2026-01-01T00:00:00.000Z',
      state: 'QUEUED',
      action: 'noop',
      progress: 0,
      priority: 999,
      version: 2,
      revision: 1,
    };
    db.prepare(
      `INSERT INTO jobs (id, state, action, priority, created, updated, progress, revision, doc) VALUES (?, 'QUEUED', 'noop', 999, ?, ?, 0, 1, ?)`,
    ).run(old.id, old.created, old.updated, JSON.stringify(old));
    db.close();

    const store = await openSqliteStore(path);
    try {
      assert.equal((await store.get(old.id))?.state, 'QUEUED');
      await store.create({ ...old, id: 'job/00000000-0000-7000-8000-000000000002', 'not-before': '2026-06-01T00:00:00.000Z' });
      const due = await store.search({
        filter: parseFilter("state='QUEUED' and not-before<='2026-07-01T00:00:00Z'"),
        orderBy: parseOrderBy('not-before:asc'),
      });
      assert.deepEqual(
        due.jobs.map((job) => job.id),
        ['job/00000000-0000-7000-8000-000000000002'],
      );
    } finally {
      await store.close();
    }
    const check = new Database(path, { readonly: true });
    try {
      const version = check.prepare('SELECT max(version) AS v FROM schema_version').get() as { v: number };
      assert.ok(version.v >= 2, `schema version ${String(version.v)}`);
      // Version 3: why each QUEUED job waits, and its queue with the default filled in.
      const columns = check.prepare('SELECT id, waiting, queue FROM jobs ORDER BY id').all() as { waiting: string | null; queue: string }[];
      assert.deepEqual(
        columns.map((row) => [row.waiting, row.queue]),
        [
          [null, 'default'],
          ['time', 'default'],
        ],
      );
      const feedPlan = check
        .prepare(
          'EXPLAIN QUERY PLAN SELECT doc FROM jobs WHERE state = ? AND waiting = ? AND queue = ? ORDER BY priority ASC, created ASC, id ASC LIMIT 1000',
        )
        .all('QUEUED', 'room', 'default') as { detail: string }[];
      assert.ok(
        feedPlan.some((row) => row.detail.includes('jobs_waiting_order')) && !feedPlan.some((row) => row.detail.includes('TEMP B-TREE')),
        `the feeder's query walks the index in order: ${JSON.stringify(feedPlan)}`,
      );
      const plan = check
        .prepare('EXPLAIN QUERY PLAN SELECT doc FROM jobs WHERE state = ? AND not_before <= ? ORDER BY not_before LIMIT 100')
        .all('QUEUED', '2026-07-01T00:00:00.000Z') as { detail: string }[];
      assert.ok(
        plan.some((row) => row.detail.includes('jobs_state_not_before')),
        `the scheduler's query uses the index: ${JSON.stringify(plan)}`,
      );
    } finally {
      check.close();
    }
  });
});
