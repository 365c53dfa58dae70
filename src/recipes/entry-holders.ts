/**
 * Who else holds a job: a live session holding the taken node of another entry that carries the
 * same job id. A job is owned while such a node exists, whatever process wrote it: Nuvla's Python
 * executor (a kazoo consumer) holds `<queue>/taken/<entry>` for as long as it runs the job, and
 * never registers under `<queue>/executors`, so the executor registry alone cannot see it.
 *
 * Taken nodes of this engine's own consumers (those with a live `<queue>/consumers/<id>`) are left
 * out: their ownership is the job's `executor` field and the registry, checked by fenced writes. Were
 * they counted, two of our executors holding two entries of one orphaned job would each yield to
 * the other, and nobody would run it.
 */
import type { ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import type { QueuePaths } from './queue-layout.js';

/** The reads these lookups make: a client, or the one session that holds an item. */
type ZkReader = Pick<ZkClient, 'getChildren' | 'getData' | 'exists'>;

export interface ForeignHolder {
  /** The other entry, whose taken node the holder keeps. */
  readonly entry: string;
  /** What the holder wrote into its taken node (kazoo: its 32-hex consumer id). */
  readonly consumerId: string;
  /** The session holding the taken node, in hex like the executor owners. */
  readonly sessionId: string;
}

/**
 * The first live holder, not one of this engine's consumers, of an entry other than `exceptEntry`
 * whose data is `jobId`. A snapshot: a holder that lets go meanwhile is found by the next look.
 */
export async function findForeignHolder(
  zk: ZkReader,
  paths: QueuePaths,
  jobId: string,
  exceptEntry: string,
): Promise<ForeignHolder | undefined> {
  for (const entry of await entriesCarrying(zk, paths, jobId, exceptEntry)) {
    const holder = await nodeOf(zk, `${paths.taken}/${entry}`);
    if (holder === undefined) continue;
    const consumerId = holder.data.toString('utf8');
    if (/^[0-9a-f]{32}$/.test(consumerId) && (await zk.exists(`${paths.consumers}/${consumerId}`)) !== undefined) continue;
    return { entry, consumerId, sessionId: holder.stat.ephemeralOwner };
  }
  return undefined;
}

/**
 * The first entry other than `exceptEntry` that carries `jobId` and is held by anyone, this engine's
 * consumers included: a run of the job that may still be going on.
 */
export async function findHeldEntry(zk: ZkReader, paths: QueuePaths, jobId: string, exceptEntry: string): Promise<string | undefined> {
  for (const entry of await entriesCarrying(zk, paths, jobId, exceptEntry)) {
    if ((await zk.exists(`${paths.taken}/${entry}`)) !== undefined) return entry;
  }
  return undefined;
}

/** The taken entries, other than `exceptEntry`, whose data is `jobId`. */
async function entriesCarrying(zk: ZkReader, paths: QueuePaths, jobId: string, exceptEntry: string): Promise<string[]> {
  const taken = (await childrenOf(zk, paths.taken)).filter((name) => name !== exceptEntry);
  // Pipelined: the requests leave together, so this costs about one round trip however many are taken.
  const candidates = await Promise.all(
    taken.map(async (entry) => {
      const data = await dataOf(zk, `${paths.entries}/${entry}`);
      return data?.toString('utf8') === jobId ? entry : undefined;
    }),
  );
  return candidates.filter((entry): entry is string => entry !== undefined);
}

async function childrenOf(zk: ZkReader, path: string): Promise<string[]> {
  try {
    return await zk.getChildren(path);
  } catch (error) {
    if (isZkError(error, 'NO_NODE')) return [];
    throw error;
  }
}

async function nodeOf(zk: ZkReader, path: string): Promise<Awaited<ReturnType<ZkReader['getData']>> | undefined> {
  try {
    return await zk.getData(path);
  } catch (error) {
    if (isZkError(error, 'NO_NODE')) return undefined;
    throw error;
  }
}

async function dataOf(zk: ZkReader, path: string): Promise<Buffer | undefined> {
  return (await nodeOf(zk, path))?.data;
}
