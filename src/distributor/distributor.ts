/**
 * The `job-distributor` daemon: loads the drop-in distributions, and for each one it is asked to run
 * stands in that distribution's election and, while leading, runs its schedule (distribution-runner.ts).
 * One ZooKeeper session and one API client serve all of them.
 *
 *   STARTING -> RUNNING -> STOPPING -> STOPPED
 */
import { JobApiClient } from '../api/client/job-api-client.js';
import { LeaderElection } from '../recipes/election.js';
import { distributionStatusPath, writeDistributionStatus } from '../recipes/distribution-status.js';
import { ExecutorRegistry } from '../recipes/executor-registry.js';
import { QueueRoutes } from '../recipes/queue-routes.js';
import { listQueueNames } from '../recipes/queue-layout.js';
import { AllQueuesInventory } from '../recipes/queue-inventory.js';
import { queueNodes, warnOpenNodes } from '../recipes/open-nodes.js';
import { ZkClient } from '../zk/client.js';
import { JobEnqueuer } from '../enqueue/job-enqueuer.js';
import { JobSubmitter } from '../enqueue/job-submitter.js';
import type { Logger } from '../util/logger.js';
import { messageOf } from '../util/errors.js';
import { ReleaseError, Releasers, startOrRelease } from '../util/releasers.js';
import { loadDistributions, type LoadedDistributions } from './distribution-loader.js';
import type { DistributionDefinition } from '../sdk/distribution.js';
import { DistributionRunner, type RunnerEvents, type RunnerStatus } from './distribution-runner.js';
import type { DistributorOptions } from './options.js';
import { compileSchedule } from './schedule.js';
import type { TickServices } from './tick.js';

export type DistributorState = 'STARTING' | 'RUNNING' | 'STOPPING' | 'STOPPED';

export class DistributorStartError extends Error {
  override readonly name = 'DistributorStartError';
  readonly code = 'distributor-start';
}

/** The distributions this process runs: the named ones, plus with `all` every one enabled by default. */
export function selectDistributions(
  loaded: LoadedDistributions,
  options: Pick<DistributorOptions, 'names' | 'all' | 'schedules'>,
): DistributionDefinition[] {
  const available = loaded.definitions;
  const missing = options.names.filter((name) => !available.has(name));
  if (missing.length > 0) {
    const broken = loaded.failures.map((failure) => `${failure.file}: ${failure.error}`);
    throw new DistributorStartError(
      `unknown distribution${missing.length > 1 ? 's' : ''} ${missing.join(', ')}; available: ${[...available.keys()].join(', ') || 'none'}` +
        (broken.length > 0 ? `; modules that failed to load: ${broken.join('; ')}` : ''),
    );
  }
  const selected = new Map<string, DistributionDefinition>();
  if (options.all) for (const [name, { definition }] of available) if (definition.enabledByDefault) selected.set(name, definition);
  for (const name of options.names) {
    const loadedOne = available.get(name);
    if (loadedOne !== undefined) selected.set(name, loadedOne.definition);
  }
  if (selected.size === 0) throw new DistributorStartError('no distribution to run: --all found none enabled by default');
  const unused = [...options.schedules.keys()].filter((name) => !selected.has(name));
  if (unused.length > 0) throw new DistributorStartError(`--schedule names ${unused.join(', ')}, which this process does not run`);
  return [...selected.values()];
}

export class Distributor {
  readonly runners: readonly DistributionRunner[];
  readonly #logger: Logger;
  readonly #client: ZkClient;
  /** What start opened (API client, session, queue), closed last-opened-first once the runners are done. */
  readonly #releasers: Releasers;
  readonly #stop = new AbortController();
  #state: DistributorState = 'STARTING';
  #running: Promise<void> = Promise.resolve();
  #stopped: Promise<void> | undefined;

  private constructor(runners: DistributionRunner[], logger: Logger, client: ZkClient, releasers: Releasers) {
    this.runners = runners;
    this.#logger = logger;
    this.#client = client;
    this.#releasers = releasers;
  }

  static async start(options: DistributorOptions, logger: Logger, events: RunnerEvents = {}): Promise<Distributor> {
    const loaded = await loadDistributions(options.distributorsDirs, logger);
    const definitions = selectDistributions(loaded, options);
    // A start that fails half-way closes what it had opened, and fails with its own error.
    return startOrRelease(
      new Releasers(),
      async (releasers) => {
        const api = await releasers.open(
          'API client',
          JobApiClient.create({
            baseUrl: options.api.baseUrls,
            compatibility: options.api.compatibility,
            timeoutMs: options.api.timeoutMs,
            logger,
            ...(options.api.credentials === undefined ? {} : { credentials: options.api.credentials }),
            ...(options.api.ca === undefined ? {} : { ca: options.api.ca }),
          }),
          (opened) => opened.close(),
        );
        const client = await releasers.open(
          'ZooKeeper session',
          ZkClient.connect({
            connectionString: options.zkHosts,
            ...(options.zkAuth === undefined ? {} : { auth: options.zkAuth }),
            sessionTimeoutMs: options.sessionTimeoutMs,
            connectTimeoutMs: options.connectTimeoutMs,
            logger,
          }),
          (opened) => opened.close(),
        );
        // Each job into the queue it names; the reconciler's inventory covers every queue.
        const queue = new QueueRoutes(client, options.queuePath, logger);
        releasers.add('queue', () => queue.close());
        const registry = new ExecutorRegistry(client, options.queuePath);
        const inventory = new AllQueuesInventory(client, options.queuePath);
        const enqueuer = new JobEnqueuer({ queue, logger, publish: (published) => api.publishEvents(published) });
        let warnedNoKeys = false;
        const services: TickServices = {
          api,
          queue: {
            jobIds: () => inventory.jobIds(),
            isExecutorAlive: (owner) => registry.isAlive(owner),
            names: () => listQueueNames(client, options.queuePath),
            room: (name) => queue.window.room(name),
          },
          unpark: (name, limit) => api.unparkFirst(name, limit),
          batchesDirs: options.batchesDirs,
          enqueuer,
          submitter: new JobSubmitter(api, enqueuer, logger, (name) => queue.window.room(name)),
          useIdempotencyKeys: async () => {
            if ((await api.detectCompatibility()) !== 'nuvla') return true;
            if (!warnedNoKeys)
              logger.warn("Nuvla's job API has no idempotency keys: only the election keeps a tick from creating its jobs twice");
            warnedNoKeys = true;
            return false;
          },
        };
        const published: RunnerEvents = {
          ...events,
          onLeaderStatus: (status) => {
            publishStatus(client, options.electionPath, options.name, status, logger);
            events.onLeaderStatus?.(status);
          },
        };
        const runners = definitions.map((definition) => {
          const schedule = compileSchedule(options.schedules.get(definition.name) ?? definition.schedule);
          const election = new LeaderElection(client, {
            path: `${options.electionPath}/${definition.name}`,
            identifier: options.name,
            logger,
          });
          return new DistributionRunner(definition, schedule, election, services, logger, published);
        });
        if (options.zkAuth !== undefined) {
          const elections = [options.electionPath, ...definitions.map((definition) => `${options.electionPath}/${definition.name}`)];
          await warnOpenNodes(client, [...queueNodes(options.queuePath), ...elections], logger);
        }
        const distributor = new Distributor(runners, logger, client, releasers);
        distributor.#state = 'RUNNING';
        distributor.#running = Promise.all(runners.map((runner) => distributor.#runGuarded(runner))).then(() => undefined);
        logger.info('distributor started', {
          name: options.name,
          distributions: runners.map((runner) => `${runner.definition.name} (${runner.schedule.description})`),
          zkHosts: options.zkHosts,
          api: options.api.baseUrls.join(','),
        });
        return distributor;
      },
      (error) => {
        logger.error('distributor start failed, and so did closing what it had opened', { error });
      },
    );
  }

  get state(): DistributorState {
    return this.#state;
  }

  /** The session every distribution's election runs on (read by metrics and readiness). */
  get zookeeper(): ZkClient {
    return this.#client;
  }

  /** Logs each distribution's state: leading or standing by, its schedule, next and last tick. */
  logStatus(): void {
    for (const runner of this.runners) this.#logger.info('distribution status', { ...runner.status() });
  }

  /** Stops every schedule at once (a tick in progress is abandoned), resigns, closes. Idempotent. */
  stop(): Promise<void> {
    this.#stopped ??= this.#shutdown();
    return this.#stopped;
  }

  async #runGuarded(runner: DistributionRunner): Promise<void> {
    try {
      await runner.run(this.#stop.signal);
    } catch (error) {
      // A runner only ends by itself on a bug; the others go on, and the operator is told loudly.
      this.#logger.error('distribution stopped unexpectedly', { distribution: runner.definition.name, error });
    }
  }

  async #shutdown(): Promise<void> {
    this.#state = 'STOPPING';
    this.#logger.info('distributor stopping');
    this.#stop.abort(new Error('distributor stopping'));
    // The runners resign first (they need the session), then the queue, the session, the API client.
    await this.#running;
    try {
      await this.#releasers.releaseAll();
    } catch (error) {
      const problems = error instanceof ReleaseError ? error.errors.map(messageOf) : [messageOf(error)];
      throw new Error(`distributor stopped with problems: ${problems.join('; ')}`, { cause: error });
    } finally {
      this.#state = 'STOPPED';
    }
    this.#logger.info('distributor stopped');
  }
}

/** The leader's status in its election's node, for operators; best effort (distribution-status.ts). */
function publishStatus(client: ZkClient, electionPath: string, name: string, status: RunnerStatus, logger: Logger): void {
  const path = distributionStatusPath(electionPath, status.distribution);
  writeDistributionStatus(client, path, {
    leader: name,
    schedule: status.schedule,
    at: new Date().toISOString(),
    nextTick: status.nextTick ?? null,
    lastTick: status.lastTick ?? null,
  }).catch((error: unknown) => {
    logger.debug('distribution status not published', { distribution: status.distribution, path, error });
  });
}
