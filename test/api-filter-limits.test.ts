/**
 * Issue 14, finding 9: filters large enough to reach the database's own limits (expression depth,
 * bound parameters, JSON path length) must be refused with 400 naming the limit, never reach the
 * database and come back as 500. Attacked over HTTP against the real server on SQLite and on
 * PostgreSQL; a filter of a legitimate size still works on both.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import { FILTER_LIMITS } from '../src/api/cimi/parser.js';
import { JobApiServer } from '../src/api/server/job-api-server.js';
import { compileJobApiServerOptions } from '../src/api/server/options.js';
import { startPostgres, type PostgresServer } from '../src/harness/postgres-server.js';
import { silentLogger } from '../src/util/logger.js';

interface Served {
  readonly baseUrl: string;
  readonly authorization: string;
  close(): Promise<void>;
}

async function serve(database: string): Promise<Served> {
  const options = await compileJobApiServerOptions({ database, host: '127.0.0.1', port: 0, 'body-limit': 8 * 1024 * 1024 });
  const server = await JobApiServer.start(options, silentLogger);
  const admin = await server.stores.credentials.create('admin', 'filter limits');
  return { baseUrl: server.address, authorization: `Bearer ${admin.key}:${admin.secret}`, close: () => server.stop() };
}

interface Answer {
  readonly status: number;
  readonly body: Record<string, unknown>;
}

/** A search through Nuvla's PUT form of it, so that filters far longer than a URL can be sent. */
async function search(served: Served, filter: string): Promise<Answer> {
  const response = await fetch(`${served.baseUrl}/api/job`, {
    method: 'PUT',
    headers: { authorization: served.authorization, 'content-type': 'application/json' },
    body: JSON.stringify({ filter, last: 10 }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

async function bulkDelete(served: Served, filter: string): Promise<Answer> {
  const response = await fetch(`${served.baseUrl}/api/job`, {
    method: 'DELETE',
    headers: { authorization: served.authorization, 'content-type': 'application/json', bulk: 'yes' },
    body: JSON.stringify({ filter }),
  });
  return { status: response.status, body: (await response.json()) as Record<string, unknown> };
}

const terms = (count: number, term: (index: number) => string, joiner: string): string =>
  Array.from({ length: count }, (_, index) => term(index)).join(joiner);

/** Each attack, and what its 400 must name. */
const ATTACKS: readonly { name: string; filter: () => string; names: RegExp }[] = [
  { name: '500 path segments', filter: () => `${'a/'.repeat(499)}a='x'`, names: /attribute .*at most \d+ (names|segments)/ },
  {
    name: '20,000 or-terms on a column',
    filter: () => terms(20_000, (i) => `state='S${i}'`, ' or '),
    names: /at most \d+ (comparisons|characters)/,
  },
  { name: '1,000 short or-terms', filter: () => terms(1_000, (i) => `f=${i}`, ' or '), names: /at most \d+ comparisons/ },
  {
    name: '20,000 or-terms on a JSON attribute',
    filter: () => terms(20_000, (i) => `foo='v${i}'`, ' or '),
    names: /at most \d+ (comparisons|characters)/,
  },
  { name: '2,000 and-terms', filter: () => terms(2_000, (i) => `priority>${i}`, ' and '), names: /at most \d+ comparisons/ },
  {
    name: 'a list of 70,000 values',
    filter: () => `id=[${terms(70_000, (i) => `'job/${i}'`, ',')}]`,
    names: /at most \d+ (values|characters)/,
  },
  { name: 'a filter of 2 MB', filter: () => `action='${'x'.repeat(2 * 1024 * 1024)}'`, names: /at most \d+ characters/ },
];

/** A filter of a size real clients send: an executor's watch of 200 ids, jobctl's combined filters. */
const LEGITIMATE = [
  `id=[${terms(200, (i) => `'job/00000000-0000-4000-8000-${String(i).padStart(12, '0')}'`, ',')}]`,
  `(${terms(100, (i) => `action='a${i}'`, ' or ')}) and state=['QUEUED','RUNNING'] and target-resource/href^='nuvlabox/'`,
  `${'a/'.repeat(7)}a='x' or tags='t'`,
  // At the limits: as many comparisons as allowed, on a JSON attribute (the deepest SQL) and on a column.
  terms(FILTER_LIMITS.maxComparisons, (i) => `foo/bar='v${i}'`, ' or '),
  terms(FILTER_LIMITS.maxComparisons, (i) => `priority>${i}`, ' and '),
  `(${terms(FILTER_LIMITS.maxComparisons / 2, (i) => `foo!=[${i},'${i}',null]`, ' and ')}) or (${terms(FILTER_LIMITS.maxComparisons / 2 - 1, (i) => `state='S${i}'`, ' or ')})`,
  `${'a/'.repeat(FILTER_LIMITS.maxAttributeNames - 1)}a='x'`,
  `id=[${terms(FILTER_LIMITS.maxValues, (i) => `'j${i}'`, ',')}]`,
];

function suite(name: string, database: () => Promise<string>, cleanup: () => Promise<void>): void {
  describe(`oversized filters on ${name}`, () => {
    let served: Served | undefined;
    before(async () => {
      served = await serve(await database());
    });
    after(async () => {
      await served?.close();
      await cleanup();
    });
    const api = (): Served => {
      if (served === undefined) throw new Error('the server did not start');
      return served;
    };

    for (const attack of ATTACKS) {
      test(`${attack.name}: 400 naming the limit, in a search and in a bulk delete`, async () => {
        const filter = attack.filter();
        for (const answer of [await search(api(), filter), await bulkDelete(api(), filter)]) {
          assert.equal(answer.status, 400, JSON.stringify(answer.body).slice(0, 300));
          assert.equal(answer.body.code, 'bad-request');
          assert.match(String(answer.body.message), attack.names);
          // The whole oversized filter is not echoed back.
          assert.ok(JSON.stringify(answer.body).length < 2_000, 'the error body echoes the filter');
        }
      });
    }

    test('filters of a legitimate size still work', async () => {
      for (const filter of LEGITIMATE) {
        const answer = await search(api(), filter);
        assert.equal(answer.status, 200, `${filter.slice(0, 80)}: ${JSON.stringify(answer.body)}`);
      }
    });
  });
}

let dir: string | undefined;
suite(
  'SQLite',
  async () => {
    dir = await mkdtemp(join(tmpdir(), 'filter-limits-'));
    return join(dir, 'jobs.sqlite');
  },
  async () => {
    if (dir !== undefined) await rm(dir, { recursive: true, force: true });
  },
);

let postgres: PostgresServer | undefined;
suite(
  'PostgreSQL',
  async () => {
    postgres = await startPostgres();
    return postgres.createDatabase('filter_limits');
  },
  async () => {
    await postgres?.stop();
  },
);
