/**
 * kazoo's Semaphore, layout-compatible so that Python peers share the limit (kazoo/recipe/lock.py):
 *   `<path>`                   data: the max leases as decimal text
 *   `<path>/<32 hex>`          one ephemeral node per lease held, data the holder's identifier
 *   `<path>-__lock__/<32 hex>__lock__<seq>`  kazoo's Lock: whoever holds it may count and add a lease
 * A lease is taken under the lock: count the children of `<path>`, create ours when fewer than the max.
 *
 * Unlike kazoo's blocking acquire, tryAcquire never waits for a lease: when the semaphore is full it
 * says so at once, and the caller leaves the job for later (watchLeases tells it when a lease goes).
 * It waits for the lock only briefly: the lock is held for two requests by whoever holds it, unless
 * its holder died, in which case its node lives on until the holder's session expires.
 */
import { randomUUID } from 'node:crypto';
import type { ZkClient } from '../zk/client.js';
import type { ZkSession } from '../zk/session.js';
import { isZkError } from '../zk/errors.js';
import { SEMAPHORE_LOCK_SUFFIX } from './limit-layout.js';

const LOCK_MARK = '__lock__';
/** kazoo's Lock treats write and read lock nodes alike as contenders ahead of it. */
const CONTENDER = /(?:__lock__|__rlock__)(-?\d{10})$/;

export interface SemaphoreLease {
  /** The lease node. */
  readonly path: string;
  readonly session: ZkSession;
  /** Deletes the lease node; never rejects (a lease of a lost session is gone with it). */
  release(): Promise<void>;
}

/** Why no lease was given: every lease is held, or the lock was not ours within the wait. */
export type NoLease = { readonly full: true; readonly held: number } | { readonly full: false; readonly lockBusy: true };

export class ZkSemaphore {
  readonly path: string;
  readonly lockPath: string;
  readonly #client: ZkClient;
  /** The max written to `path` on the session named: written again only when it changes. */
  #written: { readonly session: ZkSession; readonly max: number } | undefined;

  constructor(client: ZkClient, path: string) {
    this.#client = client;
    this.path = path;
    this.lockPath = `${path}${SEMAPHORE_LOCK_SUFFIX}`;
  }

  /**
   * A lease if fewer than `maxLeases` are held, taken under the lock; waits at most `lockWaitMs` for
   * the lock. `identifier` is the data of our nodes (kazoo's lease_holders() lists it). Rejects on
   * ZooKeeper errors (nothing is then held).
   */
  async tryAcquire(maxLeases: number, lockWaitMs: number, identifier: string): Promise<SemaphoreLease | NoLease> {
    const data = Buffer.from(identifier, 'utf8');
    const session = this.#client.state === 'CONNECTED' ? this.#client.session : await this.#client.waitForConnected();
    await this.#ensure(session, maxLeases);
    const lock = await this.#lock(session, lockWaitMs, data);
    if (lock === undefined) return { full: false, lockBusy: true };
    try {
      const held = await session.getChildren(this.path);
      if (held.length >= maxLeases) return { full: true, held: held.length };
      const path = await this.#createLease(session, data);
      return {
        path,
        session,
        release: async () => {
          await session.remove(path).catch(() => undefined);
        },
      };
    } finally {
      await session.remove(lock).catch(() => undefined);
    }
  }

  /** The identifiers of the lease holders (kazoo's lease_holders()); none when the semaphore does not exist. */
  async holders(): Promise<string[]> {
    let children: string[];
    try {
      children = await this.#client.getChildren(this.path);
    } catch (error) {
      if (isZkError(error, 'NO_NODE')) return [];
      throw error;
    }
    const data = await Promise.all(
      children.map((child) =>
        this.#client.getData(`${this.path}/${child}`).then(
          ({ data: bytes }) => bytes.toString('utf8'),
          (error: unknown) => {
            if (isZkError(error, 'NO_NODE')) return undefined;
            throw error;
          },
        ),
      ),
    );
    return data.filter((holder): holder is string => holder !== undefined);
  }

  /** Calls `onChange` once, the next time a lease is taken or released (or the session ends). Never rejects. */
  watchLeases(onChange: () => void): void {
    const session = this.#client.state === 'CONNECTED' ? this.#client.session : undefined;
    let called = false;
    const once = (): void => {
      if (called) return;
      called = true;
      session?.signal.removeEventListener('abort', once);
      onChange();
    };
    if (session === undefined) {
      once();
      return;
    }
    session.signal.addEventListener('abort', once, { once: true });
    session.getChildren(this.path, once).catch(once);
  }

  /** kazoo checks the max against the node's data and refuses a mismatch: the node says the max in force. */
  async #ensure(session: ZkSession, maxLeases: number): Promise<void> {
    if (this.#written?.session === session && this.#written.max === maxLeases) return;
    const text = Buffer.from(String(maxLeases), 'utf8');
    await session.mkdirp(this.path);
    await session.mkdirp(this.lockPath);
    const { data } = await session.getData(this.path);
    if (!data.equals(text)) await session.setData(this.path, text);
    this.#written = { session, max: maxLeases };
  }

  /** kazoo's Lock: our node, then wait for the one just before it to go; undefined after `waitMs`. */
  async #lock(session: ZkSession, waitMs: number, data: Buffer): Promise<string | undefined> {
    const prefix = `${randomUUID().replaceAll('-', '')}${LOCK_MARK}`;
    const node = await this.#createLockNode(session, prefix, data);
    const deadline = Date.now() + waitMs;
    try {
      for (;;) {
        const contenders = await this.#contenders(session);
        const position = contenders.indexOf(node);
        if (position === -1) throw new Error(`lock node ${this.lockPath}/${node} vanished`);
        const predecessor = contenders[position - 1];
        if (predecessor === undefined) return `${this.lockPath}/${node}`;
        const left = deadline - Date.now();
        if (left <= 0 || !(await this.#deletedWithin(session, `${this.lockPath}/${predecessor}`, left))) {
          await session.remove(`${this.lockPath}/${node}`).catch(() => undefined);
          return undefined;
        }
      }
    } catch (error) {
      await session.remove(`${this.lockPath}/${node}`).catch(() => undefined);
      throw error;
    }
  }

  /** A lost reply hides whether the create happened: the uuid prefix finds it (kazoo's trick, after Curator). */
  async #createLockNode(session: ZkSession, prefix: string, data: Buffer): Promise<string> {
    try {
      const created = await session.create(`${this.lockPath}/${prefix}`, data, 'ephemeral-sequential');
      return created.slice(this.lockPath.length + 1);
    } catch (error) {
      if (!isZkError(error, 'CONNECTION_LOSS')) throw error;
      await this.#client.waitForConnected(session.signal);
      const found = (await session.getChildren(this.lockPath)).find((child) => child.startsWith(prefix));
      if (found === undefined) throw error;
      return found;
    }
  }

  async #createLease(session: ZkSession, data: Buffer): Promise<string> {
    const path = `${this.path}/${randomUUID().replaceAll('-', '')}`;
    try {
      await session.create(path, data, 'ephemeral');
      return path;
    } catch (error) {
      if (!isZkError(error, 'CONNECTION_LOSS')) throw error;
      await this.#client.waitForConnected(session.signal);
      if ((await session.exists(path)) !== undefined) return path;
      throw error;
    }
  }

  async #contenders(session: ZkSession): Promise<string[]> {
    const children = await session.getChildren(this.lockPath);
    return children
      .map((name) => ({ name, match: CONTENDER.exec(name) }))
      .filter((entry): entry is { name: string; match: RegExpExecArray } => entry.match !== null)
      .sort((a, b) => ((a.match[1] ?? '') < (b.match[1] ?? '') ? -1 : 1))
      .map((entry) => entry.name);
  }

  /** True once `path` is gone, false when `ms` passed first. */
  #deletedWithin(session: ZkSession, path: string, ms: number): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      let settled = false;
      const settle = (value: boolean | Error): void => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        session.signal.removeEventListener('abort', onLost);
        if (value instanceof Error) reject(value);
        else resolve(value);
      };
      const timer = setTimeout(() => {
        settle(false);
      }, ms);
      const onLost = (): void => {
        settle(new Error('ZooKeeper session ended while waiting for the semaphore lock', { cause: session.signal.reason }));
      };
      session.signal.addEventListener('abort', onLost, { once: true });
      session
        .exists(path, () => {
          settle(true);
        })
        .then(
          (stat) => {
            if (stat === undefined) settle(true);
          },
          (error: unknown) => {
            settle(error instanceof Error ? error : new Error(String(error)));
          },
        );
    });
  }
}
