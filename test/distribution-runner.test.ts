/**
 * One distribution's runner in process, on a real ZooKeeper and the real job API: a lost leadership
 * stops the tick in progress at once, and a tick that fails while the API is down is retried until
 * it lands, creating its jobs once.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { after, before, describe, it } from 'node:test';
import { JobApiClient } from '../src/api/client/index.js';
import { defineDistribution, type DistributionDefinition } from '../src/sdk/distribution.js';
import { DistributionRunner, type RunnerState } from '../src/distributor/distribution-runner.js';
import { compileSchedule } from '../src/distributor/schedule.js';
import type { TickOutcome, TickServices } from '../src/distributor/tick.js';
import { JobEnqueuer } from '../src/enqueue/job-enqueuer.js';
import { JobSubmitter } from '../src/enqueue/job-submitter.js';
import { waitFor } from '../src/harness/wait-for.js';
import { startZooKeeper, type ZooKeeperServer } from '../src/harness/zookeeper-server.js';
import { LeaderElection } from '../src/recipes/election.js';
import { ExecutorRegistry } from '../src/recipes/executor-registry.js';
import { LockingQueue } from '../src/recipes/locking-queue.js';
import { QueueRoutes } from '../src/recipes/queue-routes.js';
import { QueueInventory } from '../src/recipes/queue-inventory.js';
import { silentLogger, type Logger } from '../src/util/logger.js';
import { ZkClient } from '../src/zk/client.js';
import { startTestApi, type TestApi } from './fixtures/api-server.js';
import { removeTree } from './fixtures/zk-cleanup.js';

let zk: ZooKeeperServer;
let api: TestApi;
let client: ZkClient;
let jobs: JobApiClient;
const root = `/runner-test-${randomUUID()}`;

before(async () => {
  zk = await startZooKeeper();
  api = await startTestApi();
  client = await ZkClient.connect({ connectionString: zk.connectionString, sessionTimeoutMs: 4000 });
  // Few retries inside the client: the runner's own retry is what is under test.
  jobs = await JobApiClient.create({
    baseUrl: api.baseUrl,
    credentials: api.adminKey,
    compatibility: 'engine',
    retry: { retries: 0 },
    timeoutMs: 2000,
  });
});

after(async () => {
  await removeTree(client, root);
  await client.close();
  await jobs.close();
  await api.close();
  await zk.stop();
});

interface Harness {
  readonly runner: DistributionRunner;
  readonly states: RunnerState[];
  readonly ticks: { tick: Date; outcome: TickOutcome }[];
  readonly queue: LockingQueue;
  readonly electionPath: string;
  /** Messages the runner logged at warn or error level. */
  readonly warnings: string[];
  readonly stop: () => Promise<void>;
}

function runnerFor(definition: DistributionDefinition): Harness {
  const queue = new LockingQueue(client, { path: `${root}/${definition.name}/queue` });
  const registry = new ExecutorRegistry(client, queue.paths.root);
  const inventory = new QueueInventory(client, queue.paths);
  // No event publisher: these tests follow the queue, not the event stream.
  const routes = new QueueRoutes(client, queue.paths.root);
  const enqueuer = new JobEnqueuer({ queue: routes, logger: silentLogger });
  const services: TickServices = {
    api: jobs,
    batchesDirs: [],
    queue: {
      jobIds: () => inventory.jobIds(),
      isExecutorAlive: (owner) => registry.isAlive(owner),
      names: () => Promise.resolve(['default']),
      room: (name) => routes.window.room(name),
    },
    unpark: (name, limit) => jobs.unparkFirst(name, limit),
    enqueuer,
    submitter: new JobSubmitter(jobs, enqueuer, silentLogger),
    useIdempotencyKeys: () => Promise.resolve(true),
  };
  const electionPath = `${root}/${definition.name}/election`;
  const warnings: string[] = [];
  const logger: Logger = {
    ...silentLogger,
    warn: (message) => warnings.push(message),
    error: (message) => warnings.push(message),
  };
  const states: RunnerState[] = [];
  const ticks: { tick: Date; outcome: TickOutcome }[] = [];
  const runner = new DistributionRunner(
    definition,
    compileSchedule(definition.schedule),
    new LeaderElection(client, { path: electionPath }),
    services,
    logger,
    {
      onState: (_name, state) => states.push(state),
      onTick: (_name, tick, outcome) => ticks.push({ tick, outcome }),
    },
  );
  const controller = new AbortController();
  const running = runner.run(controller.signal);
  return {
    runner,
    states,
    ticks,
    queue,
    electionPath,
    warnings,
    stop: async () => {
      controller.abort();
      await running;
      await queue.close();
    },
  };
}

describe('distribution runner', () => {
  it('stops the tick in progress the moment leadership is lost, then stands again and leads', async () => {
    const signals: AbortSignal[] = [];
    const definition = defineDistribution({
      name: 'long_task',
      schedule: { everySeconds: 3600 },
      catchUpSeconds: 3600,
      run: ({ signal }) => {
        signals.push(signal);
        return new Promise<void>((resolve) => {
          signal.addEventListener(
            'abort',
            () => {
              resolve();
            },
            { once: true },
          );
        });
      },
    });
    const harness = runnerFor(definition);
    try {
      await waitFor(() => signals.length === 1, { timeoutMs: 10_000, message: 'the made-up tick to start' });
      const [node] = await client.getChildren(harness.electionPath);
      assert.ok(node !== undefined);
      const lostAt = Date.now();
      await client.remove(`${harness.electionPath}/${node}`);
      await waitFor(() => signals[0]?.aborted, { timeoutMs: 2000, message: 'the tick to be told' });
      assert.ok(Date.now() - lostAt < 1000, `tick stopped ${Date.now() - lostAt} ms after the node went`);
      // Back in the election, and leading again (alone): the made-up tick runs again.
      await waitFor(() => signals.length === 2, { timeoutMs: 10_000, message: 'leadership regained' });
      assert.deepEqual(harness.states, ['CAMPAIGNING', 'LEADING', 'CAMPAIGNING', 'LEADING']);
    } finally {
      await harness.stop();
    }
    assert.equal(harness.runner.state, 'STOPPED');
    assert.deepEqual(await client.getChildren(harness.electionPath), [], 'resigned on stop');
  });

  it('retries a tick while the API is down and creates its jobs once it is back', async () => {
    const definition = defineDistribution({
      name: 'retried',
      schedule: { everySeconds: 3600 },
      catchUpSeconds: 3600,
      jobs: () => [{ action: 'noop', target: 'test/retried' }],
    });
    await api.stop();
    const harness = runnerFor(definition);
    try {
      // Down for two attempts (connection refused), then it comes back.
      await waitFor(() => harness.warnings.filter((message) => message === 'tick failed; retrying').length >= 2, {
        timeoutMs: 15_000,
        message: 'two failed attempts',
      });
      assert.equal(harness.ticks.length, 0);
      await api.restart();
      await waitFor(() => harness.ticks[0], { timeoutMs: 20_000, message: 'the tick to land after the API came back' });
      assert.equal(harness.ticks[0]?.outcome.created, 1);
      const found = await jobs.search({ filter: "target-resource/href='test/retried'" });
      assert.equal(found.count, 1);
      assert.deepEqual([...(await new QueueInventory(client, harness.queue.paths).jobIds())], [found.jobs[0]?.id]);
    } finally {
      await harness.stop();
    }
  });
});
