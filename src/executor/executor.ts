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
import { LockingQueue } from '../recipes/locking-queue.js';
import type { QueuePaths } from '../recipes/queue-layout.js';
import { ExecutorNameInUseError, ExecutorRegistry } from '../recipes/executor-registry.js';
import { ZkClient, type ClientStateChange } from '../zk/client.js';
import type { ZkSession } from '../zk/session.js';
import { delay } from '../util/delay.js';
import { toError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { ReleaseError, Releasers, startOrRelease } from '../util/releasers.js';
import { loadActions } from './action-loader.js';
import { offeredActions, type OfferedActions } from './action-policy.js';
import { ApiGate } from './api-gate.js';
import type { JobObserver } from './job-observer.js';
import { JobRunner } from './job-runner.js';
import { JobWatch } from './job-watch.js';
import { BatchedJobWrites } from './job-writes.js';
import type { ExecutorOptions } from './options.js';
import { Slot } from './slot.js';
import { captureThreadStacks, formatStack } from './stack-dump.js';

export type ExecutorState = 'STARTING' | 'RUNNING' | 'STOPPING' | 'STOPPED';

/** How long writes may still be retried once running jobs were stopped at the end of a shutdown. */
const FINAL_WRITES_MS = 10_000;
/** A job id that cannot exist: reading it answers 404 quickly when the API is up. */
const PROBE_JOB = 'job/00000000-0000-7000-8000-000000000000';

export class Executor {
  readonly options: ExecutorOptions;
  readonly actions: OfferedActions;
  readonly #logger: Logger;
  readonly #client: ZkClient;
  readonly #queue: LockingQueue;
  readonly #registry: ExecutorRegistry;
  readonly #gate: ApiGate;
  readonly #watch: JobWatch;
  readonly #runner: JobRunner;
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
    actions: OfferedActions,
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
    this.#queue = new LockingQueue(client, { path: options.queuePath, logger });
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
    this.#runner = new JobRunner({
      api,
      writes: new BatchedJobWrites(api),
      queue: this.#queue,
      registry: this.#registry,
      gate: this.#gate,
      watch: this.#watch,
      actions: actions.actions,
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
      ...(observer === undefined ? {} : { observer }),
    });
    const workerSettings = { api: options.api, progressIntervalMs: Math.min(250, options.progressIntervalMs) };
    this.#slots = Array.from({ length: options.threads }, (_, index) => new Slot(index, workerSettings, options.idleThreadMs));
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
    const actions = offeredActions(await loadActions(options.actionsDirs, logger), options, logger);
    if (actions.actions.size === 0)
      logger.warn('no action is loaded: every job this executor takes will fail as unknown', { actionsDirs: options.actionsDirs });
    const releasers = new Releasers();
    const executor = await startOrRelease(
      releasers,
      async () => {
        const api = await releasers.open(
          'job API client',
          JobApiClient.create({
            baseUrl: options.api.baseUrl,
            compatibility: options.api.compatibility,
            timeoutMs: options.api.timeoutMs,
            // The executor backs off itself (api-gate.ts); the client's own retries would only multiply requests.
            retry: { retries: 1 },
            maxSockets: options.threads * 2 + 4,
            logger,
            ...(options.api.credentials === undefined ? {} : { credentials: options.api.credentials }),
          }),
          (client) => client.close(),
        );
        const client = await releasers.open(
          'ZooKeeper session',
          ZkClient.connect({
            connectionString: options.zkHosts,
            sessionTimeoutMs: options.sessionTimeoutMs,
            connectTimeoutMs: options.connectTimeoutMs,
            logger,
          }),
          (session) => session.close(),
        );
        const started = new Executor(options, logger, actions, client, api, observer, releasers);
        await started.#registerWithPatience(client.session);
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
      actions: [...actions.actions.keys()],
      zkHosts: options.zkHosts,
      api: options.api.baseUrl,
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
    return this.#queue.paths;
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
  async dumpStacks(): Promise<void> {
    const running = this.#runner.running();
    if (running.length === 0) {
      this.#logger.info('stack dump: no job is running');
      return;
    }
    const stacks = await captureThreadStacks(running.map((job) => job.threadId));
    const now = Date.now();
    for (const job of running) {
      const stack = stacks.get(job.threadId);
      const elapsedSeconds = Math.round((now - job.startedAt) / 100) / 10;
      const progress =
        job.progress === undefined
          ? 'no progress reported'
          : `progress ${job.progress.percent}%${job.progress.message === undefined ? '' : ` (${job.progress.message})`}`;
      this.#logger.warn(
        `stack dump: job ${job.jobId} (${job.action}) on slot ${job.slot}, running ${elapsedSeconds} s, ${progress}\n${stack === undefined ? '(no stack)' : formatStack(stack)}`,
        { jobId: job.jobId, action: job.action, slot: job.slot, attempt: job.attempt, elapsedSeconds, progress: job.progress },
      );
    }
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
    });
    done.catch(() => undefined);
    this.#registration = { session, done };
  }

  /** At start, another process's registration under our name may still be expiring: wait for it, within bounds. */
  async #registerWithPatience(session: ZkSession): Promise<void> {
    const deadline = Date.now() + 2 * this.options.sessionTimeoutMs;
    for (;;) {
      this.#register(session);
      try {
        await this.#registration?.done;
        return;
      } catch (error) {
        if (!(error instanceof ExecutorNameInUseError) || Date.now() > deadline) throw error;
        this.#logger.warn('executor name still registered by an earlier session; waiting for it to expire', { name: this.options.name });
        await delay(500);
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
