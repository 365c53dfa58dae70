/**
 * What the queue holds right now, read from ZooKeeper: entries per priority (from their names),
 * which are taken and by whom (the consumer id in each taken node, matched to a live executor's
 * registration), and how long the oldest waiting entry has waited (its znode's creation time).
 * A snapshot of a moving queue: an entry consumed while it is read is left out.
 */
import { ExecutorRegistry, type RegisteredExecutor } from '../recipes/executor-registry.js';
import { DEFAULT_QUEUE_NAME, listQueueNames, namedQueuePaths, parseEntryName, type QueuePaths } from '../recipes/queue-layout.js';
import { QueueWindow } from '../recipes/queue-window.js';
import { listRejected, type RejectedEntry } from '../recipes/rejected-entries.js';
import type { ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';

export interface WaitingEntry {
  readonly entry: string;
  readonly created: string;
  readonly ageSeconds: number;
}

export interface PriorityBand {
  readonly priority: number;
  readonly waiting: number;
  readonly taken: number;
  readonly oldestWaiting: WaitingEntry | null;
}

export interface TakenEntry {
  readonly entry: string;
  readonly priority: number;
  readonly jobId: string | null;
  readonly consumerId: string | null;
  /** The live executor whose registration carries that consumer id; null for others (kazoo consumers). */
  readonly executor: string | null;
  readonly takenAt: string;
  readonly forSeconds: number;
}

export interface LiveExecutor {
  readonly name: string;
  readonly consumerId: string | null;
  readonly host: string | null;
  readonly pid: number | null;
  readonly threads: number | null;
}

export interface QueueReport {
  /** `default` for the queue root, else the name under `<root>/queues`. */
  readonly name: string;
  readonly path: string;
  readonly entries: number;
  readonly waiting: number;
  readonly taken: number;
  readonly oldestWaiting: WaitingEntry | null;
  readonly priorities: PriorityBand[];
  readonly takenEntries: TakenEntry[];
  readonly executors: LiveExecutor[];
  /** The live executors serving this queue (an executor that does not say serves the default queue). */
  readonly servedBy: string[];
  /** Entries wait and no live executor serves the queue: nothing will take them. */
  readonly unserved: boolean;
  /** Entries that were not a job id, kept under `<queue>/rejected`, oldest first. */
  readonly rejected: RejectedEntry[];
}

/** Every queue (or the one asked for), the default first; the first one's fields also at the top, as before named queues. */
export type QueuesReport = QueueReport & {
  readonly queues: QueueReport[];
  /** How many entries each queue may hold before producers park jobs (queue-window.ts). */
  readonly window: number;
};

/** The report of the queues under `root`: all of them (default first, then the named ones), or `only`. */
export async function readQueuesReport(zk: ZkClient, root: string, now: number, only?: string): Promise<QueuesReport> {
  const [names, registered, window] = await Promise.all([
    only === undefined ? listQueueNames(zk, root) : Promise.resolve([only]),
    new ExecutorRegistry(zk, root).list(),
    new QueueWindow(zk, root).size(),
  ]);
  const queues = await Promise.all(names.map((name) => readQueueReport(zk, root, now, name, registered)));
  const [first] = queues;
  if (first === undefined) throw new Error('no queue to report');
  return { ...first, queues, window };
}

interface Entry {
  readonly name: string;
  readonly priority: number;
  readonly sequence: number;
}

export async function readQueueReport(
  zk: ZkClient,
  root: string,
  now: number,
  name: string = DEFAULT_QUEUE_NAME,
  known?: readonly RegisteredExecutor[],
): Promise<QueueReport> {
  const paths = namedQueuePaths(root, name);
  const [entryNames, takenNames, registered, rejected] = await Promise.all([
    childrenOf(zk, paths.entries),
    childrenOf(zk, paths.taken),
    known ?? new ExecutorRegistry(zk, root).list(),
    listRejected(zk, paths),
  ]);
  const entries = entryNames.flatMap((name): Entry[] => {
    const parsed = parseEntryName(name);
    return parsed === undefined ? [] : [{ name, ...parsed }];
  });
  const takenSet = new Set(takenNames);
  const executors: LiveExecutor[] = registered.map((executor) => ({
    name: executor.name,
    consumerId: executor.info?.consumerId ?? null,
    host: executor.info?.host ?? null,
    pid: executor.info?.pid ?? null,
    threads: executor.info?.threads ?? null,
  }));
  const byConsumer = new Map(
    executors.flatMap((executor) => (executor.consumerId === null ? [] : [[executor.consumerId, executor.name] as const])),
  );

  const bands = new Map<number, { waiting: Entry[]; taken: number }>();
  for (const entry of entries) {
    const band = bands.get(entry.priority) ?? { waiting: [], taken: 0 };
    bands.set(entry.priority, band);
    if (takenSet.has(entry.name)) band.taken += 1;
    else band.waiting.push(entry);
  }
  const priorities = await Promise.all(
    [...bands.entries()]
      .sort(([a], [b]) => a - b)
      .map(async ([priority, band]) => ({
        priority,
        waiting: band.waiting.length,
        taken: band.taken,
        oldestWaiting: await oldestOf(zk, paths.entries, band.waiting, now),
      })),
  );
  const oldestWaiting = priorities
    .map((band) => band.oldestWaiting)
    .filter((entry): entry is WaitingEntry => entry !== null)
    .reduce<WaitingEntry | null>((oldest, entry) => (oldest === null || entry.created < oldest.created ? entry : oldest), null);
  const takenEntries = (
    await Promise.all(entries.filter((entry) => takenSet.has(entry.name)).map((entry) => readTaken(zk, paths, entry, byConsumer, now)))
  ).filter((entry): entry is TakenEntry => entry !== undefined);
  const taken = priorities.reduce((sum, band) => sum + band.taken, 0);
  const servedBy = registered
    .filter((executor) => (executor.info?.queues ?? [DEFAULT_QUEUE_NAME]).includes(name))
    .map((executor) => executor.name);
  return {
    name,
    path: paths.root,
    entries: entries.length,
    waiting: entries.length - taken,
    taken,
    oldestWaiting,
    priorities,
    takenEntries,
    executors,
    servedBy,
    unserved: entries.length - taken > 0 && servedBy.length === 0,
    rejected,
  };
}

async function childrenOf(zk: ZkClient, path: string): Promise<string[]> {
  try {
    return (await zk.getChildren(path)).sort();
  } catch (error) {
    if (isZkError(error, 'NO_NODE')) return [];
    throw error;
  }
}

/** The band's first entry still there, by sequence: ZooKeeper numbers a parent's children in creation order. */
async function oldestOf(zk: ZkClient, entriesPath: string, waiting: readonly Entry[], now: number): Promise<WaitingEntry | null> {
  const candidates = [...waiting].sort((a, b) => a.sequence - b.sequence);
  for (const entry of candidates.slice(0, 5)) {
    const stat = await zk.exists(`${entriesPath}/${entry.name}`);
    if (stat === undefined) continue;
    return { entry: entry.name, created: new Date(stat.ctimeMs).toISOString(), ageSeconds: Math.max(0, (now - stat.ctimeMs) / 1000) };
  }
  return null;
}

async function readTaken(
  zk: ZkClient,
  paths: QueuePaths,
  entry: Entry,
  byConsumer: ReadonlyMap<string, string>,
  now: number,
): Promise<TakenEntry | undefined> {
  const [marker, data] = await Promise.all([readNode(zk, `${paths.taken}/${entry.name}`), readNode(zk, `${paths.entries}/${entry.name}`)]);
  if (marker === undefined) return undefined;
  const consumerId = marker.data.toString('utf8').trim();
  return {
    entry: entry.name,
    priority: entry.priority,
    jobId: data === undefined ? null : data.data.toString('utf8'),
    consumerId: consumerId === '' ? null : consumerId,
    executor: byConsumer.get(consumerId) ?? null,
    takenAt: new Date(marker.stat.ctimeMs).toISOString(),
    forSeconds: Math.max(0, (now - marker.stat.ctimeMs) / 1000),
  };
}

async function readNode(zk: ZkClient, path: string): Promise<Awaited<ReturnType<ZkClient['getData']>> | undefined> {
  try {
    return await zk.getData(path);
  } catch (error) {
    if (isZkError(error, 'NO_NODE')) return undefined;
    throw error;
  }
}
