/**
 * Leader election, layout-compatible with kazoo's Election (which is its Lock): each contender makes
 * an ephemeral sequential `<path>/<32 hex>__lock__<seq>` holding its identifier; the lowest sequence
 * leads, every other contender watches the one just before it. A kazoo process and ours can stand in
 * the same election.
 *
 * What kazoo leaves to its caller, this does: a Leadership carries an AbortSignal that fires the moment
 * leadership can no longer be trusted: the session is lost, it has been suspended longer than the
 * grace period (the server may expire it any moment, and another contender would then lead), the node
 * was deleted, or the client closed. A leader must stop acting when it fires.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import { ZkError, isZkError } from '../zk/errors.js';
import type { ClientStateChange, ZkClient } from '../zk/client.js';
import type { ZkSession } from '../zk/session.js';
import type { WatchEvent } from '../zk/types.js';
import type { Logger } from '../util/logger.js';
import { toError } from '../util/errors.js';

const LOCK_MARK = '__lock__';
const RESIGNED = 'resigned';
/** kazoo's exclusive Lock treats both write and read lock nodes as contenders ahead of it. */
const CONTENDER = /(?:__lock__|__rlock__)(-?\d{10})$/;

export interface ElectionOptions {
  /** Election node, e.g. `/election/cleanup_jobs`. */
  readonly path: string;
  /** Shown to others by contenders(); kazoo stores it as the node's data. */
  readonly identifier?: string;
  /** How long a suspended leader stays leader. Default: a third of the session timeout. */
  readonly suspendedGraceMs?: number;
  readonly logger?: Logger;
}

export interface Leadership {
  /** Aborted when leadership is lost; the reason is an Error saying why. */
  readonly signal: AbortSignal;
  /** This contender's node name. */
  readonly node: string;
  readonly session: ZkSession;
  /** Gives up leadership and deletes the node so the next contender leads at once. */
  resign(): Promise<void>;
}

export class LeaderElection {
  readonly path: string;
  readonly identifier: string;
  readonly #client: ZkClient;
  readonly #graceMs: number;
  readonly #logger: Logger;

  constructor(client: ZkClient, options: ElectionOptions) {
    if (!options.path.startsWith('/') || options.path.endsWith('/')) {
      throw new Error(`election path "${options.path}" must be absolute without a trailing slash`);
    }
    this.#client = client;
    this.path = options.path;
    this.identifier = options.identifier ?? '';
    this.#graceMs = options.suspendedGraceMs ?? Math.floor(client.sessionTimeoutMs / 3);
    this.#logger = options.logger ?? client.logger;
  }

  /** Waits until this contender leads (or `signal` aborts: its node is then deleted). */
  async campaign(signal?: AbortSignal): Promise<Leadership> {
    // Our node outlives a connection loss (the session survives it): a retry must find it, not add a
    // second one that would wait on the first. A new session needs a new name: the old node may still
    // be there until the server expires the old session.
    let entered: { readonly session: ZkSession; readonly prefix: string; node?: string } | undefined;
    for (;;) {
      signal?.throwIfAborted();
      const session = await this.#client.waitForConnected(signal);
      const retry = entered?.session === session;
      if (entered?.session !== session) entered = { session, prefix: `${randomUUID().replaceAll('-', '')}${LOCK_MARK}` };
      const current = entered;
      try {
        current.node ??= await this.#enter(session, current.prefix, retry);
        if (await this.#waitForTurn(session, current.node, signal)) {
          this.#logger.info('became leader', { election: this.path, node: current.node, identifier: this.identifier });
          return this.#lead(session, current.node);
        }
        delete current.node; // it vanished: enter again
      } catch (error) {
        if (signal?.aborted === true) {
          const node = current.node ?? (await this.#find(session, current.prefix).catch(() => undefined));
          if (node !== undefined) await session.remove(`${this.path}/${node}`).catch(() => undefined);
          throw signal.reason instanceof Error ? signal.reason : error;
        }
        if (!isZkError(error) || !(error.retryable || error.code === 'SESSION_EXPIRED' || error.code === 'SESSION_LOST')) {
          throw error;
        }
      }
    }
  }

  /** Identifiers of all contenders, the leader first (kazoo's contenders()). */
  async contenders(): Promise<string[]> {
    const names = await this.#sortedContenders();
    const identifiers = await Promise.all(
      names.map(async (name) => {
        try {
          return (await this.#client.getData(`${this.path}/${name}`)).data.toString('utf8');
        } catch (error) {
          if (isZkError(error, 'NO_NODE')) return undefined;
          throw error;
        }
      }),
    );
    return identifiers.filter((identifier): identifier is string => identifier !== undefined);
  }

  /**
   * Creates our node, or finds it after a connection loss hid whether the create happened (the reason
   * kazoo, after Curator, prefixes the name with a uuid).
   */
  async #enter(session: ZkSession, prefix: string, lookFirst: boolean): Promise<string> {
    await session.mkdirp(this.path);
    if (lookFirst) {
      const existing = await this.#find(session, prefix);
      if (existing !== undefined) return existing;
    }
    try {
      const created = await session.create(`${this.path}/${prefix}`, Buffer.from(this.identifier, 'utf8'), 'ephemeral-sequential');
      return created.slice(this.path.length + 1);
    } catch (error) {
      if (!isZkError(error, 'CONNECTION_LOSS')) throw error;
      await this.#client.waitForConnected();
      const existing = await this.#find(session, prefix);
      if (existing !== undefined) return existing;
      throw error;
    }
  }

  async #find(session: ZkSession, prefix: string): Promise<string | undefined> {
    return (await session.getChildren(this.path)).find((child) => child.startsWith(prefix));
  }

  /** True once `node` is the first contender; false if it vanished (start over). */
  async #waitForTurn(session: ZkSession, node: string, signal: AbortSignal | undefined): Promise<boolean> {
    for (;;) {
      signal?.throwIfAborted();
      const contenders = await this.#sortedContenders(session);
      const position = contenders.indexOf(node);
      if (position === -1) return false;
      if (position === 0) return true;
      const predecessor = contenders[position - 1];
      if (predecessor === undefined) return true;
      await this.#waitForDeletion(session, `${this.path}/${predecessor}`, signal);
    }
  }

  #waitForDeletion(session: ZkSession, path: string, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const stop = (error?: unknown): void => {
        signal?.removeEventListener('abort', onAbort);
        session.signal.removeEventListener('abort', onLost);
        if (error === undefined) resolve();
        else reject(toError(error));
      };
      const onAbort = (): void => {
        stop(signal?.reason ?? new Error('aborted'));
      };
      const onLost = (): void => {
        stop(session.signal.reason);
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      session.signal.addEventListener('abort', onLost, { once: true });
      session
        .exists(path, () => {
          stop();
        })
        .then((stat) => {
          if (stat === undefined) stop();
        }, stop);
    });
  }

  async #sortedContenders(session?: ZkSession): Promise<string[]> {
    const children = await (session ?? this.#client).getChildren(this.path).catch((error: unknown) => {
      if (isZkError(error, 'NO_NODE')) return [];
      throw error;
    });
    return children
      .map((name) => ({ name, match: CONTENDER.exec(name) }))
      .filter((entry): entry is { name: string; match: RegExpExecArray } => entry.match !== null)
      .sort((a, b) => compareText(a.match[1] ?? '', b.match[1] ?? ''))
      .map((entry) => entry.name);
  }

  #lead(session: ZkSession, node: string): Leadership {
    const lost = new AbortController();
    setMaxListeners(0, lost.signal);
    const nodePath = `${this.path}/${node}`;
    let graceTimer: NodeJS.Timeout | undefined;
    // close() ends the session before it asks the server to drop our node: abort then, not after the
    // client reports CLOSED, by which time another contender may already lead.
    const onSessionEnd = (): void => {
      const reason: unknown = session.signal.reason;
      lose(isZkError(reason, 'CLOSED') ? 'session closed' : 'session ended', reason);
    };
    const lose = (reason: string, cause?: unknown): void => {
      if (lost.signal.aborted) return;
      if (graceTimer !== undefined) clearTimeout(graceTimer);
      unsubscribe();
      session.signal.removeEventListener('abort', onSessionEnd);
      if (reason === RESIGNED) this.#logger.info('resigned leadership', { election: this.path, node });
      else this.#logger.warn('leadership lost', { election: this.path, node, reason });
      lost.abort(new ZkError('SESSION_LOST', `leadership of ${this.path} lost: ${reason}`, { cause }));
      // Our node may outlive the lost leadership (suspended session that recovers): remove it so we do
      // not block the election; if the session is already gone so is the node.
      session.remove(nodePath).catch(() => undefined);
    };
    const unsubscribe = this.#client.onStateChange((change: ClientStateChange) => {
      if (change.session !== session && change.state !== 'CLOSED') return;
      if (change.state === 'LOST' || change.state === 'CLOSED') lose(`session ${change.state.toLowerCase()}`, change.reason);
      else if (change.state === 'SUSPENDED') {
        graceTimer = setTimeout(() => {
          lose(`suspended longer than ${String(this.#graceMs)} ms`);
        }, this.#graceMs);
      } else if (change.state === 'CONNECTED') {
        if (graceTimer !== undefined) clearTimeout(graceTimer);
        graceTimer = undefined;
        // A watch whose exists() was cut off by the connection loss was never set: check and set it again.
        watchNode();
      }
    });
    // One watcher function, so that setting the watch again does not stack listeners.
    const onNodeEvent = (event: WatchEvent): void => {
      if (event.type === 'deleted') lose('its election node was deleted');
      else watchNode();
    };
    const watchNode = (): void => {
      if (lost.signal.aborted) return;
      session.exists(nodePath, onNodeEvent).then(
        (stat) => {
          if (stat === undefined) lose('its election node was deleted');
        },
        (error: unknown) => {
          if (isZkError(error, 'CONNECTION_LOSS')) return; // set again by the state listener on reconnection
          lose('its election node could not be watched', error);
        },
      );
    };
    watchNode();
    session.signal.addEventListener('abort', onSessionEnd, { once: true });
    if (session.isEnded) lose('session ended');
    return {
      signal: lost.signal,
      node,
      session,
      resign: async () => {
        lose(RESIGNED);
        await session.remove(nodePath).catch((error: unknown) => {
          if (!isZkError(error, 'NO_NODE', 'SESSION_EXPIRED', 'SESSION_LOST', 'CLOSED')) throw error;
        });
      },
    };
  }
}

function compareText(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}
