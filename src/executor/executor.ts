/**
 * The job executor daemon: `threads` slots take job ids from the ZooKeeper queue and run them
 * (job-runner.ts), while the executor keeps its registration alive across sessions, pauses taking
 * while the job API is down, and stops gracefully. States, in order:
 *   STARTING -> RUNNING -> STOPPING (no new jobs; running ones finish, or after the shutdown timeout
 *   are stopped, put back to QUEUED and released) -> STOPPED (session closed).
 * Signals are the entry point's business: it calls stop() and dumpStacks().
 */
import { hostname } from 'node:os';
import { ApiError } from '../api/errors.js';
import { JobApiClient } from '../api/client/index.js';
import { queuePaths, type QueuePaths } from '../recipes/queue-layout.js';
import { openQueueConsumer, type QueueConsumer } from '../recipes/queue-set.js';
import { ExecutorNameInUseError, ExecutorRegistry, describeHolder } from '../recipes/executor-registry.js';
import { queueNodes, warnOpenNodes } from '../recipes/open-nodes.js';
import { ZkClient, type ClientStateChange } from '../zk/client.js';
import type { ZkSession } from '../zk/session.js';
import { delay } from '../util/delay.js';
import { toError } from '../util/errors.js';
import { isZkError } from '../zk/errors.js';
import type { Logger } from '../util/logger.js';
import { ReleaseError, Releasers, startOrRelease } from '../util/releasers.js';
import { NoActionError, discoverActions, type DiscoveredAction } from './action-discovery.js';
import { ActionLimits } from './action-limits.js';
import { ActionOffers } from './action-offers.js';
import { offeredActions, type OfferedActions } from './action-policy.js';
import { ApiGate } from './api-gate.js';
import type { JobObserver } from './job-observer.js';
import { JobRunner } from './job-runner.js';
import { JobWatch } from './job-watch.js';
import { BatchedJobWrites } from './job-writes.js';
import type { ExecutorOptions } from './options.js';
import { Slot } from './slot.js';
import { logRunningStacks } from './stack-dump.js';
import { InProcessRunner } from './in-process-runner.js';

export type ExecutorState = 'STARTING' | 'RUNNING' | 'STOPPING' | 'STOPPED';

/** How long writes may still be retried once running jobs were stopped at the end of a shutdown. */
const FINAL_WRITES_MS = 10_000;
/** A job id that cannot exist: reading it answers 404 quickly when the API is up. */
const PROBE_JOB = 'job/00000000-0000-7000-8000-000000000000';
/** How much longer than its session timeout a dead holder's registration may take to vanish. */
const NAME_EXPIRY_MARGIN_MS = 1000;
/** How often a name held by another session is tried again at start. */
const NAME_RETRY_MS = 250;

/** A ZooKeeper failure that a moment later, perhaps on a new session, may not happen again. */
function isTransientZkError(error: unknown): boolean {
  return isZkError(error) && (error.retryable || isZkError(error, 'SESSION_EXPIRED', 'SESSION_LOST'));
}

export class Executor {
  readonly options: ExecutorOptions;
  readonly actions: OfferedActions<DiscoveredAction>;
  readonly #logger: Logger;
  readonly #client: ZkClient;
  readonly #queue: QueueConsumer;
  readonly #registry: ExecutorRegistry;
  readonly #gate: ApiGate;
  readonly #watch: JobWatch;
  readonly #runner: JobRunner;
  /** Fleet-wide limits per action (action-limits.ts); read by metrics. */
  readonly limits: ActionLimits;
  readonly #slots: Slot[];
  readonly #stopTaking = new AbortController();
  readonly #skipWait = new AbortController();
  readonly #giveUp = new AbortController();
  /** Everything this executor holds, released last-opened-first when it stops (or fails to start). */
  readonly #releasers: Releasers;
  #registration: { session: ZkSession; done: Promise<void> } | undefined;
  #state: ExecutorState = 'STARTING';
  #loops: Promise<void>[] = [];
  #busySlots = 0;
  #stopped: Promise<void> | undefined;

  /** `releasers` already holds the API client and the session; what is made here joins them as it is made. */
  private constructor(
    options: ExecutorOptions,
    logger: Logger,
    actions: OfferedActions<DiscoveredAction>,
    client: ZkClient,
    api: JobApiClient,
    observer: JobObserver | undefined,
    releasers: Releasers,
  ) {
    this.options = options;
    this.#releasers = releasers;
    this.actions = actions;
    this.#logger = logger;
    this.#client = client;
    this.#queue = openQueueConsumer(client, { root: options.queuePath, names: options.queues, logger });
    this.#registry = new ExecutorRegistry(client, options.queuePath);
    // The registration goes after the queue it names (its consumer id) is closed.
    releasers.add('registration', async () => {
      if (this.#client.state === 'CONNECTED') await this.#registry.deregister(this.#client.session, this.options.name);
    });
    releasers.add('queue', () => this.#queue.close());
    this.#gate = new ApiGate({
      probe: () =>
        api.get(PROBE_JOB).then(
          () => undefined,
          (error: unknown) => {
            if (!(error instanceof ApiError && error.code === 'not-found')) throw error;
          },
        ),
      logger,
      backoff: { baseDelayMs: 500, maxDelayMs: 30_000 },
    });
    this.#watch = new JobWatch(api, options.cancelPollMs, logger, () => this.#gate.isDown);
    this.limits = new ActionLimits({
      client,
      root: options.queuePath,
      queue: this.#queue,
      own: new Map([...actions.actions].map(([name, { definition }]) => [name, definition])),
      owner: options.name,
      threads: options.threads,
      logger,
      ...(observer === undefined ? {} : { observer }),
    });
    releasers.add('action limits', () => {
      this.limits.close();
    });
    this.#runner = new JobRunner({
      api,
      writes: new BatchedJobWrites(api),
      queue: this.#queue,
      registry: this.#registry,
      gate: this.#gate,
      watch: this.#watch,
      actions: actions.actions,
      offers: new ActionOffers({
        graceMs: options.unknownActionGraceMs,
        recheckMs: options.setAsideMs,
        registered: () => this.#registry.list(),
        self: options.name,
      }),
      withheld: actions.withheld,
      name: options.name,
      maxAttempts: options.maxAttempts,
      logger,
      timings: {
        killGraceMs: options.killGraceMs,
        progressIntervalMs: options.progressIntervalMs,
        notFoundAttempts: 2,
        notFoundRetryMs: 2000,
      },
      giveUp: this.#giveUp.signal,
      limits: this.limits,
      ...(observer === undefined ? {} : { observer }),
    });
    const workerSettings = {
      api: options.api,
      progressIntervalMs: Math.min(250, options.progressIntervalMs),
      commandAllow: options.commandAllow,
      commandStage: options.commandStage,
    };
    const inProcess = options.inProcess === 'declared' ? new InProcessRunner(workerSettings) : undefined;
    this.#slots = Array.from({ length: options.threads }, (_, index) => new Slot(index, workerSettings, options.idleThreadMs, inProcess));
    releasers.add('threads', async () => {
      await Promise.all(this.#slots.map((slot) => slot.close()));
    });
    releasers.add('job watch', () => this.#watch.stop());
    releasers.add(
      'ZooKeeper listener',
      client.onStateChange((change) => {
        this.#onZooKeeper(change);
      }),
    );
    // Stopped first: no probe of the job API once stopping has begun.
    releasers.add('job API gate', () => {
      this.#gate.stop();
    });
  }

  /** Loads the actions, connects to ZooKeeper, registers, and starts taking jobs; `observer` is told what becomes of each. */
  static async start(options: ExecutorOptions, logger: Logger, observer?: JobObserver): Promise<Executor> {
    // In a discovery thread: no module's code runs in this one (action-discovery.ts).
    const actions = offeredActions(await discoverActions(options.actionsDirs, logger), options, logger);
    // An executor that can run nothing would only take entries to hand them back.
    if (actions.actions.size === 0) throw new NoActionError(options.actionsDirs, actions.failures.length);
    const releasers = new Releasers();
    const executor = await startOrRelease(
      releasers,
      async () => {
        const api = await releasers.open(
          'job API client',
          JobApiClient.create({
            baseUrl: options.api.baseUrls,
            compatibility: options.api.compatibility,
            timeoutMs: options.api.timeoutMs,
            // The executor backs off itself (api-gate.ts); the client's own retries would only multiply requests.
            retry: { retries: 1 },
            maxSockets: options.threads * 2 + 4,
            logger,
            ...(options.api.credentials === undefined ? {} : { credentials: options.api.credentials }),
            ...(options.api.ca === undefined ? {} : { ca: options.api.ca }),
          }),
          (client) => client.close(),
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
          (session) => session.close(),
        );
        const started = new Executor(options, logger, actions, client, api, observer, releasers);
        await started.#registerWithPatience();
        await started.limits.start();
        if (options.zkAuth !== undefined) await warnOpenNodes(client, queueNodes(options.queuePath), logger);
        return started;
      },
      (error) => {
        logger.warn('closing what a failed start had opened failed', { error });
      },
    );
    executor.#state = 'RUNNING';
    executor.#loops = executor.#slots.map((slot) => executor.#slotLoop(slot));
    logger.info('executor started', {
      name: options.name,
      threads: options.threads,
      queues: options.queues,
      actions: [...actions.actions.keys()],
      zkHosts: options.zkHosts,
      api: options.api.baseUrls.join(','),
    });
    return executor;
  }

  get state(): ExecutorState {
    return this.#state;
  }

  // Read by metrics and readiness (src/metrics/executor-metrics.ts).
  get zookeeper(): ZkClient {
    return this.#client;
  }

  get queuePaths(): QueuePaths {
    return queuePaths(this.options.queuePath);
  }

  /** Slots holding an entry: from taking it to consuming or releasing it. */
  get busySlots(): number {
    return this.#busySlots;
  }

  /** False while the job API is known to be unreachable (no slot takes a job then). */
  get apiReachable(): boolean {
    return !this.#gate.isDown;
  }

  /**
   * Graceful stop: take nothing new, let running jobs finish within the shutdown timeout, then stop
   * the rest and put them back in the queue. Idempotent; a second call skips what is left of the wait.
   */
  stop(): Promise<void> {
    if (this.#stopped !== undefined) {
      if (!this.#skipWait.signal.aborted && this.#state === 'STOPPING') {
        this.#logger.warn('stop asked again: not waiting for running jobs any longer');
        this.#skipWait.abort();
      }
      return this.#stopped;
    }
    this.#stopped = this.#shutdown();
    return this.#stopped;
  }

  /** Logs every running job with the stack of the code its thread runs right now. */
  dumpStacks(): Promise<void> {
    return logRunningStacks(this.#runner.running(), this.#logger);
  }

  async #slotLoop(slot: Slot): Promise<void> {
    const stop = this.#stopTaking.signal;
    const stopping = (): boolean => stop.aborted;
    while (!stopping()) {
      try {
        await this.#gate.admit(stop);
        await this.#registered(stop);
        const item = await this.#queue.take(stop);
        this.#busySlots += 1;
        await this.#runner.process(item, slot).finally(() => {
          this.#busySlots -= 1;
        });
        slot.idle();
      } catch (error) {
        if (stopping()) break;
        this.#logger.error('slot failed; trying again in a second', { slot: slot.index, error: toError(error) });
        await delay(1000, stop).catch(() => undefined);
      }
    }
  }

  /** Waits for this executor's registration on the current session, which claims must name. */
  async #registered(signal: AbortSignal): Promise<void> {
    for (;;) {
      const session = this.#client.state === 'CONNECTED' ? this.#client.session : await this.#client.waitForConnected(signal);
      if (this.#registration?.session !== session) this.#register(session);
      try {
        await this.#registration?.done;
        return;
      } catch (error) {
        this.#logger.warn('executor registration failed; trying again', { error: toError(error) });
        if (this.#registration?.session === session) this.#registration = undefined;
        await delay(1000, signal);
      }
    }
  }

  #register(session: ZkSession): void {
    const done = this.#registry.register(session, this.options.name, {
      host: hostname(),
      pid: process.pid,
      threads: this.options.threads,
      started: new Date().toISOString(),
      consumerId: this.#queue.consumerId,
      // What other executors read to leave us the jobs they cannot run (action-offers.ts).
      actions: [...this.actions.actions.keys()],
      queues: [...this.options.queues],
    });
    done.catch(() => undefined);
    this.#registration = { session, done };
  }

  /**
   * At start, our name may still be held by a registration whose session is dead but not yet expired
   * (this executor restarted after a crash): such a node vanishes within one session timeout (plus
   * the server's expiry granularity, measured under 1 s: docs/zookeeper.md). Past that the holder is
   * a live executor given the same name, and waiting longer would only hide the mistake.
   * ZooKeeper may also blink while we register (a leader restarting): such errors are waited out, on
   * whatever session is current, for as long as a first connection may take (--connect-timeout).
   */
  async #registerWithPatience(): Promise<void> {
    const deadline = Date.now() + this.#client.session.negotiatedTimeoutMs + NAME_EXPIRY_MARGIN_MS;
    const transientDeadline = Date.now() + this.options.connectTimeoutMs;
    let told = false;
    for (;;) {
      const session = await this.#client.waitForConnected(AbortSignal.timeout(Math.max(1, transientDeadline - Date.now())));
      this.#register(session);
      try {
        await this.#registration?.done;
        return;
      } catch (error) {
        if (isTransientZkError(error) && Date.now() < transientDeadline) {
          this.#logger.warn('executor registration interrupted by ZooKeeper; trying again', { error: toError(error) });
          await delay(NAME_RETRY_MS);
          continue;
        }
        if (!(error instanceof ExecutorNameInUseError) || Date.now() > deadline) throw error;
        if (!told) {
          this.#logger.warn('executor name held by another session; waiting up to one session timeout for it to expire', {
            name: this.options.name,
            holder: describeHolder(error.holder),
            waitMs: Math.max(0, deadline - Date.now()),
          });
          told = true;
        }
        await delay(Math.min(NAME_RETRY_MS, Math.max(0, deadline - Date.now()) + 1));
      }
    }
  }

  #onZooKeeper(change: ClientStateChange): void {
    if (change.state === 'SUSPENDED') this.#logger.warn('ZooKeeper connection suspended: taking no new jobs until it is back');
    if (change.state === 'LOST') this.#logger.error('ZooKeeper session lost: running jobs are stopped and left to other executors');
    if (change.state === 'CONNECTED' && !change.reconnected && this.#state === 'RUNNING') this.#register(change.session);
  }

  async #shutdown(): Promise<void> {
    this.#state = 'STOPPING';
    const running = this.#runner.running().length;
    this.#logger.info('stopping: taking no new jobs', { running, shutdownTimeoutMs: this.options.shutdownTimeoutMs });
    this.#stopTaking.abort();
    const drained = Promise.all(this.#loops).then(() => true);
    const waitOver = AbortSignal.any([AbortSignal.timeout(this.options.shutdownTimeoutMs), this.#skipWait.signal]);
    const finished = await Promise.race([
      drained,
      new Promise<false>((resolve) => {
        waitOver.addEventListener(
          'abort',
          () => {
            resolve(false);
          },
          { once: true },
        );
      }),
    ]);
    if (!finished) {
      const left = this.#runner.running();
      this.#logger.warn('running jobs did not finish in time: stopping them and putting them back in the queue', {
        jobs: left.map((job) => job.jobId),
      });
      this.#runner.stopAll('shutdown', 'the executor is stopping');
      const giveUp = setTimeout(() => {
        this.#giveUp.abort(new Error('the executor stopped before this write succeeded'));
      }, this.options.killGraceMs + FINAL_WRITES_MS);
      await drained;
      clearTimeout(giveUp);
    }
    await this.#close();
    this.#state = 'STOPPED';
    this.#logger.info('executor stopped');
  }

  /** Everything held, last-opened-first, every one even when one fails; a failure is logged, not thrown. */
  async #close(): Promise<void> {
    try {
      await this.#releasers.releaseAll();
    } catch (error) {
      const failures = error instanceof ReleaseError ? error.errors : [error];
      for (const failure of failures) this.#logger.warn('closing failed', { error: toError(failure) });
    }
  }
}
