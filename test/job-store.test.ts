/**
 * One suite, both stores: SQLite in a temporary file and PostgreSQL in a private cluster. Whatever
 * the API does on top of the JobStore contract must behave the same on either.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, beforeEach, describe, test } from 'node:test';

import { parseFilter, parseOrderBy } from '../src/api/cimi/parser.js';
import { ApiError, conflict } from '../src/api/errors.js';
import type { JobDocument } from '../src/api/job/document.js';
import type { JobStore } from '../src/api/store/job-store.js';
import { openPostgresStore } from '../src/api/store/postgres-store.js';
import { openSqliteStore } from '../src/api/store/sqlite-store.js';
import { startPostgres, type PostgresServer } from '../src/harness/postgres-server.js';

interface StoreFactory {
  readonly kind: JobStore['kind'];
  setUp(): Promise<void>;
  /** A new, empty database; every call of the opener is another connection (pool) to it. */
  newDatabase(): Promise<() => Promise<JobStore>>;
  tearDown(): Promise<void>;
}

function sqliteFactory(): StoreFactory {
  let dir: string | undefined;
  let databases = 0;
  return {
    kind: 'sqlite',
    async setUp() {
      dir = await mkdtemp(join(tmpdir(), 'job-store-test-'));
    },
    newDatabase() {
      if (dir === undefined) throw new Error('setUp() first');
      databases += 1;
      const path = join(dir, `jobs-${databases}.db`);
      return Promise.resolve(() => openSqliteStore(path));
    },
    async tearDown() {
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    },
  };
}

function postgresFactory(): StoreFactory {
  let server: PostgresServer | undefined;
  let databases = 0;
  return {
    kind: 'postgres',
    async setUp() {
      const started = Date.now();
      server = await startPostgres();
      process.stderr.write(`# private PostgreSQL (pid ${server.pid}) ready in ${Date.now() - started} ms\n`);
    },
    async newDatabase() {
      if (server === undefined) throw new Error('setUp() first');
      databases += 1;
      const url = await server.createDatabase(`jobs_${process.pid}_${databases}`);
      // Above the concurrency test's 20 writers, so that they really run at once.
      return () => openPostgresStore(url, { poolSize: 24 });
    },
    async tearDown() {
      await server?.stop();
    },
  };
}

let sequence = 0;

/** A valid QUEUED job, one second younger than the previous one. */
function job(overrides: Partial<JobDocument> = {}): JobDocument {
  sequence += 1;
  const created = new Date(Date.UTC(2026, 0, 1, 0, 0, sequence)).toISOString();
  return {
    id: `job/${randomUUID()}`,
    'resource-type': 'job',
    created,
    updated: created,
    state: 'QUEUED',
    action: 'start_deployment',
    progress: 0,
    priority: 999,
    version: 2,
    revision: 1,
    ...overrides,
  };
}

const bump =
  (changes: Partial<JobDocument> = {}) =>
  (current: JobDocument): JobDocument => ({ ...current, ...changes, revision: current.revision + 1 });

const ids = (jobs: readonly JobDocument[]): string[] => jobs.map(({ id }) => id);

function isApiError(code: ApiError['code'], ...mentions: string[]): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof ApiError, `expected an ApiError, got ${String(error)}`);
    assert.equal(error.code, code, error.message);
    for (const text of mentions) assert.ok(error.message.includes(text), `"${error.message}" should mention ${text}`);
    return true;
  };
}

for (const factory of [sqliteFactory(), postgresFactory()]) {
  describe(`job store: ${factory.kind}`, { timeout: 120_000 }, () => {
    const opened: JobStore[] = [];
    let openMain: () => Promise<JobStore>;
    let store: JobStore;

    const track = async (opening: Promise<JobStore>): Promise<JobStore> => {
      const next = await opening;
      opened.push(next);
      return next;
    };

    before(async () => {
      await factory.setUp();
      openMain = await factory.newDatabase();
      store = await track(openMain());
    });

    after(async () => {
      await Promise.allSettled(opened.map((each) => each.close()));
      await factory.tearDown();
    });

    beforeEach(async () => {
      await store.deleteMatching(undefined);
    });

    test('create stores the document whole; get returns it; a duplicate id is a conflict', async () => {
      assert.equal(store.kind, factory.kind);
      const first = job({
        'target-resource': { href: 'deployment/1' },
        tags: ['a', 'b'],
        payload: '{"x":1}',
        acl: { owners: ['group/nuvla-admin'] },
        'idempotency-key': 'k-1',
      });
      assert.deepEqual(await store.create(first), { job: first, created: true });
      assert.deepEqual(await store.get(first.id), first);
      assert.equal(await store.get('job/missing'), undefined);
      await assert.rejects(store.create({ ...first, 'idempotency-key': 'k-2' }), isApiError('conflict', first.id));
      assert.deepEqual(await store.get(first.id), first);
    });

    test('an idempotency key already present returns that job and inserts nothing, also within createMany', async () => {
      const original = await store.create(job({ 'idempotency-key': 'same' }));
      const again = await store.create(job({ 'idempotency-key': 'same', action: 'other' }));
      assert.deepEqual(again, { job: original.job, created: false });
      assert.equal((await store.search({})).count, 1);

      const fresh = job({ 'idempotency-key': 'fresh' });
      const noKey1 = job();
      const noKey2 = job();
      const batch = await store.createMany([
        fresh,
        job({ 'idempotency-key': 'same' }),
        noKey1,
        job({ 'idempotency-key': 'fresh' }),
        noKey2,
      ]);
      assert.deepEqual(
        batch.map(({ job: { id }, created }) => [id, created]),
        [
          [fresh.id, true],
          [original.job.id, false],
          [noKey1.id, true],
          [fresh.id, false],
          [noKey2.id, true],
        ],
      );
      assert.equal((await store.search({})).count, 4);
    });

    test('createMany returns results in input order, and one failure leaves nothing behind', async () => {
      const jobs = Array.from({ length: 50 }, (_, index) => job({ priority: 50 - index }));
      const results = await store.createMany(jobs);
      assert.deepEqual(ids(results.map((result) => result.job)), ids(jobs));
      assert.ok(results.every((result) => result.created));
      assert.deepEqual(await store.createMany([]), []);

      const duplicate = jobs[7];
      assert.ok(duplicate !== undefined);
      const newcomer = job();
      await assert.rejects(store.createMany([newcomer, duplicate]), isApiError('conflict', duplicate.id));
      assert.equal(await store.get(newcomer.id), undefined);
      assert.equal((await store.search({})).count, 50);
    });

    test('update: unconditional, conditional, 412 naming both revisions, 404, and an aborting mutation', async () => {
      const { job: created } = await store.create(job());
      const running = await store.update(created.id, bump({ state: 'RUNNING', executor: 'executor-1' }));
      assert.equal(running.revision, 2);
      assert.deepEqual(await store.get(created.id), running);

      const progressed = await store.update(created.id, bump({ progress: 50 }), 2);
      assert.equal(progressed.revision, 3);
      await assert.rejects(
        store.update(created.id, bump({ progress: 60 }), 2),
        isApiError('precondition-failed', 'revision 3', 'expected revision 2'),
      );
      await assert.rejects(store.update('job/missing', bump(), 1), isApiError('not-found', 'job/missing'));
      await assert.rejects(
        store.update(created.id, () => {
          throw conflict('refused by the mutation');
        }),
        isApiError('conflict', 'refused by the mutation'),
      );
      // A mutation that forgets the revision would let two If-Match writers both win.
      await assert.rejects(
        store.update(created.id, (current) => ({ ...current, progress: 70 })),
        isApiError('internal'),
      );
      assert.deepEqual(await store.get(created.id), progressed);
      assert.deepEqual((await store.search({ filter: parseFilter('progress=50') })).jobs, [progressed]);
    });

    test('search over columns and over attributes only in the document, with orderBy, ranges and count', async () => {
      const a = job({ state: 'RUNNING', priority: 10, tags: ['urgent', 'x'], 'target-resource': { href: 'deployment/1' } });
      const b = job({ action: 'stop_deployment', priority: 10, payload: '{"force":true}', 'status-message': 'stopping now' });
      const c = job({ state: 'FAILED', priority: 500, 'return-code': 2, 'parent-job': a.id, tags: ['x'] });
      const d = job({ priority: 50, 'status-message': 'waiting', 'target-resource': { href: 'deployment/2' } });
      await store.createMany([a, b, c, d]);
      const find = async (filter: string, orderby = 'created:asc'): Promise<string[]> =>
        ids((await store.search({ filter: parseFilter(filter), orderBy: parseOrderBy(orderby) })).jobs);

      assert.deepEqual(await find("state='QUEUED'"), [b.id, d.id]);
      assert.deepEqual(await find("state=['RUNNING','FAILED']"), [a.id, c.id]);
      assert.deepEqual(await find('priority<100 and priority!=50'), [a.id, b.id]);
      assert.deepEqual(await find("target-resource/href='deployment/2' or parent-job!=null"), [c.id, d.id]);
      assert.deepEqual(await find("action^='stop_'"), [b.id]);
      assert.deepEqual(await find(`created>'${b.created}'`), [c.id, d.id]);
      assert.deepEqual(await find("created<'now'"), [a.id, b.id, c.id, d.id]);
      assert.deepEqual(await find('return-code=2'), [c.id]);
      assert.deepEqual(await find('tags=null'), [b.id, d.id]);
      assert.deepEqual(await find("tags!=null and target-resource/href='deployment/1'"), [a.id]);
      assert.deepEqual(await find(`payload='{"force":true}'`), [b.id]);
      assert.deepEqual(await find("status-message^='stop'"), [b.id]);
      assert.deepEqual(await find("status-message!=null and state='QUEUED'"), [b.id, d.id]);

      const all = async (orderby?: string): Promise<string[]> =>
        ids((await store.search(orderby === undefined ? {} : { orderBy: parseOrderBy(orderby) })).jobs);
      assert.deepEqual(await all(), [d.id, c.id, b.id, a.id], 'newest first by default');
      assert.deepEqual(await all('priority:asc,created:desc'), [b.id, a.id, d.id, c.id]);
      assert.deepEqual(await all('state:asc,priority:desc'), [c.id, d.id, b.id, a.id]);

      const page = await store.search({ orderBy: parseOrderBy('created:asc'), first: 2, last: 3 });
      assert.equal(page.count, 4);
      assert.deepEqual(ids(page.jobs), [b.id, c.id]);
      const queuedPage = await store.search({ filter: parseFilter("state='QUEUED'"), first: 2 });
      assert.deepEqual([queuedPage.count, ids(queuedPage.jobs)], [2, [b.id]]);
      assert.deepEqual(await store.search({ first: 3, last: 2 }), { count: 4, jobs: [] });
      assert.deepEqual(await store.search({ first: 9 }), { count: 4, jobs: [] });
      await assert.rejects(store.search({ first: 0 }), isApiError('bad-request', 'first'));
    });

    // Nuvla (Elasticsearch) indexes each element of a list as a value of the attribute, and a path
    // through a list of objects collects the key from each.
    test('a filter on an array attribute matches per element, also through a list of objects', async () => {
      const a = job({
        tags: ['urgent', 'x'],
        'nested-jobs': ['job/n1', 'job/n2'],
        'affected-resources': [{ href: 'deployment/1' }, { href: 'credential/1' }],
      });
      const b = job({ tags: ['x'], 'affected-resources': [{ href: 'nuvlabox/1' }] });
      const c = job({ tags: [], 'affected-resources': [] });
      const d = job({ 'nested-jobs': ['job/n3'] });
      await store.createMany([a, b, c, d]);
      const find = async (filter: string): Promise<string[]> =>
        ids((await store.search({ filter: parseFilter(filter), orderBy: parseOrderBy('created:asc') })).jobs);

      assert.deepEqual(await find("tags='urgent'"), [a.id]);
      assert.deepEqual(await find("tags='x'"), [a.id, b.id]);
      assert.deepEqual(await find("tags!='x'"), [c.id, d.id], 'no element is x, or there are none');
      assert.deepEqual(await find("tags!='urgent'"), [b.id, c.id, d.id]);
      assert.deepEqual(await find("tags=['urgent','nope']"), [a.id]);
      assert.deepEqual(await find("tags!=['urgent','x']"), [c.id, d.id]);
      assert.deepEqual(await find("tags^='urg'"), [a.id]);
      assert.deepEqual(await find('tags=null'), [c.id, d.id], 'missing or an empty list');
      assert.deepEqual(await find('tags!=null'), [a.id, b.id]);
      assert.deepEqual(await find("tags=['x',null]"), [a.id, b.id, c.id, d.id]);
      assert.deepEqual(await find("nested-jobs='job/n2' or nested-jobs='job/n3'"), [a.id, d.id]);
      assert.deepEqual(await find("affected-resources/href='credential/1'"), [a.id]);
      assert.deepEqual(await find("affected-resources/href^='nuvlabox/'"), [b.id]);
      assert.deepEqual(await find("affected-resources/href!='deployment/1'"), [b.id, c.id, d.id]);
      assert.deepEqual(await find('affected-resources/href=null'), [c.id, d.id]);
      // Scalars keep comparing as they are.
      assert.deepEqual(await find("tags='x' and action='start_deployment' and progress=0"), [a.id, b.id]);
      assert.equal(await store.deleteMatching(parseFilter("tags='urgent' or affected-resources/href='nuvlabox/1'")), 2);
      assert.deepEqual(await store.countByState(parseFilter('nested-jobs!=null')), {
        QUEUED: 1,
        RUNNING: 0,
        SUCCESS: 0,
        FAILED: 0,
        CANCELED: 0,
      });
    });

    test("the queue field filters like any other, a job older than it being the default queue's: queue='gpu', queue='default'", async () => {
      const gpu = job({ queue: 'gpu' });
      const plain = job({ queue: 'default' });
      const older = job();
      await store.createMany([gpu, plain, older]);
      const matching = async (filter: string): Promise<string[]> =>
        ids((await store.search({ filter: parseFilter(filter), orderBy: parseOrderBy('created:asc') })).jobs);
      assert.deepEqual(await matching("queue='gpu'"), [gpu.id]);
      // Kept with the default filled in (an indexed column since schema version 3): a job without the
      // field is in the default queue, and filters say so.
      assert.deepEqual(await matching("queue='default'"), [plain.id, older.id]);
      assert.deepEqual(await matching('queue=null'), []);
      assert.deepEqual(await matching("queue!='gpu'"), [plain.id, older.id]);
    });

    test('missing values sort last in both stores and both directions, for columns and document attributes', async () => {
      const withCode = job({ state: 'FAILED', 'return-code': 1, 'status-message': 'b' });
      const without = job();
      const withZero = job({ state: 'SUCCESS', 'return-code': 0, 'status-message': 'a' });
      await store.createMany([withCode, without, withZero]);
      const sorted = async (orderby: string): Promise<string[]> => ids((await store.search({ orderBy: parseOrderBy(orderby) })).jobs);
      assert.deepEqual(
        await sorted('return-code:asc'),
        [withZero.id, withCode.id, without.id],
        'missing last, as Elasticsearch sorts them',
      );
      assert.deepEqual(await sorted('return-code:desc'), [withCode.id, withZero.id, without.id]);
      assert.deepEqual(await sorted('status-message:asc'), [withZero.id, withCode.id, without.id]);
      assert.deepEqual(await sorted('status-message:desc'), [withCode.id, withZero.id, without.id]);
    });

    test('deleteMatching deletes what the filter matches, or everything; delete removes one', async () => {
      const keep = job({ state: 'RUNNING' });
      const [old1, old2] = [job({ state: 'SUCCESS' }), job({ state: 'FAILED' })];
      await store.createMany([keep, old1, old2]);
      assert.equal(await store.deleteMatching(parseFilter("state=['SUCCESS','FAILED','CANCELED']")), 2);
      assert.deepEqual(ids((await store.search({})).jobs), [keep.id]);
      assert.equal(await store.deleteMatching(parseFilter("state='CANCELED'")), 0);

      assert.equal(await store.delete(keep.id), true);
      assert.equal(await store.delete(keep.id), false);
      assert.equal(await store.get(keep.id), undefined);

      await store.createMany([job(), job()]);
      assert.equal(await store.deleteMatching(undefined), 2);
      assert.equal((await store.search({})).count, 0);
    });

    test('countByState reports every state, with and without a filter', async () => {
      assert.deepEqual(await store.countByState(), { QUEUED: 0, RUNNING: 0, SUCCESS: 0, FAILED: 0, CANCELED: 0 });
      await store.createMany([
        ...['QUEUED', 'QUEUED', 'RUNNING', 'SUCCESS', 'FAILED', 'CANCELED', 'CANCELED', 'CANCELED'].map((state) =>
          job({ state: state as JobDocument['state'] }),
        ),
        job({ state: 'QUEUED', action: 'other' }),
        job({ state: 'FAILED', action: 'other' }),
      ]);
      assert.deepEqual(await store.countByState(), { QUEUED: 3, RUNNING: 1, SUCCESS: 1, FAILED: 2, CANCELED: 3 });
      assert.deepEqual(await store.countByState(parseFilter("action='other'")), {
        QUEUED: 1,
        RUNNING: 0,
        SUCCESS: 0,
        FAILED: 1,
        CANCELED: 0,
      });
    });

    test('of 20 concurrent updates expecting the same revision, exactly one succeeds', async () => {
      const { job: created } = await store.create(job());
      // Several connections, so that the updates race in the database and not just in one pool.
      const others = await Promise.all([track(openMain()), track(openMain()), track(openMain())]);
      const stores = [store, ...others];
      const outcomes = await Promise.allSettled(
        Array.from({ length: 20 }, (_, index) =>
          (stores[index % stores.length] ?? store).update(created.id, bump({ executor: `executor-${index}` }), 1),
        ),
      );
      const won = outcomes.filter((outcome) => outcome.status === 'fulfilled');
      const lost: unknown[] = [];
      for (const outcome of outcomes) if (outcome.status === 'rejected') lost.push(outcome.reason);
      assert.equal(won.length, 1, `winners: ${won.length}`);
      for (const reason of lost) assert.ok(isApiError('precondition-failed', 'revision 2', 'expected revision 1')(reason));
      const stored = await store.get(created.id);
      assert.equal(stored?.revision, 2);
      assert.deepEqual(stored, won[0]?.value);
      await Promise.all(others.map((other) => other.close()));
    });

    test('concurrent creates with one idempotency key create one job and all return it', async () => {
      const others = await Promise.all([track(openMain()), track(openMain())]);
      const stores = [store, ...others];
      const results = await Promise.all(
        Array.from({ length: 12 }, (_, index) => (stores[index % stores.length] ?? store).create(job({ 'idempotency-key': 'race' }))),
      );
      const winners = results.filter((result) => result.created);
      assert.equal(winners.length, 1);
      assert.deepEqual(new Set(results.map((result) => result.job.id)), new Set([winners[0]?.job.id]));
      assert.equal((await store.search({})).count, 1);
      await Promise.all(others.map((other) => other.close()));
    });

    test('stores opening a new database at once agree on one schema, and reopening keeps the jobs', async () => {
      const open = await factory.newDatabase();
      const [first, second] = await Promise.all([track(open()), track(open())]);
      const created = job();
      await first.create(created);
      assert.deepEqual(await second.get(created.id), created);
      await Promise.all([first.close(), second.close()]);
      const reopened = await track(open());
      assert.deepEqual(await reopened.get(created.id), created);
      await reopened.close();
    });
  });
}
