/**
 * Each queue's depth and the age of its oldest waiting entry, read from ZooKeeper on scrape, labelled
 * `queue` (`default` for the queue root, then every named queue under `<root>/queues`), with the
 * live executors serving each. Both
 * need a listing of `entries` (56 ms and 2.4 MB at 100,000 entries, docs/zookeeper.md), so a read is
 * cached for a few seconds and shared by concurrent scrapes; while ZooKeeper is not connected
 * nothing is read and the gauges say NaN ("unknown") rather than a stale or a made-up number.
 *
 * An entry whose `taken` node exists is being handled by an executor: it is counted apart, and does
 * not make the queue look stuck however long its action runs. The oldest waiting entry is the one
 * with the lowest sequence number (ZooKeeper numbers a parent's children in creation order, whatever
 * their priority); its age is measured from its ctime, the server's clock.
 */
import { Gauge, type Registry } from 'prom-client';
import { ExecutorRegistry } from '../recipes/executor-registry.js';
import { DEFAULT_QUEUE_NAME, listQueueNames, namedQueuePaths, parseEntryName, type QueuePaths } from '../recipes/queue-layout.js';
import { ZkError } from '../zk/errors.js';
import type { ZkClient } from '../zk/client.js';
import { toError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { cachedRead } from './cached.js';
import { METRIC_PREFIX } from './registry.js';

export interface QueueStats {
  readonly waiting: number;
  readonly taken: number;
  /** Undefined when nothing waits. */
  readonly oldestWaitingCreatedMs: number | undefined;
}

export interface QueueSource {
  readonly zookeeper: ZkClient;
  /** The queue root's paths: the default queue, under which the named queues live. */
  readonly queuePaths: QueuePaths;
}

/** One queue's stats, by name, and how many live executors serve it. */
export interface NamedQueueStats extends QueueStats {
  readonly queue: string;
  readonly executors: number;
}

/** The stats of every queue under `root`, the default first. */
export async function readAllQueueStats(client: ZkClient, root: string): Promise<NamedQueueStats[]> {
  const [names, registered] = await Promise.all([listQueueNames(client, root), new ExecutorRegistry(client, root).list()]);
  return Promise.all(
    names.map(async (queue) => ({
      queue,
      executors: registered.filter((executor) => (executor.info?.queues ?? [DEFAULT_QUEUE_NAME]).includes(queue)).length,
      ...(await readQueueStats(client, namedQueuePaths(root, queue))),
    })),
  );
}

/** Long enough that a scrape storm is harmless, short next to a usual 15 s scrape interval. */
export const QUEUE_STATS_TTL_MS = 5000;
/** A listing slower than this is abandoned for this scrape (the gauges say NaN). */
const READ_TIMEOUT_MS = 3000;

export async function readQueueStats(client: ZkClient, paths: QueuePaths): Promise<QueueStats> {
  const [entries, takenNames] = await Promise.all([
    client.getChildren(paths.entries).catch(noNodeAsEmpty),
    client.getChildren(paths.taken).catch(noNodeAsEmpty),
  ]);
  const taken = new Set(takenNames);
  let oldest: { name: string; sequence: number } | undefined;
  let waiting = 0;
  for (const name of entries) {
    if (taken.has(name)) continue;
    waiting += 1;
    const parsed = parseEntryName(name);
    if (parsed !== undefined && (oldest === undefined || parsed.sequence < oldest.sequence)) oldest = { name, sequence: parsed.sequence };
  }
  // The oldest may be consumed between the listing and this read: then the queue has moved on, and
  // this scrape reports no age rather than a second listing's worth of work.
  const stat = oldest === undefined ? undefined : await client.exists(`${paths.entries}/${oldest.name}`);
  return { waiting, taken: entries.length - waiting, oldestWaitingCreatedMs: stat?.ctimeMs };
}

function noNodeAsEmpty(error: unknown): string[] {
  if (error instanceof ZkError && error.code === 'NO_NODE') return [];
  throw error;
}

/**
 * Registers `zkje_queue_entries{queue,state}`, `zkje_queue_oldest_entry_age_seconds{queue}` and
 * `zkje_queue_executors{queue}`, read from `source()` once it has one.
 */
export function registerQueueMetrics(
  registry: Registry,
  source: () => QueueSource | undefined,
  logger: Logger,
  ttlMs = QUEUE_STATS_TTL_MS,
): void {
  const stats = cachedRead(async () => {
    const current = source();
    if (current === undefined || current.zookeeper.state !== 'CONNECTED') return undefined;
    return withTimeout(readAllQueueStats(current.zookeeper, current.queuePaths.root), READ_TIMEOUT_MS);
  }, ttlMs);
  const read = async (): Promise<NamedQueueStats[] | undefined> => {
    try {
      return await stats.get();
    } catch (error) {
      logger.debug('queue metrics not read', { error: toError(error) });
      return undefined;
    }
  };
  const entries = new Gauge({
    name: `${METRIC_PREFIX}queue_entries`,
    help: `Entries in the job queue: waiting to be taken, or taken (being handled). Read at most every ${ttlMs / 1000} s; NaN while ZooKeeper cannot be read`,
    labelNames: ['queue', 'state'],
    registers: [registry],
    collect: async () => {
      const current = await read();
      // A queue removed since the last scrape leaves no stale series behind.
      entries.reset();
      for (const queue of current ?? [unknownQueue]) {
        entries.set({ queue: queue.queue, state: 'waiting' }, queue.waiting);
        entries.set({ queue: queue.queue, state: 'taken' }, queue.taken);
      }
    },
  });
  const age = new Gauge({
    name: `${METRIC_PREFIX}queue_oldest_entry_age_seconds`,
    help: 'Age of the oldest entry waiting in the job queue (0 when none waits; NaN while ZooKeeper cannot be read)',
    labelNames: ['queue'],
    registers: [registry],
    collect: async () => {
      const current = await read();
      age.reset();
      if (current === undefined) age.set({ queue: DEFAULT_QUEUE_NAME }, Number.NaN);
      for (const queue of current ?? []) {
        const oldest = queue.oldestWaitingCreatedMs;
        age.set({ queue: queue.queue }, oldest === undefined ? 0 : Math.max(0, (Date.now() - oldest) / 1000));
      }
    },
  });
  const executors = new Gauge({
    name: `${METRIC_PREFIX}queue_executors`,
    help: 'Live executors serving the queue (0 with entries waiting: nothing will take them; NaN while ZooKeeper cannot be read)',
    labelNames: ['queue'],
    registers: [registry],
    collect: async () => {
      const current = await read();
      executors.reset();
      for (const queue of current ?? [unknownQueue]) executors.set({ queue: queue.queue }, queue.executors);
    },
  });
}

/** What the gauges say while ZooKeeper cannot be read: unknown, for the one queue known to exist. */
const unknownQueue: NamedQueueStats = {
  queue: DEFAULT_QUEUE_NAME,
  waiting: Number.NaN,
  taken: Number.NaN,
  oldestWaitingCreatedMs: undefined,
  executors: Number.NaN,
};

async function withTimeout<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          reject(new Error(`the queue listing took longer than ${ms} ms`));
        }, ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    work.catch(() => undefined);
  }
}
