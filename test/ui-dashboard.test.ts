/**
 * The dashboard in a real browser: Debian's chromium driven by playwright-core, against the real job
 * API (in-process, SQLite, with --zk-hosts), a private ZooKeeper and a `job-executor` child. A job
 * created with `jobctl` appears and reaches SUCCESS without a reload; a bad CIMI filter shows the
 * API's error in place; a running job is cancelled from its page; a viewer sees no action buttons and
 * gets 403 when it forges the request; without --zk-hosts the engine panels say how to turn them on.
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
import { TEST_ACTIONS } from './fixtures/executor-testbed.js';
import { killJobctlProcesses, runJobctl } from './fixtures/jobctl-process.js';
import { removeTree } from './fixtures/zk-cleanup.js';

const CHROMIUM = '/usr/bin/chromium';
const EXECUTOR_BIN = fileURLToPath(new URL('../src/bin/job-executor.ts', import.meta.url));
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

/** Created through the API, which enqueues it (--zk-hosts). */
async function createJob(action: string, payload: unknown): Promise<string> {
  const response = await fetch(`${bed().server.address}/api/job`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${bed().admin.key}:${bed().admin.secret}` },
    body: JSON.stringify({ action, payload: JSON.stringify(payload) }),
  });
  const body = (await response.json()) as { 'resource-id'?: unknown };
  assert.equal(response.status, 201, JSON.stringify(body));
  const id = body['resource-id'];
  assert.ok(typeof id === 'string');
  return id;
}
