/**
 * The dashboard's read-only view of ZooKeeper (`job-api serve --zk-hosts`): the queues (depth and
 * oldest wait per priority band, per named queue, rejected entries), the live executors with the
 * slots they use and the actions they offer, and each distribution's leader with its published status
 * (schedule, next and last tick, jobs created per tick). It only reads: nothing
 * here creates, changes or deletes a znode.
 *
 * It has a session of its own rather than the created-job enqueuer's: a listing of a large queue
 * (56 ms of client CPU at 100,000 entries, docs/zookeeper.md) would otherwise sit on the socket the
 * creates' entries are written through. The session is opened on the first request, not at start,
 * so an API whose dashboard nobody opens costs ZooKeeper nothing; a failed connect is retried by the
 * next request. Concurrent callers share one read, and a snapshot is reused for SNAPSHOT_TTL_MS: ten
 * open dashboards cost ZooKeeper what one does.
 */
import { readDistributions, type DistributionView } from '../../views/distributions.js';
import { readQueuesReport, type QueueReport } from '../../views/queue-report.js';
import { ExecutorRegistry } from '../../recipes/executor-registry.js';
import { toError } from '../../util/errors.js';
import type { Logger } from '../../util/logger.js';
import { ZkClient } from '../../zk/client.js';
import type { DigestAuth } from '../../zk/types.js';

const SNAPSHOT_TTL_MS = 2000;
/** How long a request waits for a first session; the dashboard shows the error and asks again later. */
const CONNECT_TIMEOUT_MS = 5000;
/** Per queue: enough to see who holds what and which entries were rejected, bounded for a huge queue. */
const MAX_TAKEN_SHOWN = 200;
const MAX_REJECTED_SHOWN = 50;

export interface EngineViewOptions {
  readonly zkHosts: string;
  readonly queuePath: string;
  readonly electionPath: string;
  readonly sessionTimeoutMs: number;
  readonly auth?: DigestAuth;
}

export interface ExecutorView {
  readonly name: string;
  readonly host: string | null;
  readonly pid: number | null;
  readonly started: string | null;
  /** Its `--threads`: the slots it has. */
  readonly slots: number | null;
  /** Entries its consumer holds now, across the queues: the slots in use. */
  readonly busy: number;
  /** null: an older executor that does not say (it may run anything). */
  readonly actions: readonly string[] | null;
  readonly queues: readonly string[];
}

export interface EngineSnapshot {
  readonly at: string;
  readonly queuePath: string;
  readonly electionPath: string;
  readonly queues: readonly QueueReport[];
  readonly executors: readonly ExecutorView[];
  /** Each distribution: its leader, standbys and the status its leader published (schedule, ticks). */
  readonly leaders: readonly DistributionView[];
}

export class ZooKeeperUnreachableError extends Error {
  override readonly name = 'ZooKeeperUnreachableError';
}

export class EngineViews {
  readonly #options: EngineViewOptions;
  readonly #logger: Logger;
  readonly #closed = new AbortController();
  #client: Promise<ZkClient> | undefined;
  #reading: Promise<EngineSnapshot> | undefined;
  #last: { readonly at: number; readonly snapshot: EngineSnapshot } | undefined;
  #closing: Promise<void> | undefined;

  constructor(options: EngineViewOptions, logger: Logger) {
    this.#options = options;
    this.#logger = logger;
  }

  get options(): EngineViewOptions {
    return this.#options;
  }

  /** The engine as ZooKeeper shows it now (at most SNAPSHOT_TTL_MS old). */
  async snapshot(now = Date.now()): Promise<EngineSnapshot> {
    if (this.#last !== undefined && now - this.#last.at < SNAPSHOT_TTL_MS) return this.#last.snapshot;
    this.#reading ??= this.#read(now).finally(() => {
      this.#reading = undefined;
    });
    return this.#reading;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#closed.abort(new Error('the job API is stopping'));
    const client = await this.#client?.catch(() => undefined);
    await client?.close();
  }

  async #read(now: number): Promise<EngineSnapshot> {
    const zk = await this.#connected();
    const { queuePath, electionPath } = this.#options;
    const [report, registered, leaders] = await Promise.all([
      readQueuesReport(zk, queuePath, now),
      new ExecutorRegistry(zk, queuePath).list(),
      readDistributions(zk, electionPath),
    ]);
    const busy = new Map<string, number>();
    for (const queue of report.queues) {
      for (const entry of queue.takenEntries) if (entry.executor !== null) busy.set(entry.executor, (busy.get(entry.executor) ?? 0) + 1);
    }
    const executors = registered.map((executor): ExecutorView => ({
      name: executor.name,
      host: executor.info?.host ?? null,
      pid: executor.info?.pid ?? null,
      started: executor.info?.started ?? null,
      slots: executor.info?.threads ?? null,
      busy: busy.get(executor.name) ?? 0,
      actions: executor.info?.actions === undefined ? null : [...executor.info.actions],
      queues: [...(executor.info?.queues ?? ['default'])],
    }));
    const queues = report.queues.map((queue): QueueReport => ({
      ...queue,
      // The executors are listed once, at the top.
      executors: [],
      takenEntries: queue.takenEntries.slice(0, MAX_TAKEN_SHOWN),
      rejected: queue.rejected.slice(-MAX_REJECTED_SHOWN),
    }));
    const snapshot: EngineSnapshot = { at: new Date(now).toISOString(), queuePath, electionPath, queues, executors, leaders };
    this.#last = { at: now, snapshot };
    return snapshot;
  }

  /** The session, opened on first use; a failed connect is forgotten so the next request tries again. */
  #connected(): Promise<ZkClient> {
    if (this.#closed.signal.aborted) return Promise.reject(new ZooKeeperUnreachableError('the job API is stopping'));
    const { zkHosts, sessionTimeoutMs, auth } = this.#options;
    this.#client ??= ZkClient.connect({
      connectionString: zkHosts,
      sessionTimeoutMs,
      connectTimeoutMs: CONNECT_TIMEOUT_MS,
      logger: this.#logger,
      signal: this.#closed.signal,
      // Reading only: a missing chroot is shown as an empty engine, not created.
      createChroot: false,
      ...(auth === undefined ? {} : { auth }),
    }).catch((error: unknown) => {
      this.#client = undefined;
      this.#logger.warn('dashboard: ZooKeeper not reachable', { zkHosts, error });
      throw new ZooKeeperUnreachableError(`ZooKeeper at ${zkHosts} is not reachable: ${toError(error).message}`, { cause: error });
    });
    return this.#client;
  }
}
