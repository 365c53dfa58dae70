/**
 * kazoo's LockingQueue, layout-compatible (docs/contracts.md §2) so Python and TypeScript processes share one
 * queue, rebuilt for many concurrent takers per process: every slot draws from one shared listing
 * (QueueListing) instead of racing kazoo-style for the first entry.
 *
 * Take = create the ephemeral `taken/<name>` (NODE_EXISTS: someone has it, try the next), then read
 * the entry (NO_NODE: consumed meanwhile, drop the taken node). Consume = one multi deleting both.
 * Release = delete the taken node. What happens to a held item is held-entries.ts's.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { ZkError, isZkError } from '../zk/errors.js';
import type { ClientStateChange, ZkClient } from '../zk/client.js';
import type { ZkSession } from '../zk/session.js';
import type { Logger } from '../util/logger.js';
import { delay } from '../util/delay.js';
import { toError } from '../util/errors.js';
import { findForeignHolder, type ForeignHolder } from './entry-holders.js';
import { HeldEntries, TRANSIENT_PAUSE_MS, type QueueItem } from './held-entries.js';
import { QueueListing, type ListingTimings } from './queue-listing.js';
import { REJECTED_LIMIT, rejectOps, trimRejected } from './rejected-entries.js';
import { QueueMembers } from './queue-members.js';
import {
  DEFAULT_PRIORITY,
  DEFAULT_QUEUE_NAME,
  encodeJobId,
  entryPrefix,
  parseEntryName,
  priorityOf,
  queuePaths,
  validatePriority,
  type QueuePaths,
} from './queue-layout.js';

export type { QueueItem } from './held-entries.js';

export interface PutRequest {
  readonly jobId: string;
  readonly priority?: number;
}

export interface LockingQueueOptions {
  /** Queue root, `/job` by default (Nuvla's). */
  readonly path?: string;
  /** The queue's name (queue-layout.ts), carried by its items; `default` by default. */
  readonly name?: string;
  /** Written into taken nodes; 32 hex chars like kazoo's. Random by default. */
  readonly consumerId?: string;
  readonly logger?: Logger;
  readonly listing?: ListingTimings;
  /** How many rejected entries `<queue>/rejected` keeps (rejected-entries.ts); 1,000 by default. */
  readonly rejectedLimit?: number;
}

/** One transaction carries at most this many creates; well under ZooKeeper's 1 MB request limit. */
const PUT_BATCH = 500;

export class LockingQueue {
  readonly paths: QueuePaths;
  readonly name: string;
  readonly consumerId: string;
  readonly #client: ZkClient;
  readonly #logger: Logger;
  readonly #inProcess = new Set<string>();
  readonly #heldEntries: HeldEntries;
  readonly #listing: QueueListing;
  readonly #members: QueueMembers;
  readonly #unsubscribe: () => void;
  readonly #closed = new AbortController();
  readonly #rejectedLimit: number;
  #structureReady: ZkSession | undefined;

  constructor(client: ZkClient, options: LockingQueueOptions = {}) {
    this.#client = client;
    this.paths = queuePaths(options.path);
    this.name = options.name ?? DEFAULT_QUEUE_NAME;
    this.consumerId = options.consumerId ?? randomUUID().replaceAll('-', '');
    if (!/^[0-9a-f]{32}$/.test(this.consumerId)) {
      throw new Error(`queue consumer id must be 32 lowercase hex characters, got "${this.consumerId}"`);
    }
    this.#logger = options.logger ?? client.logger;
    this.#rejectedLimit = options.rejectedLimit ?? REJECTED_LIMIT;
    if (!Number.isInteger(this.#rejectedLimit) || this.#rejectedLimit < 1) {
      throw new RangeError(`rejectedLimit must be a positive integer, got ${String(this.#rejectedLimit)}`);
    }
    this.#listing = new QueueListing(this.paths, this.#inProcess, this.#logger, options.listing);
    this.#heldEntries = new HeldEntries(client, this.paths, this.consumerId, this.#inProcess, this.#listing);
    this.#members = new QueueMembers(this.paths.consumers, this.consumerId, this.#logger, (partition) => {
      this.#listing.setPartition(partition);
    });
    // Every waiting slot listens on it.
    setMaxListeners(0, this.#closed.signal);
    this.#unsubscribe = client.onStateChange((change) => {
      this.#onClientState(change);
    });
  }

  /** Items this process holds now. */
  get heldCount(): number {
    return this.#heldEntries.count;
  }

  /** Appends a job id; returns the entry name. */
  async put(jobId: string, priority: number = DEFAULT_PRIORITY): Promise<string> {
    validatePriority(priority);
    const data = encodeJobId(jobId);
    const path = `${this.paths.entries}/${entryPrefix(priority)}`;
    const created = await this.#withStructure(() => this.#client.create(path, data, 'persistent-sequential'));
    return created.slice(this.paths.entries.length + 1);
  }

  /** Appends many job ids, a few hundred per transaction; returns the entry names in order. */
  async putMany(requests: readonly PutRequest[]): Promise<string[]> {
    const ops = requests.map((request) => {
      const priority = request.priority ?? DEFAULT_PRIORITY;
      validatePriority(priority);
      return {
        op: 'create' as const,
        path: `${this.paths.entries}/${entryPrefix(priority)}`,
        data: encodeJobId(request.jobId),
        mode: 'persistent-sequential' as const,
      };
    });
    const names: string[] = [];
    for (let start = 0; start < ops.length; start += PUT_BATCH) {
      const batch = ops.slice(start, start + PUT_BATCH);
      const results = await this.#withStructure(() => this.#client.multi(batch));
      for (const result of results) {
        if (result.op === 'create') names.push(result.path.slice(this.paths.entries.length + 1));
      }
    }
    return names;
  }

  /** Number of entries, taken or not, read from the parent's stat rather than a listing. */
  async length(): Promise<number> {
    const stat = await this.#client.exists(this.paths.entries);
    return stat?.numChildren ?? 0;
  }

  /**
   * Takes the next available entry, waiting as long as the queue is empty or ZooKeeper unreachable
   * (taking needs a connected session). Rejects only when `signal` aborts or the queue is closed.
   */
  async take(signal?: AbortSignal): Promise<QueueItem> {
    // Combined only when this take has to wait: on the hot path it would cost more than the take.
    let combined: AbortSignal | undefined;
    const stop = (): AbortSignal => {
      if (combined === undefined) {
        combined = signal === undefined ? this.#closed.signal : AbortSignal.any([signal, this.#closed.signal]);
        setMaxListeners(0, combined);
      }
      return combined;
    };
    for (;;) {
      signal?.throwIfAborted();
      this.#closed.signal.throwIfAborted();
      const session = this.#client.state === 'CONNECTED' ? this.#client.session : await this.#client.waitForConnected(stop());
      try {
        if (this.#structureReady !== session) await this.#ensureStructure(session);
        await this.#members.join(session);
        const name = this.#listing.next(session);
        if (name === undefined) {
          await this.#listing.waitForMore(stop());
          continue;
        }
        const item = await this.#tryTake(session, name);
        if (item !== undefined) return item;
      } catch (error) {
        if (!isTransient(error)) throw error;
        // The session is reconnecting or being replaced; pause briefly so a persistent fault cannot spin.
        await delay(TRANSIENT_PAUSE_MS, stop());
      }
    }
  }

  /**
   * One step of a take across several queues (queue-set.ts): readies this queue on `session` and
   * tells the priority band (`PPP`) of the entry a take would try next; undefined when there is none.
   */
  async nextBand(session: ZkSession): Promise<string | undefined> {
    if (this.#structureReady !== session) await this.#ensureStructure(session);
    await this.#members.join(session);
    // Compared with the other queues' next entries, "none yet" would lose to any of them.
    if (!this.#listing.listedOn(session)) {
      this.#listing.peek(session);
      await this.#listing.waitForMore(AbortSignal.any([session.signal, this.#closed.signal]));
    }
    const name = this.#listing.peek(session);
    return name === undefined ? undefined : priorityOf(name);
  }

  /** The other step: tries the next entry once; undefined when there was none or another consumer had it. */
  async takeOnce(session: ZkSession): Promise<QueueItem | undefined> {
    this.#closed.signal.throwIfAborted();
    const name = this.#listing.next(session);
    return name === undefined ? undefined : this.#tryTake(session, name);
  }

  /** Resolves when a listing may have brought entries (or `signal` aborts, or the queue closes). */
  waitForEntries(signal: AbortSignal): Promise<void> {
    return this.#listing.waitForMore(AbortSignal.any([signal, this.#closed.signal]));
  }

  /**
   * Removes the entry and its taken node in one transaction. A connection lost before the reply is
   * settled here, on the same session: consumed, or tried again. Rejects with SESSION_LOST once the
   * session holding the item is lost (the entry is then someone else's to take).
   */
  consume(item: QueueItem): Promise<void> {
    return this.#heldEntries.consume(item);
  }

  /**
   * Settles an entry that is not a job id: moved under `<queue>/rejected` with its bytes, in the
   * transaction that consumes it, then the oldest rejected entries beyond the limit are deleted.
   * Fails like consume().
   */
  async reject(item: QueueItem): Promise<void> {
    this.#heldEntries.assertHeld(item, 'reject');
    await item.session.mkdirp(this.paths.rejected);
    try {
      await this.#heldEntries.settle(item, 'reject', rejectOps(this.paths, item.name, item.data));
    } catch (error) {
      if (!isZkError(error, 'NODE_EXISTS')) throw error;
      // Left by an earlier incarnation of the queue, whose sequence numbers this one repeats.
      await item.session.remove(`${this.paths.rejected}/${item.name}`).catch(() => undefined);
      await this.#heldEntries.settle(item, 'reject', rejectOps(this.paths, item.name, item.data));
    }
    try {
      await trimRejected(item.session, this.paths, this.#rejectedLimit);
    } catch (error) {
      // The entry is settled; the next rejection trims again.
      this.#logger.warn('rejected entries could not be trimmed', { path: this.paths.rejected, error: toError(error) });
    }
  }

  /** Gives the entry back to the queue; settles a lost reply like consume(). */
  release(item: QueueItem): Promise<void> {
    return this.#heldEntries.release(item);
  }

  /**
   * Gives the item back (release) and does not take its entry again in this process for `ms`: for an
   * entry this consumer cannot use, so that it does not take it back in a loop. Other consumers may
   * take it at once.
   */
  async releaseAside(item: QueueItem, ms: number): Promise<void> {
    this.#listing.setAside(item.name, ms);
    await this.release(item);
  }

  /** Ends the set-aside of entries of queue `queue` (this one) before their time: takes may try them again. */
  recall(queue: string, names: readonly string[]): void {
    if (queue === this.name) this.#listing.endAside(names);
  }

  /** Whether this consumer still holds the item, checked on the server. */
  holds(item: QueueItem): Promise<boolean> {
    return this.#heldEntries.holds(item);
  }

  /** A live holder, outside this engine's consumers, of another entry of `item`'s job (entry-holders.ts). */
  foreignHolder(item: QueueItem): Promise<ForeignHolder | undefined> {
    return findForeignHolder(this.#client, this.paths, item.jobId, item.name);
  }

  /**
   * Stops taking (pending takes reject) and leaves the consumers, so the others take over this one's
   * share at once. Held items stay held until released, consumed, or their session ends.
   */
  async close(): Promise<void> {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort(new ZkError('CLOSED', 'queue closed'));
    this.#unsubscribe();
    this.#listing.close();
    await this.#members.leave();
  }

  async #tryTake(session: ZkSession, name: string): Promise<QueueItem | undefined> {
    const takenPath = `${this.paths.taken}/${name}`;
    const entryPath = `${this.paths.entries}/${name}`;
    this.#inProcess.add(name);
    // Both requests leave in one write. The server runs a session's requests in order, so the read
    // still sees the entry as it is after our taken node exists, exactly as if sent after it: one
    // round trip per take instead of two.
    const creating = this.#createTaken(session, takenPath);
    const reading = session.getData(entryPath).then(
      ({ data }) => data,
      (error: unknown) => toError(error),
    );
    try {
      if (!(await creating)) {
        this.#listing.collided();
        this.#inProcess.delete(name);
        return undefined;
      }
    } catch (error) {
      this.#inProcess.delete(name);
      throw error;
    }
    let data = await reading;
    if (data instanceof Error && isZkError(data) && data.retryable) {
      // The connection dropped under the read (and maybe the create): read again on the same session.
      data = await session.getData(entryPath).then(
        ({ data: again }) => again,
        (error: unknown) => toError(error),
      );
    }
    if (data instanceof Error) {
      await session.remove(takenPath).catch(() => undefined);
      this.#inProcess.delete(name);
      if (isZkError(data, 'NO_NODE')) {
        this.#listing.collided();
        return undefined;
      }
      throw data;
    }
    const item: QueueItem = {
      name,
      jobId: data.toString('utf8'),
      data,
      priority: parseEntryName(name)?.priority ?? DEFAULT_PRIORITY,
      session,
      lost: session.signal,
      takenAt: Date.now(),
      queue: this.name,
      paths: this.paths,
    };
    this.#heldEntries.add(item);
    return item;
  }

  /**
   * Creates our taken node; false when another consumer holds it. A connection lost mid-request
   * leaves it unknown whether the node was made, and an orphan would block the entry for as long as
   * this session lives, so look before giving up.
   */
  async #createTaken(session: ZkSession, takenPath: string): Promise<boolean> {
    try {
      await session.create(takenPath, Buffer.from(this.consumerId), 'ephemeral');
      return true;
    } catch (error) {
      if (isZkError(error, 'NODE_EXISTS')) return false;
      if (isZkError(error, 'NO_NODE')) {
        this.#structureReady = undefined;
        return false;
      }
      if (!isZkError(error, 'CONNECTION_LOSS')) throw error;
      const stat = await session.exists(takenPath);
      if (stat?.ephemeralOwner === session.sessionId) return true;
      return false;
    }
  }

  #onClientState(change: ClientStateChange): void {
    if (change.state === 'LOST') {
      // The lost session's taken nodes are gone: those entries are free for anyone, us included.
      this.#heldEntries.forgetSession(change.session);
      this.#structureReady = undefined;
    }
    if (change.state === 'CONNECTED') {
      this.#listing.invalidate();
      this.#listing.wakeAll();
    }
  }

  async #ensureStructure(session: ZkSession): Promise<void> {
    if (this.#structureReady === session) return;
    await session.mkdirp(this.paths.entries);
    await session.mkdirp(this.paths.taken);
    this.#structureReady = session;
  }

  async #withStructure<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (!isZkError(error, 'NO_NODE')) throw error;
      this.#structureReady = undefined;
      await this.#ensureStructure(this.#client.session);
      return operation();
    }
  }
}

function isTransient(error: unknown): boolean {
  return isZkError(error) && (error.retryable || error.code === 'SESSION_EXPIRED' || error.code === 'SESSION_LOST');
}
