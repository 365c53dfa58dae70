/**
 * The one place that reaches into node-zookeeper-client's private state. The client has defects that
 * its public API cannot fix (docs/zookeeper.md): it never notices a frozen server, can hang in CONNECTING,
 * crashes on close() during a handshake and on error codes it does not know. Fixing them needs the
 * socket and the connection state, which are parsed here from `unknown` so a client upgrade that
 * changes them fails loudly at start rather than silently.
 */
import { createRequire } from 'node:module';
import { Socket } from 'node:net';
import type { Client } from 'node-zookeeper-client';
import { zkErrorNameOf } from './errors.js';

/** ConnectionManager.STATES of node-zookeeper-client 1.1.x. */
export const CONNECTION_STATE = {
  DISCONNECTED: 0,
  CONNECTING: 1,
  CONNECTED: 2,
  CONNECTED_READ_ONLY: 3,
  CLOSING: -1,
  CLOSED: -2,
  SESSION_EXPIRED: -3,
  AUTHENTICATION_FAILED: -4,
} as const;

export interface ConnectionInternals {
  /** The connection manager's state number (see CONNECTION_STATE). */
  state(): number;
  /** The socket of the current or last connection attempt, if one was made. */
  socket(): Socket | undefined;
  /** Drops the current TCP connection; the client reconnects to the next server keeping its session. */
  dropConnection(): void;
  /**
   * Ends the client without a CLOSE_SESSION request. Used when close() is unsafe (not connected):
   * in CLOSING the client neither retries nor treats a late handshake reply as a session.
   */
  abandon(): void;
}

interface ConnectionManagerShape {
  state: unknown;
  socket?: unknown;
  setState: (state: number) => void;
  connectTimeoutHandler?: unknown;
}

function isConnectionManager(value: unknown): value is ConnectionManagerShape {
  return typeof value === 'object' && value !== null && 'state' in value && 'setState' in value && typeof value.setState === 'function';
}

export function connectionInternals(client: Client): ConnectionInternals {
  const manager: unknown = Reflect.get(client, 'connectionManager');
  if (!isConnectionManager(manager)) {
    throw new Error('node-zookeeper-client has no connectionManager with state/setState: unsupported version');
  }
  const socket = (): Socket | undefined => (manager.socket instanceof Socket ? manager.socket : undefined);
  return {
    state: () => (typeof manager.state === 'number' ? manager.state : CONNECTION_STATE.DISCONNECTED),
    socket,
    dropConnection: () => {
      socket()?.destroy();
    },
    abandon: () => {
      manager.setState(CONNECTION_STATE.CLOSING);
      const timer = manager.connectTimeoutHandler;
      if (timer !== undefined && timer !== null) clearTimeout(timer as NodeJS.Timeout);
      socket()?.destroy();
    },
  };
}

interface ExceptionModuleShape {
  create: (code: number, path?: string) => unknown;
}

function isExceptionModule(value: unknown): value is ExceptionModuleShape {
  return (
    (typeof value === 'function' || typeof value === 'object') && value !== null && 'create' in value && typeof value.create === 'function'
  );
}

const PATCHED = Symbol.for('zk-job-engine.unknown-codes-patched');

/**
 * node-zookeeper-client throws "Unknown code" from inside its socket handler for codes newer than it
 * (THROTTLED_OP, SESSION_MOVED, ...), which kills the process. Replacing its factory makes such a
 * reply an ordinary failed request carrying the numeric code, which toZkError then names.
 * Idempotent: the module object is shared by every client in the process.
 */
export function tolerateUnknownErrorCodes(): void {
  const require = createRequire(import.meta.url);
  const exceptionModule: unknown = require('node-zookeeper-client/lib/Exception.js');
  if (!isExceptionModule(exceptionModule)) {
    throw new Error('node-zookeeper-client/lib/Exception.js has no create(): unsupported version');
  }
  if (Reflect.get(exceptionModule, PATCHED) === true) return;
  const original = exceptionModule.create.bind(exceptionModule);
  // The library's own callers call getCode() and getName() on what create() returns, so the
  // replacement must be an instance of its Exception class, built without the validating constructor.
  const prototype: unknown = Reflect.get(exceptionModule, 'prototype');
  exceptionModule.create = (code: number, path?: string): unknown => {
    try {
      return original(code, path);
    } catch {
      const name = zkErrorNameOf(code) ?? 'UNKNOWN';
      const exception: unknown = Object.create(typeof prototype === 'object' ? prototype : Error.prototype);
      return Object.assign(exception as object, {
        code,
        name,
        path,
        message: `Exception: ${name}[${String(code)}]${path === undefined ? '' : `@${path}`}`,
        stack: new Error(`ZooKeeper error ${name}[${String(code)}]`).stack,
      });
    }
  };
  Reflect.set(exceptionModule, PATCHED, true);
}

interface ConnectionManagerClass {
  prototype: { onPacketQueueReadable: (this: unknown) => void };
}

function isConnectionManagerClass(value: unknown): value is ConnectionManagerClass {
  if (typeof value !== 'function') return false;
  const prototype: unknown = Reflect.get(value, 'prototype');
  return typeof prototype === 'object' && prototype !== null && typeof Reflect.get(prototype, 'onPacketQueueReadable') === 'function';
}

const CORKED = Symbol('zk-job-engine.corked');

/**
 * node-zookeeper-client writes every request with its own socket.write(), one syscall each; with many
 * slots in flight that was the client's largest cost (13% of CPU in the queue benchmark). Corking the
 * socket until the end of the tick sends all requests queued in one tick with a single writev.
 * Must run before clients are created: the client binds the method when it is constructed.
 */
export function batchSocketWrites(): void {
  const require = createRequire(import.meta.url);
  const managerClass: unknown = require('node-zookeeper-client/lib/ConnectionManager.js');
  if (!isConnectionManagerClass(managerClass)) {
    throw new Error('node-zookeeper-client/lib/ConnectionManager.js has no onPacketQueueReadable: unsupported version');
  }
  const prototype = managerClass.prototype;
  if (Reflect.get(prototype, PATCHED) === true) return;
  const original = prototype.onPacketQueueReadable;
  prototype.onPacketQueueReadable = function (this: unknown): void {
    const socket: unknown = typeof this === 'object' && this !== null ? Reflect.get(this, 'socket') : undefined;
    if (socket instanceof Socket && !socket.destroyed && Reflect.get(socket, CORKED) !== true) {
      Reflect.set(socket, CORKED, true);
      socket.cork();
      process.nextTick(() => {
        Reflect.set(socket, CORKED, false);
        socket.uncork();
      });
    }
    original.call(this);
  };
  Reflect.set(prototype, PATCHED, true);
}
