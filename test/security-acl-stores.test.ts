/**
 * Issue 14, finding 3, on both stores: the acl rule a viewer's search gets (job-acl.ts) is part of the
 * SQL query, so SQLite and PostgreSQL return the same jobs, counts and per-state counts.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { newJob } from '../src/api/job/lifecycle.js';
import { parseJobCreate } from '../src/api/job/parse.js';
import type { JobDocument } from '../src/api/job/document.js';
import type { AccessControl, Principal } from '../src/api/server/access.js';
import { visibleFilter } from '../src/api/server/job-acl.js';
import { openPostgresStore } from '../src/api/store/postgres-store.js';
import { openSqliteStore } from '../src/api/store/sqlite-store.js';
import type { JobStore } from '../src/api/store/job-store.js';
import { startPostgres, type PostgresServer } from '../src/harness/postgres-server.js';

const viewer: Principal = { credentialId: 'credential/00000000-0000-4000-8000-00000000000a', role: 'viewer' };
const access = { allows: (_principal: Principal, permission: string) => permission === 'read' } as unknown as AccessControl;

let postgres: PostgresServer;
let dir: string;
before(async () => {
  postgres = await startPostgres();
  dir = await mkdtemp(join(tmpdir(), 'acl-stores-'));
});
after(async () => {
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
});

function job(acl?: Record<string, unknown>, createdBy?: string): JobDocument {
  const created = newJob(parseJobCreate({ action: 'acl_test', ...(acl === undefined ? {} : { acl }) }), new Date());
  return createdBy === undefined ? created : { ...created, 'created-by': createdBy };
}

async function check(store: JobStore): Promise<void> {
  const visible = [
    job(),
    job({ owners: ['user/alice'], 'view-meta': [viewer.credentialId] }),
    job({ owners: ['user/alice'], 'edit-data': [viewer.credentialId] }),
    job({ owners: ['group/nuvla-user'] }),
    job({ owners: ['user/alice'] }, viewer.credentialId),
  ];
  const hidden = [job({ owners: ['user/alice'] }), job({ owners: ['user/alice'], 'view-data': ['user/bob'] }), job({})];
  for (const document of [...visible, ...hidden]) await store.create(document);
  const filter = visibleFilter(access, viewer, undefined);
  const result = await store.search({ ...(filter === undefined ? {} : { filter }), first: 1, last: 100 });
  assert.equal(result.count, visible.length);
  assert.deepEqual(result.jobs.map((found) => found.id).sort(), visible.map((document) => document.id).sort());
  assert.equal((await store.countByState(filter)).QUEUED, visible.length);
}

test('SQLite: a viewer search returns only visible jobs, counts included', async () => {
  const store = await openSqliteStore(join(dir, 'jobs.sqlite'));
  try {
    await check(store);
  } finally {
    await store.close();
  }
});

test('PostgreSQL: a viewer search returns only visible jobs, counts included', async () => {
  const store = await openPostgresStore(await postgres.createDatabase('acl_stores'));
  try {
    await check(store);
  } finally {
    await store.close();
  }
});
