/**
 * Which job ids the queue holds, waiting or taken: what the queue reconciler compares the job API's
 * QUEUED and RUNNING jobs against. It reads every entry, so it is for a periodic pass, not a hot path.
 */
import { isZkError } from '../zk/errors.js';
import type { ZkClient } from '../zk/client.js';
import { parseEntryName, type QueuePaths } from './queue-layout.js';

/** Reads in flight at once: the client pipelines them on one connection. */
const READS_IN_FLIGHT = 500;

export async function queuedJobIds(client: ZkClient, paths: QueuePaths): Promise<Set<string>> {
  const names = await client.getChildren(paths.entries).catch((error: unknown) => {
    if (isZkError(error, 'NO_NODE')) return [];
    throw error;
  });
  const entries = names.filter((name) => parseEntryName(name) !== undefined);
  const ids = new Set<string>();
  for (let start = 0; start < entries.length; start += READS_IN_FLIGHT) {
    const batch = entries.slice(start, start + READS_IN_FLIGHT);
    const data = await Promise.all(
      batch.map((name) =>
        client.getData(`${paths.entries}/${name}`).then(
          (result) => result.data.toString('utf8'),
          (error: unknown) => {
            // Consumed while we read: it no longer counts.
            if (isZkError(error, 'NO_NODE')) return undefined;
            throw error;
          },
        ),
      ),
    );
    for (const id of data) if (id !== undefined) ids.add(id);
  }
  return ids;
}
