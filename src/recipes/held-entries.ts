/**
 * The entries one LockingQueue consumer holds, and how a held entry ends: consumed or rejected in
 * one transaction, or released. Every step goes through the session that took the item, so once
 * that session is lost it fails with SESSION_LOST instead of touching a node another consumer owns.
 * A reply lost to a dropped connection is settled on the same session before anything else.
 *
 * Consumes asked for in one turn of the event loop (an executor's slots finishing together: their
 * final writes come back in one HTTP answer) leave in one transaction, which ZooKeeper logs and
 * replicates once instead of once per entry. A transaction is all or nothing, so when it fails each
 * of its entries is settled on its own, exactly as a lone consume would be.
 */
import { ZkError, isZkError } from '../zk/errors.js';
import type { ZkClient } from '../zk/client.js';
import type { ZkSession } from '../zk/session.js';
import type { MultiOp } from '../zk/types.js';
import { delay } from '../util/delay.js';
import type { QueuePaths } from './queue-layout.js';
import type { QueueListing } from './queue-listing.js';

export interface QueueItem {
  /** Entry name, `entry-PPP-SSSSSSSSSS`. */
  readonly name: string;
  /** The entry's data read as UTF-8; check `data` with parseEntryData before trusting it as a job id. */
  readonly jobId: string;
  /** The entry's bytes as the producer put them. */
  readonly data: Buffer;
  readonly priority: number;
  /** The session holding the taken node. */
  readonly session: ZkSession;
  /** Aborted when the holding session is lost: the item may then be taken by someone else. */
  readonly lost: AbortSignal;
  readonly takenAt: number;
  /** The name of the queue it came from (`default` for the queue root): where it is settled. */
  readonly queue: string;
  /** That queue's paths. */
  readonly paths: QueuePaths;
}

/** Pause between tries of a step the connection interrupted, so a persistent fault cannot spin. */
export const TRANSIENT_PAUSE_MS = 50;
/** Entries per batched consume: two operations each, far below ZooKeeper's 1 MB request limit. */
const CONSUME_BATCH = 250;

interface PendingConsume {
  readonly item: QueueItem;
  readonly resolve: () => void;
  readonly reject: (error: unknown) => void;
}

export class HeldEntries {
  readonly #client: ZkClient;
  readonly #paths: QueuePaths;
  readonly #consumerId: string;
  /** Names this process is taking or holds; shared with the listing, which skips them. */
  readonly #inProcess: Set<string>;
  readonly #listing: QueueListing;
  readonly #held = new Map<string, QueueItem>();
  #consumes: PendingConsume[] = [];

  constructor(client: ZkClient, paths: QueuePaths, consumerId: string, inProcess: Set<string>, listing: QueueListing) {
    this.#client = client;
    this.#paths = paths;
    this.#consumerId = consumerId;
    this.#inProcess = inProcess;
    this.#listing = listing;
  }

  get count(): number {
    return this.#held.size;
  }

  add(item: QueueItem): void {
    this.#held.set(item.name, item);
  }

  /** The lost session's taken nodes are gone: those entries are free for anyone, us included. */
  forgetSession(session: ZkSession): void {
    for (const item of [...this.#held.values()]) if (item.session === session) this.#forget(item);
  }

  /** Removes the entry and its taken node; several consumes of one turn of the event loop in one transaction. */
  consume(item: QueueItem): Promise<void> {
    return new Promise((resolve, reject) => {
      this.assertHeld(item, 'consume');
      this.#consumes.push({ item, resolve, reject });
      if (this.#consumes.length === 1) {
        setImmediate(() => {
          this.#flushConsumes();
        });
      }
    });
  }

  #flushConsumes(): void {
    const pending = this.#consumes;
    this.#consumes = [];
    const bySession = new Map<ZkSession, PendingConsume[]>();
    for (const one of pending) {
      const group = bySession.get(one.item.session);
      if (group === undefined) bySession.set(one.item.session, [one]);
      else group.push(one);
    }
    for (const [session, group] of bySession) {
      for (let start = 0; start < group.length; start += CONSUME_BATCH) {
        void this.#consumeTogether(session, group.slice(start, start + CONSUME_BATCH));
      }
    }
  }

  async #consumeTogether(session: ZkSession, group: readonly PendingConsume[]): Promise<void> {
    if (group.length > 1) {
      try {
        // Held when asked; the session may have been lost since, which the transaction then reports.
        await session.multi(group.flatMap(({ item }) => consumeOps(this.#paths, item.name)));
        for (const { item, resolve } of group) {
          this.#forget(item);
          this.#listing.finished(item.name);
          resolve();
        }
        return;
      } catch (error) {
        // Nothing was done (the transaction failed), or it is unknown (a lost reply): each on its own.
        const unknown = isZkError(error, 'CONNECTION_LOSS', 'OPERATION_TIMEOUT', 'REQUEST_TIMEOUT');
        await Promise.all(group.map((one) => this.#consumeAlone(one, unknown)));
        return;
      }
    }
    for (const one of group) await this.#consumeAlone(one, false);
  }

  async #consumeAlone({ item, resolve, reject }: PendingConsume, afterLostReply: boolean): Promise<void> {
    try {
      const entry = `${this.#paths.entries}/${item.name}`;
      if (afterLostReply && (await this.#entryGoneAfterLoss(item, entry, 'consume'))) {
        this.#forget(item);
        this.#listing.finished(item.name);
      } else {
        await this.settle(item, 'consume', consumeOps(this.#paths, item.name));
      }
      resolve();
    } catch (error) {
      reject(error);
    }
  }

  /** One transaction that ends the entry, on the item's session; a lost reply is settled by reading back. */
  async settle(item: QueueItem, operation: string, ops: MultiOp[]): Promise<void> {
    this.assertHeld(item, operation);
    const entry = `${this.#paths.entries}/${item.name}`;
    for (;;) {
      try {
        await item.session.multi(ops);
        break;
      } catch (error) {
        this.#failUnlessRetryable(item, operation, error);
        if (await this.#entryGoneAfterLoss(item, entry, operation)) break;
      }
    }
    this.#forget(item);
    this.#listing.finished(item.name);
  }

  /** Gives the entry back to the queue by deleting the taken node. */
  async release(item: QueueItem): Promise<void> {
    this.assertHeld(item, 'release');
    for (;;) {
      try {
        await item.session.remove(`${this.#paths.taken}/${item.name}`);
        break;
      } catch (error) {
        // Deleting again is safe: NO_NODE then means an earlier try went through.
        if (isZkError(error, 'NO_NODE')) break;
        this.#failUnlessRetryable(item, 'release', error);
        await this.#pauseForReconnection(item, 'release');
      }
    }
    this.#forget(item);
    this.#listing.invalidate();
  }

  /** Whether this consumer still holds the item, checked on the server. */
  async holds(item: QueueItem): Promise<boolean> {
    if (item.lost.aborted || this.#held.get(item.name) !== item) return false;
    try {
      const { data, stat } = await item.session.getData(`${this.#paths.taken}/${item.name}`);
      return data.toString('utf8') === this.#consumerId && stat.ephemeralOwner === item.session.sessionId;
    } catch (error) {
      if (isZkError(error, 'NO_NODE')) return false;
      throw error;
    }
  }

  assertHeld(item: QueueItem, operation: string): void {
    if (item.lost.aborted) {
      this.#forget(item);
      throw new ZkError('SESSION_LOST', `cannot ${operation} ${item.name}: the session that took it is lost`, {
        cause: item.lost.reason,
      });
    }
    if (this.#held.get(item.name) !== item) {
      throw new ZkError('BAD_DATA', `cannot ${operation} ${item.name}: this queue does not hold it`);
    }
  }

  /** After a lost reply: whether the entry is gone, read through a write barrier on the item's session. */
  async #entryGoneAfterLoss(item: QueueItem, entry: string, operation: string): Promise<boolean> {
    for (;;) {
      await this.#pauseForReconnection(item, operation);
      try {
        await item.session.sync();
        return (await item.session.exists(entry)) === undefined;
      } catch (error) {
        this.#failUnlessRetryable(item, operation, error);
      }
    }
  }

  /** Waits until the item's session is connected again; SESSION_LOST if it never will be. */
  async #pauseForReconnection(item: QueueItem, operation: string): Promise<void> {
    try {
      await delay(TRANSIENT_PAUSE_MS, item.lost);
      await this.#client.waitForConnected(item.lost);
    } catch (error) {
      this.#failUnlessRetryable(item, operation, error);
    }
    this.assertHeld(item, operation);
  }

  /** Rethrows what retrying cannot fix; a failure of a lost session always surfaces as SESSION_LOST. */
  #failUnlessRetryable(item: QueueItem, operation: string, error: unknown): void {
    if (item.lost.aborted) this.assertHeld(item, operation);
    if (!isZkError(error, 'CONNECTION_LOSS', 'OPERATION_TIMEOUT', 'REQUEST_TIMEOUT', 'THROTTLED_OP')) throw error;
  }

  #forget(item: QueueItem): void {
    if (this.#held.get(item.name) === item) this.#held.delete(item.name);
    this.#inProcess.delete(item.name);
  }
}

/** The transaction that consumes one entry: the entry and our taken node. */
export function consumeOps(paths: QueuePaths, name: string): MultiOp[] {
  return [
    { op: 'remove', path: `${paths.entries}/${name}` },
    { op: 'remove', path: `${paths.taken}/${name}` },
  ];
}
