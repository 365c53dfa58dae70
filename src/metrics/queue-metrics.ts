/**
 * The queue's depth and the age of its oldest waiting entry, read from ZooKeeper on scrape. Both
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
import { parseEntryName, type QueuePaths } from '../recipes/queue-layout.js';
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
  readonly queuePaths: QueuePaths;
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

/** Registers `zkje_queue_entries{state}` and `zkje_queue_oldest_entry_age_seconds`, read from `source()` once it has one. */
export function registerQueueMetrics(
  registry: Registry,
  source: () => QueueSource | undefined,
  logger: Logger,
  ttlMs = QUEUE_STATS_TTL_MS,
): void {
  const stats = cachedRead(async () => {
    const current = source();
    if (current === undefined || current.zookeeper.state !== 'CONNECTED') return undefined;
    return withTimeout(readQueueStats(current.zookeeper, current.queuePaths), READ_TIMEOUT_MS);
  }, ttlMs);
  const read = async (): Promise<QueueStats | undefined> => {
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
    labelNames: ['state'],
    registers: [registry],
    collect: async () => {
      const current = await read();
      entries.set({ state: 'waiting' }, current?.waiting ?? Number.NaN);
      entries.set({ state: 'taken' }, current?.taken ?? Number.NaN);
    },
  });
  const age = new Gauge({
    name: `${METRIC_PREFIX}queue_oldest_entry_age_seconds`,
    help: 'Age of the oldest entry waiting in the job queue (0 when none waits; NaN while ZooKeeper cannot be read)',
    registers: [registry],
    collect: async () => {
      const current = await read();
      if (current === undefined) age.set(Number.NaN);
      else age.set(current.oldestWaitingCreatedMs === undefined ? 0 : Math.max(0, (Date.now() - current.oldestWaitingCreatedMs) / 1000));
    },
  });
}

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
