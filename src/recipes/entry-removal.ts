/**
 * An operator removes one queue entry by name (`jobctl queue remove`): a waiting entry, a rejected
 * one, or, only when forced, one a consumer holds. A waiting entry is taken first, as any consumer
 * takes it (our own ephemeral taken node), then consumed: a consumer cannot take it in between and
 * be left holding a taken node of an entry that is gone.
 *
 * A taken entry is refused by default: its holder is running the job, and the entry is what proves
 * it; without it the holder's consume fails, and a job RUNNING under a kazoo consumer no longer
 * counts as held, so a duplicate entry of it would run it again (entry-holders.ts).
 */
import { randomUUID } from 'node:crypto';
import type { ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import { isEntryName, type QueuePaths } from './queue-layout.js';

export type RemovedEntry =
  | { readonly removed: 'entry'; readonly data: Buffer; readonly takenBy: string | undefined }
  | { readonly removed: 'rejected'; readonly data: Buffer };

export class EntryRemovalError extends Error {
  override readonly name = 'EntryRemovalError';
  readonly code: 'bad-name' | 'taken' | 'not-found';

  constructor(code: EntryRemovalError['code'], message: string) {
    super(message);
    this.code = code;
  }
}

/** Removes `<queue>/entries/<name>` (or `<queue>/rejected/<name>`); `force` also removes a taken one. */
export async function removeEntry(zk: ZkClient, paths: QueuePaths, name: string, force: boolean): Promise<RemovedEntry> {
  if (!isEntryName(name)) throw new EntryRemovalError('bad-name', `"${name}" is not an entry name (entry-PPP-SSSSSSSSSS)`);
  const entry = `${paths.entries}/${name}`;
  const taken = `${paths.taken}/${name}`;
  const data = await dataOf(zk, entry);
  if (data !== undefined) {
    const marker = await takeOrRead(zk, taken);
    if (marker.holder !== undefined && !force) {
      throw new EntryRemovalError(
        'taken',
        `entry ${name} is taken by consumer ${marker.holder} (session ${marker.session}): it is running the job, and the entry is what shows ` +
          'the job is held; removing it makes that consumer fail to consume it, and a duplicate entry could then re-run the job. ' +
          'Give --force to remove it anyway',
      );
    }
    try {
      await zk.multi([
        { op: 'remove', path: taken },
        { op: 'remove', path: entry },
      ]);
      return { removed: 'entry', data, takenBy: marker.holder };
    } catch (error) {
      // Consumed (or released, if it was forced) meanwhile: leave nothing of ours behind.
      if (!isZkError(error, 'NO_NODE')) throw error;
      if (marker.holder === undefined) await zk.remove(taken).catch(() => undefined);
    }
  }
  const rejected = `${paths.rejected}/${name}`;
  const rejectedData = await dataOf(zk, rejected);
  if (rejectedData !== undefined) {
    try {
      await zk.remove(rejected);
      return { removed: 'rejected', data: rejectedData };
    } catch (error) {
      if (!isZkError(error, 'NO_NODE')) throw error;
    }
  }
  throw new EntryRemovalError('not-found', `no entry ${name} in ${paths.entries} or ${paths.rejected}`);
}

/** Takes the entry for ourselves (holder undefined), or reads who holds it. */
async function takeOrRead(zk: ZkClient, taken: string): Promise<{ readonly holder: string | undefined; readonly session: string }> {
  for (;;) {
    try {
      await zk.create(taken, Buffer.from(randomUUID().replaceAll('-', '')), 'ephemeral');
      return { holder: undefined, session: zk.session.sessionId };
    } catch (error) {
      if (!isZkError(error, 'NODE_EXISTS')) throw error;
    }
    try {
      const { data, stat } = await zk.getData(taken);
      return { holder: data.toString('utf8'), session: stat.ephemeralOwner };
    } catch (error) {
      // Released meanwhile: try to take it again.
      if (!isZkError(error, 'NO_NODE')) throw error;
    }
  }
}

async function dataOf(zk: ZkClient, path: string): Promise<Buffer | undefined> {
  try {
    return (await zk.getData(path)).data;
  } catch (error) {
    if (isZkError(error, 'NO_NODE')) return undefined;
    throw error;
  }
}
