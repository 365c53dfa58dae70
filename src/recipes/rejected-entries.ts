/**
 * Entries that are not a job id (docs/contracts.md §2): a consumer that takes one moves it to
 * `<queue>/rejected/<entry name>`, a persistent node holding the entry's bytes unchanged, in the same
 * transaction that deletes the entry and its taken node. It is then settled for good (no loop over
 * it) and still there for an operator to look at. kazoo ignores the node: it only lists `entries/`
 * and `taken/`. The folder is bounded: past `limit` nodes the oldest go, so a producer that keeps
 * putting garbage cannot fill ZooKeeper.
 */
import type { ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import type { ZkSession } from '../zk/session.js';
import type { MultiOp } from '../zk/types.js';
import { describeEntryData, parseEntryName, type QueuePaths } from './queue-layout.js';

/** How many rejected entries are kept, newest first. */
export const REJECTED_LIMIT = 1000;

/** The transaction that settles a held entry by rejecting it (the parent must exist). */
export function rejectOps(paths: QueuePaths, name: string, data: Buffer): MultiOp[] {
  return [
    { op: 'create', path: `${paths.rejected}/${name}`, data, mode: 'persistent' },
    { op: 'remove', path: `${paths.entries}/${name}` },
    { op: 'remove', path: `${paths.taken}/${name}` },
  ];
}

/**
 * Deletes the oldest rejected entries beyond `limit`; returns how many went. Age is the entry's
 * sequence number: ZooKeeper numbers a parent's children in creation order, whatever the priority.
 * Two consumers trimming at once may both delete a node: NO_NODE is then fine.
 */
export async function trimRejected(session: ZkSession, paths: QueuePaths, limit: number): Promise<number> {
  const names = await session.getChildren(paths.rejected);
  if (names.length <= limit) return 0;
  const oldest = [...names].sort((a, b) => sequenceOf(a) - sequenceOf(b)).slice(0, names.length - limit);
  await Promise.all(
    oldest.map((name) =>
      session.remove(`${paths.rejected}/${name}`).catch((error: unknown) => {
        if (!isZkError(error, 'NO_NODE')) throw error;
      }),
    ),
  );
  return oldest.length;
}

function sequenceOf(name: string): number {
  return parseEntryName(name)?.sequence ?? -1;
}

export interface RejectedEntry {
  readonly entry: string;
  /** The bytes as text, or null when they are not printable UTF-8 (then only `hex`). */
  readonly text: string | null;
  readonly hex: string;
  readonly bytes: number;
  readonly rejectedAt: string;
}

/** Every rejected entry, oldest first. */
export async function listRejected(zk: ZkClient, paths: QueuePaths): Promise<RejectedEntry[]> {
  let names: string[];
  try {
    names = await zk.getChildren(paths.rejected);
  } catch (error) {
    if (isZkError(error, 'NO_NODE')) return [];
    throw error;
  }
  const found = await Promise.all(
    names
      .sort((a, b) => sequenceOf(a) - sequenceOf(b))
      .map(async (entry): Promise<RejectedEntry | undefined> => {
        try {
          const { data, stat } = await zk.getData(`${paths.rejected}/${entry}`);
          return { entry, ...describeEntryData(data), bytes: data.length, rejectedAt: new Date(stat.ctimeMs).toISOString() };
        } catch (error) {
          if (isZkError(error, 'NO_NODE')) return undefined;
          throw error;
        }
      }),
  );
  return found.filter((entry): entry is RejectedEntry => entry !== undefined);
}
