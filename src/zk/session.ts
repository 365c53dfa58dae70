/**
 * One ZooKeeper session: a node-zookeeper-client instance from its first handshake until it expires,
 * is closed, or is given up. Recipes keep a reference to the session that created their ephemeral
 * nodes and issue fenced operations (consume, release, resign) through it: once the session is over,
 * those fail with SESSION_LOST instead of acting through a newer session.
 */
import { ACL, Id, Permission, createClient, type Client } from 'node-zookeeper-client';
import { setMaxListeners } from 'node:events';
import { setInterval as everyInterval } from 'node:timers';
import { ZkError, toZkError } from './errors.js';
import { batchSocketWrites, connectionInternals, tolerateUnknownErrorCodes, type ConnectionInternals } from './client-internals.js';
import { liveness, type LivenessTimings } from './liveness.js';
import { SessionLease, leaseMarginMs, monotonicNow } from './session-lease.js';
import { toNodeStat, toWatchEvent } from './stat.js';
import {
  CREATE_MODE_NUMBER,
  type AclEntry,
  type AclPolicy,
  type CreateModeName,
  type DigestAuth,
  type MultiOp,
  type MultiResult,
  type NodeStat,
  type Watcher,
} from './types.js';
import type { Logger } from '../util/logger.js';

export type SessionEventType = 'connected' | 'suspended' | 'reconnected' | 'ended';

export interface SessionEvent {
  readonly type: SessionEventType;
  readonly sessionId: string;
  /** Why an ended session ended. */
  readonly reason?: ZkError;
}

export interface ZkSessionOptions {
  /** Servers and optional chroot, already validated. */
  readonly connectionString: string;
  readonly sessionTimeoutMs: number;
  readonly auth: DigestAuth | undefined;
  readonly acl: AclPolicy;
  readonly logger: Logger;
  readonly timings: LivenessTimings;
}

interface PendingOperation {
  readonly reject: (error: ZkError) => void;
}

const NO_SESSION = '0000000000000000';

/** What holders of the session's items may ask of its lease (session-lease.ts). */
export interface LeaseView {
  /** When the lease ends, in monotonic ms (`performance.now()`); undefined until a request was answered. */
  readonly expiresAt: number | undefined;
  /** Send time (monotonic ms) of the last request the server answered; undefined until one was. */
  readonly renewedAt: number | undefined;
  /** How long the lease still runs; 0 once it has ended or before it was ever confirmed. */
  remainingMs(now?: number): number;
}

export class ZkSession {
  readonly #client: Client;
  readonly #internals: ConnectionInternals;
  readonly #options: ZkSessionOptions;
  readonly #acl: ACL[];
  readonly #ended = new AbortController();
  readonly #pending = new Set<PendingOperation>();
  readonly #listeners = new Set<(event: SessionEvent) => void>();
  /** One adapter per watcher, so re-registering the same watcher does not stack listeners in the client. */
  readonly #adaptedWatchers = new WeakMap<Watcher, (event: unknown) => void>();
  readonly #ticker: NodeJS.Timeout;
  readonly #lease: SessionLease;
  #everConnected = false;
  #connected = false;
  #closing = false;

  private constructor(options: ZkSessionOptions) {
    tolerateUnknownErrorCodes();
    batchSocketWrites();
    // Every item taken on the session follows this signal (an executor has one listener per running job).
    setMaxListeners(0, this.#ended.signal);
    this.#options = options;
    this.#acl =
      options.acl === 'creator-all' ? [new ACL(Permission.ALL, new Id('auth', ''))] : [new ACL(Permission.ALL, new Id('world', 'anyone'))];
    this.#client = createClient(options.connectionString, {
      sessionTimeout: options.sessionTimeoutMs,
      spinDelay: Math.min(1000, Math.max(50, Math.floor(options.sessionTimeoutMs / 10))),
      retries: 0,
    });
    this.#internals = connectionInternals(this.#client);
    // Ends the session before the server can expire it, so its holders stop acting as owners while the
    // server still counts them as such (docs/contracts.md, invariant 2).
    this.#lease = new SessionLease(
      () => this.negotiatedTimeoutMs,
      () => {
        const timeoutMs = this.negotiatedTimeoutMs;
        this.end(
          new ZkError(
            'SESSION_LOST',
            `ZooKeeper session ${this.sessionId} unconfirmed for its lease (session timeout ${String(timeoutMs)} ms less a ${String(leaseMarginMs(timeoutMs))} ms margin): the server may expire it`,
          ),
        );
      },
    );
    if (options.auth !== undefined) {
      this.#client.addAuthInfo(options.auth.scheme, Buffer.from(options.auth.credentials));
    }
    this.#client.on('connected', () => {
      this.#onConnected();
    });
    this.#client.on('disconnected', () => {
      this.#onDisconnected();
    });
    this.#client.on('expired', () => {
      this.end(new ZkError('SESSION_EXPIRED', `ZooKeeper session ${this.sessionId} expired`));
    });
    this.#client.on('authenticationFailed', () => {
      this.end(new ZkError('AUTH_FAILED', 'ZooKeeper rejected the digest credentials'));
    });
    const watchdog = liveness(this.#internals, options.timings, options.logger, () => this.#probe());
    this.#ticker = everyInterval(watchdog, options.timings.tickMs);
    this.#ticker.unref();
    this.#client.connect();
  }

  /** Starts connecting; the session reports 'connected' (or 'ended') through onEvent. */
  static open(options: ZkSessionOptions): ZkSession {
    return new ZkSession(options);
  }

  /** Aborted when the session is over; its reason is the ZkError that ended it. */
  get signal(): AbortSignal {
    return this.#ended.signal;
  }

  /** Until when this process may act on what the session holds (session-lease.ts). */
  get lease(): LeaseView {
    return this.#lease;
  }

  get isEnded(): boolean {
    return this.#ended.signal.aborted;
  }

  get isConnected(): boolean {
    return this.#connected && !this.isEnded;
  }

  get sessionId(): string {
    return this.#everConnected ? this.#client.getSessionId().toString('hex') : NO_SESSION;
  }

  /** The timeout the server granted, which may differ from the one asked for. */
  get negotiatedTimeoutMs(): number {
    return this.#client.getSessionTimeout();
  }

  /** `host:port` of the server this session is talking to now, if connected. */
  get server(): string | undefined {
    const socket = this.#internals.socket();
    if (!this.isConnected || socket?.remoteAddress === undefined) return undefined;
    return `${socket.remoteAddress}:${String(socket.remotePort)}`;
  }

  onEvent(listener: (event: SessionEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Ends the session at once: in-flight operations fail with `reason` and the client is given up. */
  end(reason: ZkError): void {
    if (this.isEnded) return;
    const wasConnected = this.#connected;
    this.#connected = false;
    clearInterval(this.#ticker);
    this.#lease.end();
    this.#ended.abort(reason);
    for (const operation of this.#pending) operation.reject(reason);
    this.#pending.clear();
    // close() is only safe on a connected client (docs/zookeeper.md); otherwise abandon it.
    if (wasConnected && reason.code === 'CLOSED') this.#client.close();
    else this.#internals.abandon();
    this.#emit({ type: 'ended', sessionId: this.sessionId, reason });
  }

  /**
   * Closes the session so its ephemeral nodes go at once. Waits for the server to confirm, at most
   * `timeoutMs`; a session that is not connected is given up instead (it then expires on the server).
   */
  async close(timeoutMs = 2000): Promise<void> {
    if (this.isEnded || this.#closing) return;
    this.#closing = true;
    if (!this.isConnected) {
      this.end(new ZkError('CLOSED', 'ZooKeeper session closed before it connected'));
      return;
    }
    const disconnected = new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs);
      this.#client.once('disconnected', () => {
        clearTimeout(timer);
        resolve();
      });
    });
    this.end(new ZkError('CLOSED', `ZooKeeper session ${this.sessionId} closed`));
    await disconnected;
  }

  create(path: string, data: Buffer | undefined, mode: CreateModeName = 'persistent'): Promise<string> {
    return this.#call<string>('create', path, (done) => {
      this.#client.create(path, data ?? Buffer.alloc(0), this.#acl, CREATE_MODE_NUMBER[mode], (error, created) => {
        done(error, created);
      });
    });
  }

  remove(path: string, version = -1): Promise<void> {
    return this.#call<undefined>('remove', path, (done) => {
      this.#client.remove(path, version, (error) => {
        done(error, undefined);
      });
    });
  }

  getData(path: string, watcher?: Watcher): Promise<{ data: Buffer; stat: NodeStat }> {
    return this.#call('getData', path, (done) => {
      const callback = (error: unknown, data: unknown, stat: unknown): void => {
        done(error, { data: Buffer.isBuffer(data) ? data : Buffer.alloc(0), stat: toNodeStat(stat) });
      };
      if (watcher === undefined) this.#client.getData(path, callback);
      else this.#client.getData(path, this.#adaptWatcher(watcher), callback);
    });
  }

  setData(path: string, data: Buffer, version = -1): Promise<NodeStat> {
    return this.#call('setData', path, (done) => {
      this.#client.setData(path, data, version, (error, stat) => {
        done(error, toNodeStat(stat));
      });
    });
  }

  /** The node's stat, or undefined when it does not exist (a watch is then set on its creation). */
  exists(path: string, watcher?: Watcher): Promise<NodeStat | undefined> {
    return this.#call('exists', path, (done) => {
      const callback = (error: unknown, stat: unknown): void => {
        done(error, stat === null || stat === undefined ? undefined : toNodeStat(stat));
      };
      if (watcher === undefined) this.#client.exists(path, callback);
      else this.#client.exists(path, this.#adaptWatcher(watcher), callback);
    });
  }

  getChildren(path: string, watcher?: Watcher): Promise<string[]> {
    return this.#call('getChildren', path, (done) => {
      const callback = (error: unknown, children: unknown): void => {
        done(error, Array.isArray(children) ? children.filter((c): c is string => typeof c === 'string') : []);
      };
      if (watcher === undefined) this.#client.getChildren(path, callback);
      else this.#client.getChildren(path, this.#adaptWatcher(watcher), callback);
    });
  }

  /** The node's ACL (needs READ or ADMIN on it). */
  getAcl(path: string): Promise<AclEntry[]> {
    return this.#call('getAcl', path, (done) => {
      this.#client.getACL(path, (error, acls) => {
        done(
          error,
          (Array.isArray(acls) ? acls : []).map((acl) => ({ scheme: acl.id.scheme, id: acl.id.id, perms: acl.perms })),
        );
      });
    });
  }

  /** Creates the path and any missing parents (persistent); an existing path is fine. */
  mkdirp(path: string): Promise<void> {
    return this.#call<undefined>('mkdirp', path, (done) => {
      this.#client.mkdirp(path, this.#acl, (error) => {
        done(error, undefined);
      });
    });
  }

  /**
   * Runs the operations as one transaction. On failure the ZkError names the first failing operation
   * (`failedOp`), as the server reports it.
   */
  multi(ops: readonly MultiOp[]): Promise<MultiResult[]> {
    const firstPath = ops[0]?.path;
    return this.#call<MultiResult[]>('multi', firstPath, (done) => {
      const transaction = this.#client.transaction();
      for (const op of ops) {
        switch (op.op) {
          case 'create':
            transaction.create(op.path, op.data ?? Buffer.alloc(0), this.#acl, CREATE_MODE_NUMBER[op.mode ?? 'persistent']);
            break;
          case 'remove':
            transaction.remove(op.path, op.version ?? -1);
            break;
          case 'set':
            transaction.setData(op.path, op.data, op.version ?? -1);
            break;
          case 'check':
            transaction.check(op.path, op.version);
            break;
        }
      }
      transaction.commit((error: unknown, results: unknown) => {
        if (error !== null && error !== undefined) {
          done(withFailedOp(error, results, ops), []);
          return;
        }
        done(
          null,
          ops.map((op, index) => toMultiResult(op, Array.isArray(results) ? (results[index] as unknown) : undefined)),
        );
      });
    });
  }

  /**
   * A write barrier: a transaction goes through the leader, so once it returns the server this session
   * talks to has applied every write committed before it. node-zookeeper-client has no sync(); after
   * a connection loss this is how to read what a request whose reply was lost may have done.
   */
  async sync(): Promise<void> {
    await this.multi([{ op: 'check', path: '/', version: -1 }]);
  }

  #call<T>(operation: string, path: string | undefined, start: (done: (error: unknown, value: T) => void) => void): Promise<T> {
    if (this.isEnded) {
      const reason: unknown = this.#ended.signal.reason;
      return Promise.reject(reason instanceof ZkError ? reason : new ZkError('SESSION_LOST', `${operation}: session is over`));
    }
    return new Promise<T>((resolve, reject) => {
      const pending: PendingOperation = { reject };
      this.#pending.add(pending);
      // Taken before the request is handed to the client, so never later than it reaches the wire.
      const sentAt = monotonicNow();
      start((error, value) => {
        if (!this.#pending.delete(pending)) return;
        if (error !== null && error !== undefined) reject(toZkError(error, operation, path));
        else {
          this.#lease.confirm(sentAt);
          resolve(value);
        }
      });
    });
  }

  #adaptWatcher(watcher: Watcher): (event: unknown) => void {
    let adapted = this.#adaptedWatchers.get(watcher);
    if (adapted === undefined) {
      adapted = (raw) => {
        if (this.isEnded) return;
        const event = toWatchEvent(raw);
        if (event !== undefined) watcher(event);
      };
      this.#adaptedWatchers.set(watcher, adapted);
    }
    return adapted;
  }

  #probe(): Promise<unknown> {
    return this.exists('/');
  }

  #onConnected(): void {
    if (this.isEnded) return;
    this.#connected = true;
    const type: SessionEventType = this.#everConnected ? 'reconnected' : 'connected';
    this.#everConnected = true;
    this.#options.logger.debug(`zookeeper session ${type}`, { sessionId: this.sessionId, server: this.server });
    this.#emit({ type, sessionId: this.sessionId });
  }

  #onDisconnected(): void {
    if (this.isEnded || !this.#connected) return;
    this.#connected = false;
    this.#options.logger.debug('zookeeper session suspended', { sessionId: this.sessionId });
    this.#emit({ type: 'suspended', sessionId: this.sessionId });
  }

  #emit(event: SessionEvent): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.#options.logger.error('zookeeper session listener failed', { error, event: event.type });
      }
    }
  }
}

function withFailedOp(error: unknown, results: unknown, ops: readonly MultiOp[]): unknown {
  if (!Array.isArray(results)) return error;
  const index = results.findIndex(
    (result: unknown) =>
      typeof result === 'object' && result !== null && Reflect.get(result, 'err') !== 0 && Reflect.get(result, 'err') !== undefined,
  );
  const op = ops[index];
  if (op === undefined) return error;
  const cause = toZkError(error, `multi op ${String(index)} (${op.op})`, op.path);
  return new ZkError(cause.code, cause.message, { zkCode: cause.zkCode, path: op.path, cause: error, failedOp: index });
}

function toMultiResult(op: MultiOp, raw: unknown): MultiResult {
  if (op.op === 'create') {
    const created: unknown = typeof raw === 'object' && raw !== null ? Reflect.get(raw, 'path') : undefined;
    return { op: 'create', path: typeof created === 'string' ? created : op.path };
  }
  return { op: op.op };
}
