/**
 * What `job-api serve --zk-hosts` adds to a create: the new jobs' ids enqueued in ZooKeeper through
 * the JobEnqueuer every other producer uses (`enqueued` announced on the server's own event hub, then
 * the entries written, a bulk create's in one transaction per few hundred), so a job created over
 * HTTP starts at once instead of waiting for the queue reconciler, as with Nuvla's own API server.
 *
 * ZooKeeper never fails a create. The jobs are persisted before this runs, and the reconciler enqueues
 * any QUEUED job without an entry after its grace; so ZooKeeper out of reach (not connected yet,
 * disconnected, or too slow) only costs that delay, and a log line says so. Hence:
 *  - the server starts whether ZooKeeper answers or not, and connects in the background;
 *  - while the session is not connected, a create does not wait for it at all;
 *  - a response waits for the entries at most REPLY_WAIT_MS; an enqueue still retrying then goes on in
 *    the background for at most BACKGROUND_RETRY_MS, after which the reconciler is the net anyway.
 * A job whose entries were written before the reply is marked `enqueued` in the response, so a
 * producer that also enqueues (a distributor, jobctl) can leave it alone.
 */
import { waitingFor, type JobDocument } from '../job/document.js';
import type { JobEventHub } from './event-hub.js';
import { audienceOf, type EventAudience } from './job-acl.js';
import type { QueueOptions } from './options.js';
import { JobEnqueuer } from '../../enqueue/job-enqueuer.js';
import { DEFAULT_QUEUE_NAME } from '../../recipes/queue-layout.js';
import { QueueRoutes } from '../../recipes/queue-routes.js';
import { QueueWindow, splitByRoom } from '../../recipes/queue-window.js';
import { delay } from '../../util/delay.js';
import type { Logger } from '../../util/logger.js';
import { exponentialDelays, retrying } from '../../util/retrying.js';
import { ZkClient } from '../../zk/client.js';

/** How long a create's response waits for its entries: a connected ZooKeeper takes milliseconds. */
const REPLY_WAIT_MS = 1000;
/** How long an enqueue keeps retrying after the response left; beyond it the reconciler is as quick. */
const BACKGROUND_RETRY_MS = 30_000;
/** Between attempts to reach ZooKeeper at all: from 1 s, doubling, up to 30 s. */
const CONNECT_RETRY_DELAYS = exponentialDelays(1000, 30_000);

const LEFT_TO_RECONCILER = 'created jobs not enqueued; the queue reconciler will enqueue them';

interface Connected {
  readonly client: ZkClient;
  readonly queue: QueueRoutes;
  readonly window: QueueWindow;
  readonly enqueuer: JobEnqueuer;
}

export class CreatedJobEnqueuer {
  readonly #options: QueueOptions;
  readonly #events: JobEventHub;
  readonly #logger: Logger;
  readonly #closed = new AbortController();
  readonly #inFlight = new Set<Promise<boolean>>();
  /** The audience of each job being enqueued, for its `enqueued` event: the documents are at hand. */
  readonly #audiences = new Map<string, EventAudience>();
  #connected: Connected | undefined;
  #closing: Promise<void> | undefined;

  private constructor(options: QueueOptions, events: JobEventHub, logger: Logger) {
    this.#options = options;
    this.#events = events;
    this.#logger = logger;
  }

  /** Starts connecting to ZooKeeper in the background and returns at once: the API serves meanwhile. */
  static start(options: QueueOptions, events: JobEventHub, logger: Logger): CreatedJobEnqueuer {
    const enqueuer = new CreatedJobEnqueuer(options, events, logger);
    enqueuer.#connect().catch((error: unknown) => {
      logger.error('connecting to ZooKeeper failed unexpectedly; created jobs are left to the queue reconciler', { error });
    });
    return enqueuer;
  }

  /**
   * The jobs about to be created, those beyond their queue's room marked `parked` (the queue feeder
   * enqueues them as room comes back); the ones that wait for their `not-before` are left as they are.
   * Without a connected ZooKeeper the room is unknown and nothing is parked: the reconciler enqueues
   * (or parks) them later, as it does any job left without an entry. Never rejects.
   */
  async parkBeyondRoom(jobs: readonly JobDocument[]): Promise<JobDocument[]> {
    const connected = this.#connected;
    const candidates = jobs.filter((job) => waitingFor(job) === null);
    if (connected === undefined || connected.client.state !== 'CONNECTED' || candidates.length === 0) return [...jobs];
    let parked: ReadonlySet<JobDocument>;
    try {
      parked = new Set((await splitByRoom(candidates, (queue) => connected.window.room(queue), DEFAULT_QUEUE_NAME)).parked);
    } catch (error) {
      this.#logger.warn('queue window not readable: created jobs are not parked', { jobs: jobs.length, error });
      return [...jobs];
    }
    return jobs.map((job) => (parked.has(job) ? { ...job, parked: true } : job));
  }

  /**
   * Enqueues `jobs` (just created); resolves true once their entries exist, false when they were left
   * to the reconciler or are still being written in the background. Never rejects.
   */
  async enqueueCreated(jobs: readonly JobDocument[]): Promise<boolean> {
    if (jobs.length === 0) return true;
    const ids = jobs.map((job) => job.id);
    const connected = this.#connected;
    if (connected === undefined || connected.client.state !== 'CONNECTED' || this.#closed.signal.aborted) {
      this.#logger.warn(`ZooKeeper out of reach: ${LEFT_TO_RECONCILER}`, {
        jobs: ids,
        zookeeper: connected?.client.state ?? 'not connected yet',
      });
      return false;
    }
    const requests = jobs.map((job) => ({
      id: job.id,
      priority: job.priority,
      action: job.action,
      ...(job.queue === undefined ? {} : { queue: job.queue }),
    }));
    for (const job of jobs) this.#audiences.set(job.id, audienceOf(job));
    const signal = AbortSignal.any([this.#closed.signal, AbortSignal.timeout(BACKGROUND_RETRY_MS)]);
    const writing = connected.enqueuer.enqueue(requests, signal).then(
      () => true,
      (error: unknown) => {
        this.#logger.warn(LEFT_TO_RECONCILER, { jobs: ids, error });
        return false;
      },
    );
    this.#inFlight.add(writing);
    void writing.finally(() => {
      this.#inFlight.delete(writing);
      for (const id of ids) this.#audiences.delete(id);
    });
    const waited = new AbortController();
    const replyBy = delay(REPLY_WAIT_MS, waited.signal).then(
      () => {
        this.#logger.info('created jobs still being enqueued after the reply', { jobs: ids.length, waitedMs: REPLY_WAIT_MS });
        return false;
      },
      () => false,
    );
    try {
      return await Promise.race([writing, replyBy]);
    } finally {
      waited.abort();
    }
  }

  /**
   * Stops retrying (an attempt to connect under way is abandoned), closes the session (failing what
   * is still pending) and waits for what was in flight. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed.abort(new Error('the job API is stopping'));
    const connected = this.#connected;
    if (connected !== undefined) {
      await connected.queue.close();
      await connected.client.close();
    }
    await Promise.all(this.#inFlight);
  }

  async #connect(): Promise<void> {
    const { zkHosts, queuePath, sessionTimeoutMs, connectTimeoutMs, auth } = this.#options;
    const signal = this.#closed.signal;
    let client: ZkClient;
    try {
      client = await retrying(
        () =>
          ZkClient.connect({
            connectionString: zkHosts,
            sessionTimeoutMs,
            connectTimeoutMs,
            logger: this.#logger,
            signal,
            ...(auth === undefined ? {} : { auth }),
          }),
        {
          delays: CONNECT_RETRY_DELAYS,
          signal,
          onRetry: (error, next) => {
            this.#logger.warn('ZooKeeper not reachable: created jobs are left to the queue reconciler until it is', {
              zkHosts,
              retryInMs: next.waitMs,
              error,
            });
          },
        },
      );
    } catch (error) {
      // Only a stop ends the loop: every failure to connect is retried.
      if (!signal.aborted) this.#logger.error('gave up connecting to ZooKeeper', { zkHosts, error });
      return;
    }
    if (signal.aborted) {
      await client.close();
      return;
    }
    const queue = new QueueRoutes(client, queuePath, this.#logger);
    const window = new QueueWindow(client, queuePath);
    const enqueuer = new JobEnqueuer({
      queue,
      logger: this.#logger,
      publish: (events) => {
        // Announced before the entries are written, so every job's audience is still here.
        this.#events.publish(events.map((event) => ({ event, audience: this.#audiences.get(event.job) ?? [] })));
        return Promise.resolve();
      },
    });
    this.#connected = { client, queue, window, enqueuer };
    this.#logger.info('enqueueing created jobs in ZooKeeper', { zkHosts, queuePath });
  }
}
