/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core, against the real job
 * API (in-process, SQLite, with --zk-hosts), a private ZooKeeper and a `job-executor` child. A job
 * created with `jobctl` appears and reaches SUCCESS without a reload; a bad CIMI filter shows the
 * API's error in place; a running job is cancelled from its page; a viewer sees no action buttons and
 * gets 403 when it forges the request; without --zk-hosts the engine panels say how to turn them on.
 * Then what came later: a distribution's schedule and ticks, dead letters, attempts, a batch's
 * counters and tasks, and the cancel of everything a filter matches (a viewer forging it gets 403).
 * Screenshots of each page go to test-artifacts/ui/.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { openBackends, type Backends } from '../src/api/backends.js';
import { JobApiServer } from '../src/api/server/job-api-server.js';
import { compileJobApiServerOptions } from '../src/api/server/options.js';
import { waitFor } from '../src/harness/wait-for.js';
import { startZooKeeper, type ZooKeeperServer } from '../src/harness/zookeeper-server.js';
import { silentLogger } from '../src/util/logger.js';
import { ZkClient } from '../src/zk/client.js';
import { buildUi } from '../scripts/build-ui.js';
import { startTestApi, type ApiKey, type TestApi } from './fixtures/api-server.js';
import { spawnDaemon, type DaemonProcess } from './fixtures/daemon-process.js';
import { TEST_ACTIONS, TEST_DISTRIBUTIONS } from './fixtures/executor-testbed.js';
import { newJob } from '../src/api/job/lifecycle.js';
import { parseJobCreate } from '../src/api/job/parse.js';
import { killJobctlProcesses, runJobctl } from './fixtures/jobctl-process.js';
import { removeTree } from './fixtures/zk-cleanup.js';

const CHROMIUM = '/usr/bin/chromium';
const EXECUTOR_BIN = fileURLToPath(new URL('../src/bin/job-executor.ts', import.meta.url));
const DISTRIBUTOR_BIN = fileURLToPath(new URL('../src/bin/job-distributor.ts', import.meta.url));
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/ui/', import.meta.url));
/** Generous for a loaded 2-core machine: a browser, ZooKeeper, the API and an executor share it. */
const UI_TIMEOUT_MS = 30_000;

interface Stack {
  readonly zk: ZooKeeperServer;
  readonly zkClient: ZkClient;
  readonly queuePath: string;
  readonly electionPath: string;
  readonly dir: string;
  readonly backends: Backends;
  readonly server: JobApiServer;
  readonly admin: ApiKey;
  readonly viewer: ApiKey;
  readonly executor: DaemonProcess;
  readonly browser: Browser;
}

let stack: Stack | undefined;
const cleanups: (() => Promise<void>)[] = [];

function bed(): Stack {
  if (stack === undefined) throw new Error('the dashboard stack did not start');
  return stack;
}

/** A browser context whose page fails the test on any script error or CSP violation it logs. */
async function openPage(width = 1280, height = 800): Promise<{ page: Page; context: BrowserContext; problems: string[] }> {
  const context = await bed().browser.newContext({ viewport: { width, height } });
  const page = await context.newPage();
  const problems: string[] = [];
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    // A refused request (401 before login, the viewer's forged 403) is logged by the browser itself.
    if (message.type() === 'error' && !message.text().startsWith('Failed to load resource')) problems.push(message.text());
  });
  return { page, context, problems };
}

async function logIn(page: Page, baseUrl: string, key: ApiKey): Promise<void> {
  await page.goto(`${baseUrl}/ui/`);
  await page.getByLabel('API key').fill(key.key);
  await page.getByLabel('Secret').fill(key.secret);
  await page.getByRole('button', { name: 'Log in' }).click();
  await page.getByRole('navigation', { name: 'Pages' }).waitFor({ timeout: UI_TIMEOUT_MS });
}

async function screenshot(page: Page, name: string): Promise<void> {
  await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

async function stateOf(id: string): Promise<string | undefined> {
  return (await bed().backends.jobs.get(id))?.state;
}

before(async () => {
  await mkdir(ARTIFACTS, { recursive: true });
  // The server reads dist/ui when it starts: built here, so a clean clone's npm test needs no build first.
  await buildUi();
  const zk = await startZooKeeper();
  cleanups.push(() => zk.stop());
  const zkClient = await ZkClient.connect({ connectionString: zk.connectionString, sessionTimeoutMs: 4000 });
  cleanups.push(() => zkClient.close());
  const queuePath = `/ui-test-${randomUUID()}`;
  const electionPath = `/ui-election-${randomUUID()}`;
  cleanups.push(async () => {
    await removeTree(zkClient, queuePath);
    await removeTree(zkClient, electionPath);
  });
  const dir = await mkdtemp(join(tmpdir(), 'ui-test-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const database = join(dir, 'jobs.sqlite');
  const backends = await openBackends(database);
  cleanups.push(() => backends.close());
  const admin = await backends.credentials.create('admin', 'dashboard test admin');
  const viewer = await backends.credentials.create('viewer', 'dashboard test viewer');
  const options = await compileJobApiServerOptions({
    database,
    host: '127.0.0.1',
    port: 0,
    'zk-hosts': zk.connectionString,
    'queue-path': queuePath,
    'election-path': electionPath,
    'session-timeout': 4,
  });
  const server = await JobApiServer.start(options, silentLogger, { stores: backends });
  cleanups.push(() => server.stop());
  const executor = spawnDaemon(
    EXECUTOR_BIN,
    [
      '--zk-hosts',
      zk.connectionString,
      '--queue-path',
      queuePath,
      '--api-url',
      server.address,
      '--threads',
      '2',
      '--session-timeout',
      '4',
      '--kill-grace',
      '1',
      '--name',
      'ui-test-executor',
      '--actions-dir',
      TEST_ACTIONS,
    ],
    { JOB_EXECUTOR_API_KEY: admin.key, JOB_EXECUTOR_API_SECRET: admin.secret },
  );
  cleanups.push(() => executor.kill());
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  cleanups.push(() => browser.close());
  stack = {
    zk,
    zkClient,
    queuePath,
    electionPath,
    dir,
    backends,
    server,
    admin: { key: admin.key, secret: admin.secret },
    viewer: { key: viewer.key, secret: viewer.secret },
    executor,
    browser,
  };
  await executor.waitForLine(/executor started/, UI_TIMEOUT_MS);
});

after(async () => {
  await killJobctlProcesses();
  // Last opened, first closed; every one even when one fails.
  const failures: unknown[] = [];
  for (const cleanup of cleanups.reverse()) await cleanup().catch((error: unknown) => failures.push(error));
  if (failures.length > 0) throw new AggregateError(failures, 'dashboard test cleanup failed');
});

describe('the dashboard', () => {
  test('serves /ui/ with its own content security policy, and the login form leads to the overview with live executors', async (t) => {
    const response = await fetch(`${bed().server.address}/ui/`);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-security-policy') ?? '', /script-src 'self'/);
    const { page, context, problems } = await openPage();
    try {
      await page.goto(`${bed().server.address}/ui/`);
      await page.getByLabel('API key').waitFor();
      const paint = await page.evaluate(() => performance.getEntriesByName('first-contentful-paint')[0]?.startTime);
      t.diagnostic(`first contentful paint of the login page: ${String(paint)} ms`);
      await screenshot(page, 'login');
      await page.getByLabel('API key').fill(bed().admin.key);
      await page.getByLabel('Secret').fill('not the secret');
      await page.getByRole('button', { name: 'Log in' }).click();
      await page.getByRole('alert').waitFor({ timeout: UI_TIMEOUT_MS });
      await logIn(page, bed().server.address, bed().admin);
      await page.locator('[data-executor="ui-test-executor"]').waitFor({ timeout: UI_TIMEOUT_MS });
      await page.locator('[data-queue="default"]').first().waitFor({ timeout: UI_TIMEOUT_MS });
      await screenshot(page, 'overview');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('a job created with jobctl appears in the jobs table and reaches SUCCESS without a reload', async () => {
    const { page, context, problems } = await openPage();
    const scratch = await mkdtemp(join(tmpdir(), 'ui-jobctl-'));
    try {
      await logIn(page, bed().server.address, bed().admin);
      await page.getByRole('link', { name: 'Jobs' }).click();
      await page.locator('[data-stream="live"]').waitFor({ timeout: UI_TIMEOUT_MS });
      const created = await runJobctl(
        [
          'create',
          'sleep',
          '--payload',
          '{"ms":1500}',
          '--api-url',
          bed().server.address,
          '--zk-hosts',
          bed().zk.connectionString,
          '--queue-path',
          bed().queuePath,
        ],
        { cwd: scratch, env: { JOBCTL_API_KEY: bed().admin.key, JOBCTL_API_SECRET: bed().admin.secret } },
      );
      assert.equal(created.code, 0, created.stderr);
      const id = /job\/[0-9a-f-]{36}/.exec(created.stdout + created.stderr)?.[0];
      assert.ok(id !== undefined, `jobctl printed no job id: ${created.stdout}`);
      const row = page.locator(`tr[data-job="${id}"]`);
      await row.waitFor({ timeout: UI_TIMEOUT_MS });
      await page.locator(`tr[data-job="${id}"][data-state="SUCCESS"]`).waitFor({ timeout: UI_TIMEOUT_MS });
      assert.equal(await stateOf(id), 'SUCCESS');
      await screenshot(page, 'jobs');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
      await rm(scratch, { recursive: true, force: true });
    }
  });

  test("a bad CIMI filter shows the API's syntax error under the filter box", async () => {
    const { page, context, problems } = await openPage();
    try {
      await logIn(page, bed().server.address, bed().admin);
      await page.goto(`${bed().server.address}/ui/#/jobs`);
      await page.getByLabel('CIMI filter').fill("state='QUEUED' and");
      await page.getByRole('button', { name: 'Apply' }).click();
      const error = page.locator('#f-cimi-error [role="alert"]');
      await error.waitFor({ timeout: UI_TIMEOUT_MS });
      assert.match(await error.innerText(), /filter syntax error at position \d+/);
      assert.equal(await page.getByLabel('CIMI filter').getAttribute('aria-invalid'), 'true');
      await screenshot(page, 'jobs-bad-filter');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('a running job is cancelled from its page and shown CANCELED', async () => {
    const { page, context, problems } = await openPage();
    try {
      const id = await createJob('sleep', { ms: 60_000 });
      await waitFor(async () => (await stateOf(id)) === 'RUNNING', { timeoutMs: UI_TIMEOUT_MS, message: `${id} to run` });
      await logIn(page, bed().server.address, bed().admin);
      await page.goto(`${bed().server.address}/ui/#/job/${id.replace('job/', '')}`);
      await page.locator('[data-event="started"]').waitFor({ timeout: UI_TIMEOUT_MS });
      await page.getByRole('button', { name: 'Cancel', exact: true }).click();
      await page.getByRole('button', { name: 'Cancel job' }).click();
      await page.locator('.job-summary .badge', { hasText: 'CANCELED' }).waitFor({ timeout: UI_TIMEOUT_MS });
      await page.locator('[data-event="cancelled"]').waitFor({ timeout: UI_TIMEOUT_MS });
      assert.equal(await stateOf(id), 'CANCELED');
      await screenshot(page, 'job');
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });

  test('a viewer sees no action buttons, and a forged cancel gets 403 from the API', async () => {
    const { page, context, problems } = await openPage();
    try {
      const id = await createJob('sleep', { ms: 60_000 });
      await waitFor(async () => (await stateOf(id)) === 'RUNNING', { timeoutMs: UI_TIMEOUT_MS, message: `${id} to run` });
      await logIn(page, bed().server.address, bed().viewer);
      await page.goto(`${bed().server.address}/ui/#/jobs`);
      await page.locator(`tr[data-job="${id}"]`).waitFor({ timeout: UI_TIMEOUT_MS });
      assert.equal(await page.locator('table.jobs input[type="checkbox"]').count(), 0, 'a viewer gets no selection boxes');
      assert.equal(await page.getByRole('button', { name: /Delete all matching/ }).count(), 0);
      await page.goto(`${bed().server.address}/ui/#/job/${id.replace('job/', '')}`);
      await page.locator('.job-summary .badge').waitFor({ timeout: UI_TIMEOUT_MS });
      assert.equal(await page.locator('.job-summary button').count(), 0, 'a viewer gets no cancel, retry or delete');
      const forged = await page.evaluate(async (path) => {
        const response = await fetch(path, { method: 'POST', credentials: 'same-origin' });
        return { status: response.status, body: await response.json() };
      }, `/api/${id}/cancel`);
      assert.equal(forged.status, 403, JSON.stringify(forged.body));
      assert.equal(await stateOf(id), 'RUNNING');
      await page.goto(`${bed().server.address}/ui/#/queues`);
      await page.locator('section[data-queue="default"]').waitFor({ timeout: UI_TIMEOUT_MS });
      await screenshot(page, 'queues-viewer');
      await page.setViewportSize({ width: 390, height: 844 });
      await page.goto(`${bed().server.address}/ui/#/overview`);
      await page.locator('[data-executor="ui-test-executor"]').waitFor({ timeout: UI_TIMEOUT_MS });
      await screenshot(page, 'overview-phone');
      assert.deepEqual(problems, []);
      await bed().backends.jobs.delete(id);
    } finally {
      await context.close();
    }
  });
});

describe('the dashboard: distributions, dead letters, attempts, batches, bulk by filter', () => {
  test('the distributions page shows the schedule, leader, last tick with the jobs it created, and next tick', async () => {
    const { page, context, problems } = await openPage();
    const distributor = spawnDaemon(
      DISTRIBUTOR_BIN,
      [
        'ticker',
        '--zk-hosts',
        bed().zk.connectionString,
        '--queue-path',
        bed().queuePath,
        '--election-path',
        bed().electionPath,
        '--api-url',
        bed().server.address,
        '--session-timeout',
        '4',
        '--name',
        'ui-test-distributor',
        '--distributors-dir',
        TEST_DISTRIBUTIONS,
        '--schedule',
        'ticker=2s',
      ],
      { JOB_DISTRIBUTOR_API_KEY: bed().admin.key, JOB_DISTRIBUTOR_API_SECRET: bed().admin.secret },
    );
    try {
      await logIn(page, bed().server.address, bed().admin);
      await page.goto(`${bed().server.address}/ui/#/distributions`);
      const row = page.locator('tr[data-distribution="ticker"]');
      // A tick that created its three jobs (the first one may find them made: then the next does).
      await row.locator('[data-created="3"]').waitFor({ timeout: UI_TIMEOUT_MS });
      const text = await row.innerText();
      assert.match(text, /every 2 s/);
      assert.match(text, /ui-test-distributor/);
      assert.match(text, /\b(in \d|due now)/, `no next tick in: ${text}`);
      await screenshot(page, 'distributions');
      assert.deepEqual(problems, []);
    } finally {
      // A clean stop resigns the election; SIGKILL only if it does not exit.
      distributor.signal('SIGTERM');
      await Promise.race([distributor.exited, new Promise((resolve) => setTimeout(resolve, UI_TIMEOUT_MS).unref())]);
      await distributor.kill();
      await context.close();
    }
  });

  test('dead letters: counted per action on the overview, filtered in the jobs table, their attempts on the job page', async () => {
    const { page, context, problems } = await openPage();
    const action = `doomed_${randomUUID().slice(0, 8)}`;
    const at = new Date().toISOString();
    const job = {
      ...newJob(parseJobCreate({ action }), new Date()),
      state: 'FAILED' as const,
      attempt: 2,
      'return-code': 3,
      'status-message': 'gave up',
      'dead-letter': { reason: 'max attempts reached', at, attempt: 2 },
      'attempt-history': [
        { attempt: 1, started: at, ended: at, state: 'QUEUED' as const, 'return-code': 1, 'status-message': 'first try failed' },
        { attempt: 2, started: at, ended: at, state: 'FAILED' as const, 'return-code': 3, 'status-message': 'gave up' },
      ],
    };
    await bed().backends.jobs.create(job);
    try {
      await logIn(page, bed().server.address, bed().admin);
      await page.locator(`tr[data-dead-action="${action}"]`).waitFor({ timeout: UI_TIMEOUT_MS });
      await screenshot(page, 'overview-dead-letters');
      await page.locator(`tr[data-dead-action="${action}"] a`).click();
      await page.locator(`tr[data-job="${job.id}"]`).waitFor({ timeout: UI_TIMEOUT_MS });
      assert.equal(await page.getByLabel('Dead letters only').isChecked(), true);
      assert.equal(await page.locator('table.jobs tbody tr[data-job]').count(), 1, 'only the dead letter of that action');
      await page.locator(`tr[data-job="${job.id}"] a`).click();
      await page.locator('[data-dead-letter]').waitFor({ timeout: UI_TIMEOUT_MS });
      assert.match(await page.locator('[data-dead-letter]').innerText(), /max attempts reached/);
      assert.equal(await page.locator('table.attempts tbody tr').count(), 2);
      assert.match(await page.locator('tr[data-attempt="1"]').innerText(), /first try failed/);
      await screenshot(page, 'job-attempts');
      assert.deepEqual(problems, []);
    } finally {
      await bed().backends.jobs.delete(job.id);
      await context.close();
    }
  });

  test("a batch's page shows its counters and its tasks", async () => {
    const { page, context, problems } = await openPage();
    const batch = {
      ...newJob(parseJobCreate({ action: 'noop' }), new Date()),
      action: 'batch',
      state: 'RUNNING' as const,
      batch: {
        action: 'noop',
        source: 'list' as const,
        'batch-size': 100,
        'max-in-flight': 10,
        defaults: {},
        phase: 'draining' as const,
        paused: false,
        sealed: true,
        sent: 2,
        total: 2,
        'total-estimated': false,
        succeeded: 1,
        failed: 1,
        canceled: 0,
        counters: { rows: 42 },
      },
    };
    const tasks = ['SUCCESS', 'FAILED'].map((state, index) => ({
      ...newJob(parseJobCreate({ action: 'noop' }), new Date()),
      state: state as 'SUCCESS' | 'FAILED',
      'parent-job': batch.id,
      'batch-index': index,
    }));
    for (const job of [batch, ...tasks]) await bed().backends.jobs.create(job);
    try {
      await logIn(page, bed().server.address, bed().admin);
      await page.goto(`${bed().server.address}/ui/#/job/${batch.id.replace('job/', '')}`);
      await page.locator('[data-batch="succeeded"]').waitFor({ timeout: UI_TIMEOUT_MS });
      assert.equal(await page.locator('[data-batch="sent"]').innerText(), '2 of 2');
      assert.equal(await page.locator('[data-batch="failed"]').innerText(), '1');
      for (const task of tasks) await page.locator(`li[data-task="${task.id}"]`).waitFor({ timeout: UI_TIMEOUT_MS });
      await screenshot(page, 'job-batch');
      assert.deepEqual(problems, []);
    } finally {
      for (const job of [...tasks, batch]) await bed().backends.jobs.delete(job.id);
      await context.close();
    }
  });

  test('cancel all matching: a confirmation with the count, then every match CANCELED; a viewer forging it gets 403', async () => {
    const { page, context, problems } = await openPage();
    const tag = `bulk-${randomUUID().slice(0, 8)}`;
    // Delayed an hour: QUEUED without a queue entry, so nothing runs them meanwhile.
    const notBefore = new Date(Date.now() + 3_600_000).toISOString();
    const ids = [];
    for (let index = 0; index < 3; index += 1) ids.push(await createJob('sleep', { ms: 1 }, { tags: [tag], 'not-before': notBefore }));
    try {
      await logIn(page, bed().server.address, bed().viewer);
      const forged = await page.evaluate(async (filter) => {
        const response = await fetch(`/api/job/cancel?filter=${encodeURIComponent(filter)}`, {
          method: 'POST',
          credentials: 'same-origin',
          headers: { bulk: 'yes' },
        });
        return response.status;
      }, `tags='${tag}'`);
      assert.equal(forged, 403);
      await page.getByRole('button', { name: 'Log out' }).click();
      await logIn(page, bed().server.address, bed().admin);
      await page.goto(`${bed().server.address}/ui/#/job/${(ids[0] ?? '').replace('job/', '')}`);
      await page.locator(`[data-not-before="${notBefore}"]`).waitFor({ timeout: UI_TIMEOUT_MS });
      await page.goto(`${bed().server.address}/ui/#/jobs`);
      await page.getByLabel('Tag').fill(tag);
      await page.getByRole('button', { name: 'Apply' }).click();
      await page.locator('table.jobs tbody tr[data-state="QUEUED"]').nth(2).waitFor({ timeout: UI_TIMEOUT_MS });
      await page.getByRole('button', { name: 'Cancel all matching…' }).click();
      const confirm = page.getByRole('button', { name: 'Cancel 3 matching' });
      await confirm.waitFor({ timeout: UI_TIMEOUT_MS });
      await screenshot(page, 'jobs-bulk-confirm');
      await confirm.click();
      await page.locator('[role="status"]', { hasText: '3 jobs canceled' }).waitFor({ timeout: UI_TIMEOUT_MS });
      for (const id of ids) assert.equal(await stateOf(id), 'CANCELED');
      await page.locator('table.jobs tbody tr[data-state="CANCELED"]').nth(2).waitFor({ timeout: UI_TIMEOUT_MS });
      assert.deepEqual(problems, []);
    } finally {
      for (const id of ids) await bed().backends.jobs.delete(id);
      await context.close();
    }
  });
});

describe('the dashboard without --zk-hosts', () => {
  let api: TestApi | undefined;
  before(async () => {
    api = await startTestApi();
  });
  after(async () => {
    await api?.close();
  });

  test('says how to turn the ZooKeeper panels on', async () => {
    const { page, context, problems } = await openPage();
    try {
      if (api === undefined) throw new Error('no API');
      await logIn(page, api.baseUrl, api.adminKey);
      const notice = page.locator('.engine-off');
      await notice.waitFor({ timeout: UI_TIMEOUT_MS });
      assert.match(await notice.innerText(), /--zk-hosts/);
      assert.deepEqual(problems, []);
    } finally {
      await context.close();
    }
  });
});

/** Created through the API, which enqueues it (--zk-hosts) unless it is delayed. */
async function createJob(action: string, payload: unknown, fields: Record<string, unknown> = {}): Promise<string> {
  const response = await fetch(`${bed().server.address}/api/job`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bed().admin.key}:${bed().admin.secret}` },
    body: JSON.stringify({ action, payload: JSON.stringify(payload), ...fields }),
  });
  const body = (await response.json()) as { 'resource-id'?: unknown };
  assert.equal(response.status, 201, JSON.stringify(body));
  const id = body['resource-id'];
  assert.ok(typeof id === 'string');
  return id;
}
