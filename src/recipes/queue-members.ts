/**
 * Which consumer processes share the queue, so they can split the entries between them instead of
 * all racing for the head. Each consuming LockingQueue keeps an ephemeral `<queue>/consumers/<id>`
 * (our addition to kazoo's layout; kazoo ignores it, and a kazoo consumer simply competes unsplit).
 * A consumer owns the entries whose sequence number modulo the member count equals its rank among
 * the sorted ids. Views may disagree for a moment while members come and go: that costs a few
 * collisions, never correctness, since taking is still decided by the taken node.
 */
import type { ZkSession } from '../zk/session.js';
import { isZkError } from '../zk/errors.js';
import type { Logger } from '../util/logger.js';
import { toError } from '../util/errors.js';

export interface Partition {
  readonly index: number;
  readonly count: number;
}

export const WHOLE_QUEUE: Partition = Object.freeze({ index: 0, count: 1 });

export class QueueMembers {
  readonly #path: string;
  readonly #consumerId: string;
  readonly #logger: Logger;
  readonly #onChange: (partition: Partition) => void;
  #joined: ZkSession | undefined;
  #joining: { readonly session: ZkSession; readonly promise: Promise<void> } | undefined;
  #partition: Partition = WHOLE_QUEUE;
  #left = false;

  constructor(path: string, consumerId: string, logger: Logger, onChange: (partition: Partition) => void) {
    this.#path = path;
    this.#consumerId = consumerId;
    this.#logger = logger;
    this.#onChange = onChange;
  }

  get partition(): Partition {
    return this.#partition;
  }

  /** Registers this consumer on the session (once per session) and starts following the members. */
  join(session: ZkSession): Promise<void> {
    if (this.#left) return Promise.resolve();
    // Every slot calls this at once after a new session: they must share one registration.
    if (this.#joining?.session !== session) {
      const joining = this.#register(session).catch((error: unknown) => {
        if (this.#joining?.promise === joining) this.#joining = undefined;
        throw error;
      });
      this.#joining = { session, promise: joining };
    }
    return this.#joining.promise;
  }

  async #register(session: ZkSession): Promise<void> {
    await session.mkdirp(this.#path);
    const node = `${this.#path}/${this.#consumerId}`;
    try {
      await session.create(node, undefined, 'ephemeral');
    } catch (error) {
      if (!isZkError(error, 'NODE_EXISTS')) throw error;
      // Left by our previous session, which the server has not expired yet: take it over.
      const stat = await session.exists(node);
      if (stat !== undefined && stat.ephemeralOwner !== session.sessionId) {
        await session.remove(node, stat.version).catch(() => undefined);
        await session.create(node, undefined, 'ephemeral');
      }
    }
    this.#joined = session;
    await this.#follow(session);
  }

  /** Deregisters at once so the others take over this consumer's share without waiting for expiry. */
  async leave(): Promise<void> {
    this.#left = true;
    const session = this.#joined;
    this.#joined = undefined;
    if (session === undefined || session.isEnded) return;
    await session.remove(`${this.#path}/${this.#consumerId}`).catch(() => undefined);
  }

  async #follow(session: ZkSession): Promise<void> {
    if (this.#joined !== session || session.isEnded) return;
    let members: string[];
    try {
      members = await session.getChildren(this.#path, this.#onMembersChanged);
    } catch (error) {
      this.#logger.debug('queue members could not be listed', { error: toError(error) });
      return;
    }
    if (this.#joined !== session) return;
    members.sort();
    const index = members.indexOf(this.#consumerId);
    const next: Partition = index === -1 ? WHOLE_QUEUE : { index, count: members.length };
    if (next.index !== this.#partition.index || next.count !== this.#partition.count) {
      this.#partition = next;
      this.#logger.debug('queue partition changed', { index: next.index, count: next.count });
      this.#onChange(next);
    }
  }

  readonly #onMembersChanged = (): void => {
    const session = this.#joined;
    if (session !== undefined) void this.#follow(session);
  };
}
