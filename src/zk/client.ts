/**
 * The long-lived ZooKeeper client every daemon holds. It keeps one live ZkSession at a time and tells
 * callers where they stand:
 *   CONNECTING -> CONNECTED -> SUSPENDED -> CONNECTED (same session: "reconnected")
 *                           -> SUSPENDED -> LOST -> CONNECTING -> CONNECTED (a new session)
 *   any -> CLOSED
 * SUSPENDED means the connection dropped but the session may still live; LOST means it is over (the
 * server expired it, or its lease ran out: no request answered for the session timeout less a margin,
 * after which the server may expire it at any moment, session-lease.ts) and its ephemeral nodes are
 * gone or about to go. After LOST a fresh session is built: node-zookeeper-client cannot
 * be reused after expiry.
 */
import { ZkError } from './errors.js';
import { parseConnectionString, type ParsedConnectionString } from './connection-string.js';
import { livenessTimings } from './liveness.js';
import { ZkSession, type SessionEvent } from './session.js';
import type { AclEntry, AclPolicy, CreateModeName, DigestAuth, MultiOp, MultiResult, NodeStat, Watcher } from './types.js';
import { silentLogger, type Logger } from '../util/logger.js';

export type ClientState = 'CONNECTING' | 'CONNECTED' | 'SUSPENDED' | 'LOST' | 'CLOSED';

export interface ClientStateChange {
  readonly state: ClientState;
  readonly previous: ClientState;
  /** The session this change is about (for LOST: the one that was lost). */
  readonly session: ZkSession;
  /** True for CONNECTED after SUSPENDED within the same session. */
  readonly reconnected: boolean;
  readonly reason?: ZkError;
}

export interface ZkClientOptions {
  /** `host:port[,host:port...][/chroot]` */
  readonly connectionString: string;
  /** Asked of the server, which bounds it by its min/max (2x and 20x tickTime). Default 10 s. */
  readonly sessionTimeoutMs?: number;
  /** How long connect() waits for a first session before failing. Default 30 s. */
  readonly connectTimeoutMs?: number;
  readonly auth?: DigestAuth;
  /**
   * ACL of created nodes; 'creator-all' needs `auth`. Default 'creator-all' with `auth` (credentials
   * are given to keep others out: nodes open to anyone would defeat them), else 'open' (kazoo's default).
   */
  readonly acl?: AclPolicy;
  /** Create the chroot path if it is missing. Default true. */
  readonly createChroot?: boolean;
  readonly logger?: Logger;
  /**
   * Stops connect() waiting for a first session: the client is closed and connect() rejects with the
   * signal's reason (a daemon stopping while ZooKeeper is out of reach).
   */
  readonly signal?: AbortSignal;
}

interface ResolvedOptions {
  readonly parsed: ParsedConnectionString;
  readonly connectionString: string;
  readonly sessionTimeoutMs: number;
  readonly connectTimeoutMs: number;
  readonly auth: DigestAuth | undefined;
  readonly acl: AclPolicy;
  readonly createChroot: boolean;
  readonly logger: Logger;
}

function resolveOptions(options: ZkClientOptions): ResolvedOptions {
  const parsed = parseConnectionString(options.connectionString);
  const sessionTimeoutMs = options.sessionTimeoutMs ?? 10_000;
  if (!Number.isInteger(sessionTimeoutMs) || sessionTimeoutMs < 1000) {
    throw new Error(`ZooKeeper session timeout must be an integer >= 1000 ms, got ${String(options.sessionTimeoutMs)}`);
  }
  const acl = options.acl ?? (options.auth === undefined ? 'open' : 'creator-all');
  if (acl === 'creator-all' && options.auth === undefined) {
    throw new Error('ZooKeeper ACL "creator-all" needs digest credentials (auth) to identify the creator');
  }
  if (options.auth !== undefined && !/^[^:]+:.+$/.test(options.auth.credentials)) {
    throw new Error('ZooKeeper digest credentials must have the form user:password');
  }
  return Object.freeze({
    parsed,
    connectionString: options.connectionString.trim(),
    sessionTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs ?? 30_000,
    auth: options.auth,
    acl,
    createChroot: options.createChroot ?? true,
    logger: options.logger ?? silentLogger,
  });
}

export class ZkClient {
  readonly #options: ResolvedOptions;
  readonly #listeners = new Set<(change: ClientStateChange) => void>();
  #state: ClientState = 'CONNECTING';
  #session: ZkSession;
  #suspendedTimer: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;

  private constructor(options: ResolvedOptions) {
    this.#options = options;
    this.#session = this.#openSession(options.connectionString);
  }

  /** Connects and resolves once the first session is established, or fails after connectTimeoutMs. */
  static async connect(options: ZkClientOptions): Promise<ZkClient> {
    const resolved = resolveOptions(options);
    const stop = options.signal;
    stop?.throwIfAborted();
    if (resolved.parsed.chroot !== undefined && resolved.createChroot) {
      await ZkClient.#ensureChroot(resolved, stop);
    }
    const client = new ZkClient(resolved);
    try {
      await client.waitForConnected(waitSignal(resolved, stop));
    } catch (error) {
      await client.close();
      if (stop?.aborted === true) throw stop.reason;
      throw connectFailure(resolved, error);
    }
    return client;
  }

  static async #ensureChroot(options: ResolvedOptions, stop: AbortSignal | undefined): Promise<void> {
    const chroot = options.parsed.chroot;
    if (chroot === undefined) return;
    const bootstrap = new ZkClient({
      ...options,
      connectionString: options.parsed.hosts,
      parsed: { ...options.parsed, chroot: undefined },
    });
    try {
      await bootstrap.waitForConnected(waitSignal(options, stop));
      await bootstrap.mkdirp(chroot);
    } catch (error) {
      if (stop?.aborted === true) throw stop.reason;
      throw connectFailure(options, error);
    } finally {
      await bootstrap.close();
    }
  }

  get state(): ClientState {
    return this.#state;
  }

  /** The current session; recipes keep it to fence their operations to the session that made them. */
  get session(): ZkSession {
    return this.#session;
  }

  get sessionTimeoutMs(): number {
    return this.#options.sessionTimeoutMs;
  }

  get logger(): Logger {
    return this.#options.logger;
  }

  onStateChange(listener: (change: ClientStateChange) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Resolves with the session once CONNECTED; rejects if the client closes or `signal` aborts. */
  waitForConnected(signal?: AbortSignal): Promise<ZkSession> {
    if (this.#state === 'CONNECTED') return Promise.resolve(this.#session);
    if (this.#state === 'CLOSED') return Promise.reject(new ZkError('CLOSED', 'ZooKeeper client is closed'));
    return new Promise((resolve, reject) => {
      const onAbort = (): void => {
        unsubscribe();
        reject(signal?.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      const unsubscribe = this.onStateChange((change) => {
        if (change.state === 'CONNECTED') {
          unsubscribe();
          signal?.removeEventListener('abort', onAbort);
          resolve(change.session);
        } else if (change.state === 'CLOSED') {
          unsubscribe();
          signal?.removeEventListener('abort', onAbort);
          reject(change.reason ?? new ZkError('CLOSED', 'ZooKeeper client is closed'));
        }
      });
      if (signal?.aborted === true) onAbort();
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  create(path: string, data?: Buffer, mode?: CreateModeName): Promise<string> {
    return this.#session.create(path, data, mode);
  }

  remove(path: string, version?: number): Promise<void> {
    return this.#session.remove(path, version);
  }

  getData(path: string, watcher?: Watcher): Promise<{ data: Buffer; stat: NodeStat }> {
    return this.#session.getData(path, watcher);
  }

  setData(path: string, data: Buffer, version?: number): Promise<NodeStat> {
    return this.#session.setData(path, data, version);
  }

  exists(path: string, watcher?: Watcher): Promise<NodeStat | undefined> {
    return this.#session.exists(path, watcher);
  }

  getChildren(path: string, watcher?: Watcher): Promise<string[]> {
    return this.#session.getChildren(path, watcher);
  }

  getAcl(path: string): Promise<AclEntry[]> {
    return this.#session.getAcl(path);
  }

  mkdirp(path: string): Promise<void> {
    return this.#session.mkdirp(path);
  }

  multi(ops: readonly MultiOp[]): Promise<MultiResult[]> {
    return this.#session.multi(ops);
  }

  /** Closes the session (its ephemeral nodes go at once) and stops reconnecting. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#clearSuspendedTimer();
    const session = this.#session;
    const previous = this.#state;
    this.#state = 'CLOSED';
    await session.close();
    this.#emit({ state: 'CLOSED', previous, session, reconnected: false, reason: new ZkError('CLOSED', 'ZooKeeper client closed') });
  }

  #openSession(connectionString: string): ZkSession {
    const session = ZkSession.open({
      connectionString,
      sessionTimeoutMs: this.#options.sessionTimeoutMs,
      auth: this.#options.auth,
      acl: this.#options.acl,
      logger: this.#options.logger,
      timings: livenessTimings(this.#options.sessionTimeoutMs),
    });
    session.onEvent((event) => {
      this.#onSessionEvent(session, event);
    });
    return session;
  }

  #onSessionEvent(session: ZkSession, event: SessionEvent): void {
    if (session !== this.#session || this.#state === 'CLOSED') return;
    switch (event.type) {
      case 'connected':
      case 'reconnected':
        this.#clearSuspendedTimer();
        this.#transition('CONNECTED', session, event.type === 'reconnected');
        break;
      case 'suspended':
        this.#transition('SUSPENDED', session, false);
        this.#startSuspendedTimer(session);
        break;
      case 'ended':
        this.#onSessionEnded(session, event.reason);
        break;
    }
  }

  #onSessionEnded(session: ZkSession, reason: ZkError | undefined): void {
    this.#clearSuspendedTimer();
    if (reason?.code === 'AUTH_FAILED') {
      this.#state = 'CLOSED';
      this.#emit({ state: 'CLOSED', previous: 'CONNECTING', session, reconnected: false, reason });
      return;
    }
    this.#transition('LOST', session, false, reason);
    if (this.#state !== 'LOST') return; // a listener closed the client
    this.#session = this.#openSession(this.#options.connectionString);
    this.#transition('CONNECTING', this.#session, false);
  }

  /**
   * Once cut off for a whole session timeout the server has expired the session (it times out from
   * the last message it heard, which is earlier still), so declare it lost rather than let recipes act
   * on ephemeral nodes that are gone. The session's lease (session-lease.ts) ends it earlier whenever
   * a request was ever answered; this remains for a session suspended before any was.
   */
  #startSuspendedTimer(session: ZkSession): void {
    this.#clearSuspendedTimer();
    const timeoutMs = session.negotiatedTimeoutMs;
    this.#suspendedTimer = setTimeout(() => {
      session.end(new ZkError('SESSION_LOST', `ZooKeeper unreachable for the whole session timeout (${String(timeoutMs)} ms)`));
    }, timeoutMs);
    this.#suspendedTimer.unref();
  }

  #clearSuspendedTimer(): void {
    if (this.#suspendedTimer !== undefined) clearTimeout(this.#suspendedTimer);
    this.#suspendedTimer = undefined;
  }

  #transition(state: ClientState, session: ZkSession, reconnected: boolean, reason?: ZkError): void {
    const previous = this.#state;
    if (previous === state && !reconnected) return;
    this.#state = state;
    this.#options.logger.info(`zookeeper ${state.toLowerCase()}`, {
      previous,
      sessionId: session.sessionId,
      server: session.server,
      ...(reason === undefined ? {} : { reason: reason.message }),
    });
    this.#emit(reason === undefined ? { state, previous, session, reconnected } : { state, previous, session, reconnected, reason });
  }

  #emit(change: ClientStateChange): void {
    for (const listener of [...this.#listeners]) {
      try {
        listener(change);
      } catch (error) {
        this.#options.logger.error('zookeeper state listener failed', { error, state: change.state });
      }
    }
  }
}

/** The connect timeout, cut short by the caller's signal when there is one. */
function waitSignal(options: ResolvedOptions, stop: AbortSignal | undefined): AbortSignal {
  const timeout = AbortSignal.timeout(options.connectTimeoutMs);
  return stop === undefined ? timeout : AbortSignal.any([timeout, stop]);
}

function connectFailure(options: ResolvedOptions, error: unknown): ZkError {
  if (error instanceof ZkError && error.code === 'AUTH_FAILED') return error;
  const detail = error instanceof Error ? error.message : String(error);
  return new ZkError(
    'CONNECT_TIMEOUT',
    `could not connect to ZooKeeper at ${options.parsed.hosts} within ${String(options.connectTimeoutMs)} ms (${detail})`,
    { cause: error },
  );
}
