/**
 * The queue's window (docs/contracts.md §2): producers enqueue while a queue has room and park the
 * rest in the job API, and the `queue_feeder` distribution enqueues parked jobs as room comes back,
 * best priority first. Real ZooKeeper, the real job API, `job-distributor` and `job-executor` as
 * child processes.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import type { NewJob } from '../src/api/client/inputs.js';
import { JobEnqueuer } from '../src/enqueue/job-enqueuer.js';
import { JobSubmitter } from '../src/enqueue/job-submitter.js';
import { waitFor } from '../src/harness/wait-for.js';
import { queuePaths } from '../src/recipes/queue-layout.js';
import { QueueRoutes } from '../src/recipes/queue-routes.js';
import { windowPath } from '../src/recipes/queue-window.js';
import { silentLogger } from '../src/util/logger.js';
import { useExecutorTestbed, type ExecutorTestbed } from './fixtures/executor-testbed.js';
import { useJobctl } from './fixtures/jobctl-stack.js';

const BUNDLED_DISTRIBUTORS = fileURLToPath(new URL('../distributors', import.meta.url));
const testbed = useExecutorTestbed();
const jobctl = useJobctl(testbed);
/** The testbed's job API is the file's: each test starts from no job at all, its counts its own. */
const EVERY_JOB = "created>'2000-01-01T00:00:00Z'";

/** Samples the queue's entry count every few milliseconds until stopped; the largest seen. */
function sampleEntries(bed: ExecutorTestbed): { stop: () => Promise<number> } {
  let largest = 0;
  const stopping = new AbortController();
  const entries = queuePaths(bed.queuePath).entries;
  const loop = (async () => {
    while (!stopping.signal.aborted) {
      const stat = await bed.zkClient.exists(entries);
      largest = Math.max(largest, stat?.numChildren ?? 0);
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  })();
  return {
    stop: async () => {
      stopping.abort();
      await loop;
      return largest;
    },
  };
}

async function setWindow(bed: ExecutorTestbed, size: number): Promise<void> {
  await bed.zkClient.mkdirp(bed.queuePath);
  await bed.zkClient.create(windowPath(bed.queuePath), Buffer.from(String(size)));
}

function submitterFor(bed: ExecutorTestbed): { submitter: JobSubmitter; routes: QueueRoutes } {
  const routes = new QueueRoutes(bed.zkClient, bed.queuePath);
  const enqueuer = new JobEnqueuer({ queue: routes, logger: silentLogger });
  return { routes, submitter: new JobSubmitter(bed.client, enqueuer, silentLogger, (name) => routes.window.room(name)) };
}

function noops(count: number, priority?: number): NewJob[] {
  return Array.from({ length: count }, () => ({ action: 'noop', ...(priority === undefined ? {} : { priority }) }));
}

/**
 * Distributors running the feeder and, as every deployment does, the reconciler: jobs a killed feeder
 * unparked but did not enqueue are the reconciler's (every 2 s here, after its 5 s grace).
 */
function spawnFeeders(bed: ExecutorTestbed, count: number): ReturnType<ExecutorTestbed['spawnDistributor']>[] {
  return Array.from({ length: count }, () =>
    bed.spawnDistributor({
      names: ['queue_feeder', 'queue_reconciler'],
      distributorsDirs: [BUNDLED_DISTRIBUTORS],
      sessionTimeoutSeconds: 2,
      extraArgs: ['--schedule', 'queue_reconciler=2s'],
    }),
  );
}

describe('the queue window', () => {
  test('jobctl queue window shows the default, sets a size producers then use, and refuses a bad one by name', async () => {
    const bed = testbed();
    const shown = await jobctl.run(['queue', 'window']);
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(shown.stdout, `window: 20000 entries per queue (${windowPath(bed.queuePath)})\n`);
    const set = await jobctl.run(['queue', 'window', '3', '--json']);
    assert.equal(set.code, 0, set.stderr);
    assert.deepEqual(JSON.parse(set.stdout), { window: 3, path: windowPath(bed.queuePath) });
    const report = await jobctl.run(['queue']);
    assert.match(report.stdout, /^window: 3 entries per queue; producers park the jobs beyond it in the job API$/m);
    const { submitter, routes } = submitterFor(bed);
    try {
      const submitted = await submitter.submit(noops(5));
      assert.deepEqual(
        submitted.map((job) => job.parked === true),
        [false, false, false, true, true],
      );
    } finally {
      await routes.close();
      await bed.client.deleteMatching(EVERY_JOB);
    }
    for (const bad of ['0', 'ten', '1000001']) {
      const refused = await jobctl.run(['queue', 'window', bad]);
      assert.equal(refused.code, 2, refused.stderr);
      assert.match(refused.stderr, /^jobctl: jobctl queue window: /);
    }
  });

  test('the feed unparks best priority first, then oldest, and only what it returns', async () => {
    const bed = testbed();
    await bed.client.deleteMatching(EVERY_JOB);
    const older = await bed.client.create({ action: 'noop', priority: 500, parked: true });
    const urgent = await bed.client.create({ action: 'noop', priority: 0, parked: true });
    const newer = await bed.client.create({ action: 'noop', priority: 500, parked: true });
    const other = await bed.client.create({ action: 'noop', priority: 0, parked: true, queue: 'other' });
    const fed = await bed.client.unparkFirst('default', 2);
    assert.deepEqual(
      fed.map((job) => job.id),
      [urgent.id, older.id],
    );
    assert.equal((await bed.client.get(urgent.id)).job.parked, undefined, 'unparked');
    assert.equal((await bed.client.get(newer.id)).job.parked, true, 'still parked');
    assert.deepEqual(
      (await bed.client.unparkFirst('other', 10)).map((job) => job.id),
      [other.id],
    );
    await bed.client.deleteMatching(EVERY_JOB);
  });

  test('is never exceeded while 100,000 jobs are created; a priority 0 job behind them starts within 2 s', async (t) => {
    const bed = testbed();
    await bed.client.deleteMatching(EVERY_JOB);
    const window = 2000;
    await setWindow(bed, window);
    const { submitter, routes } = submitterFor(bed);
    const sampler = sampleEntries(bed);
    try {
      const submitted = await submitter.submit(noops(100_000));
      assert.equal(submitted.length, 100_000);
      assert.equal(submitted.filter((job) => job.enqueued).length, window, 'only the window was enqueued');
    } finally {
      const largest = await sampler.stop();
      assert.ok(largest <= window, `the queue held ${String(largest)} entries; its window is ${String(window)}`);
    }
    const names = await bed.zkClient.getChildren(queuePaths(bed.queuePath).entries);
    const listingBytes = names.reduce((sum, name) => sum + Buffer.byteLength(name) + 4, 0);
    t.diagnostic(`listing of ${String(names.length)} entries: ${String(listingBytes)} bytes`);
    assert.ok(listingBytes < 1_000_000, 'the listing stays under the 1 MB Java clients accept');
    assert.equal(await bed.client.count("state='QUEUED' and waiting='room'"), 100_000 - window);

    const draining = sampleEntries(bed);
    try {
      bed.spawnExecutor({ threads: 8 });
      spawnFeeders(bed, 1);
      await waitFor(async () => (await bed.client.count("state='SUCCESS'")) >= window + 500 || undefined, {
        timeoutMs: 120_000,
        intervalMs: 200,
        message: 'the feeder to top the queue up past its first window',
      });
      // 97,000 jobs still wait: the urgent one finds the queue full (parked) or the little room the
      // executors just made (enqueued); either way it must not wait for the backlog.
      const [urgent] = await submitter.submit(noops(1, 0));
      assert.ok(urgent !== undefined);
      const created = Date.now();
      const started = await waitFor(
        async () => {
          const { job } = await bed.client.get(urgent.id);
          return job.started === undefined ? undefined : Date.parse(job.started);
        },
        { timeoutMs: 30_000, intervalMs: 20, message: 'the priority 0 job to start' },
      );
      const how = urgent.parked === true ? 'parked' : 'enqueued';
      t.diagnostic(`the priority 0 job was ${how} and started ${String(started - created)} ms after its creation`);
      assert.ok(started - created < 2000, `the priority 0 job (${how}) started ${String(started - created)} ms after its creation`);
    } finally {
      const largest = await draining.stop();
      t.diagnostic(`largest queue while draining: ${String(largest)} entries`);
      // The urgent job's producer and the feeder may both take the last room: one entry over at most.
      assert.ok(largest <= window + 1, `the queue held ${String(largest)} entries while draining; its window is ${String(window)}`);
      await routes.close();
      await bed.client.deleteMatching(EVERY_JOB);
    }
  });

  test('delayed jobs that come due when their queue is full are parked, not enqueued, and fed as room comes back', async () => {
    const bed = testbed();
    await bed.client.deleteMatching(EVERY_JOB);
    await setWindow(bed, 5);
    const due = new Date(Date.now() + 2000).toISOString();
    const created = await bed.client.createMany(Array.from({ length: 20 }, () => ({ action: 'noop', 'not-before': due })));
    assert.equal(created.filter((job) => job.notBefore !== undefined).length, 20);
    bed.spawnDistributor({
      names: ['job_scheduler', 'queue_feeder'],
      distributorsDirs: [BUNDLED_DISTRIBUTORS],
      sessionTimeoutSeconds: 2,
    });
    await waitFor(async () => (await bed.client.count("state='QUEUED' and waiting='time'")) === 0 || undefined, {
      timeoutMs: 30_000,
      intervalMs: 100,
      message: 'every delayed job to come due',
    });
    const entries = async (): Promise<number> => (await bed.zkClient.exists(queuePaths(bed.queuePath).entries))?.numChildren ?? 0;
    assert.equal(await entries(), 5, 'the window was filled and no more');
    assert.equal(await bed.client.count("state='QUEUED' and waiting='room'"), 15, 'the rest wait parked');
    // An executor drains the queue: the feeder tops it up until every job ran.
    bed.spawnExecutor({ threads: 4 });
    await waitFor(async () => (await bed.client.count("state='SUCCESS'")) === 20 || undefined, {
      timeoutMs: 60_000,
      intervalMs: 100,
      message: 'every job to run',
    });
    await bed.client.deleteMatching(EVERY_JOB);
  });

  test("kill -9 of the feeder's leader mid-feed: the standby goes on, and every job runs once", async () => {
    const bed = testbed();
    await bed.client.deleteMatching(EVERY_JOB);
    await setWindow(bed, 200);
    const { submitter, routes } = submitterFor(bed);
    try {
      const submitted = await submitter.submit(noops(3000));
      assert.equal(submitted.filter((job) => job.parked === true).length, 2800);
      bed.spawnExecutor({ threads: 8 });
      const feeders = spawnFeeders(bed, 2);
      await waitFor(async () => (await bed.client.count("state='SUCCESS'")) >= 800 || undefined, {
        timeoutMs: 120_000,
        intervalMs: 100,
        message: 'a quarter of the jobs to succeed',
      });
      const leader = await waitFor(
        () => feeders.find((feeder) => feeder.lines.some((line) => line.includes('distribution leading') && line.includes('queue_feeder'))),
        { timeoutMs: 10_000, intervalMs: 50, message: 'the feeder that leads' },
      );
      leader.signal('SIGKILL');
      await leader.exited;
      await waitFor(async () => (await bed.client.count("state='SUCCESS'")) === 3000 || undefined, {
        timeoutMs: 90_000,
        intervalMs: 200,
        message: 'every job to succeed',
      }).catch(async (error: unknown) => {
        const counts = await bed.client.countByState();
        const parked = await bed.client.count("state='QUEUED' and waiting='room'");
        const entries = (await bed.zkClient.exists(queuePaths(bed.queuePath).entries))?.numChildren;
        throw new Error(`${String(error)}: ${JSON.stringify({ counts, parked, entries })}`);
      });
      const page = await bed.client.search({ filter: "state='SUCCESS' and attempt!=1", last: 10 });
      assert.equal(page.count, 0, `jobs run more than once: ${page.jobs.map((job) => job.id).join(', ')}`);
    } finally {
      await routes.close();
      await bed.client.deleteMatching(EVERY_JOB);
    }
  });
});
