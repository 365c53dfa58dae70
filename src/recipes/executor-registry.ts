/**
 * Which executors are alive, so that a RUNNING job found in the queue again (a duplicate entry, or
 * an entry given back after its taker's session ended) can be told apart: its owner still runs it,
 * or its owner is dead and it must run again. Each executor keeps an ephemeral
 * `<queue>/executors/<name>` (our addition to Nuvla's layout) on its current session, and writes
 * itself into the jobs it claims as `<name>@<session id>`: the owner is alive exactly while that
 * node exists on that session.
 */
import { hostname } from 'node:os';
import { isZkError } from '../zk/errors.js';
import type { ZkClient } from '../zk/client.js';
import type { ZkSession } from '../zk/session.js';

export const EXECUTOR_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
const OWNER = /^([A-Za-z0-9][A-Za-z0-9_.:-]{0,127})@([0-9a-f]{16})$/;

/** The registration that holds a name: its session, and what it registered (undefined when unreadable). */
export interface NameHolder {
  readonly sessionId: string;
  readonly info: ExecutorInfo | undefined;
}

export class ExecutorNameInUseError extends Error {
  override readonly name = 'ExecutorNameInUseError';
  readonly code = 'executor-name-in-use';
  readonly executorName: string;
  readonly holder: NameHolder | undefined;

  constructor(executorName: string, holder: NameHolder | undefined) {
    super(`executor name "${executorName}" is held by a live executor (${describeHolder(holder)}); give each executor its own --name`);
    this.executorName = executorName;
    this.holder = holder;
  }
}

/** `host h, pid p, session s, started t`: what an operator needs to find the other process. */
export function describeHolder(holder: NameHolder | undefined): string {
  if (holder === undefined) return 'gone meanwhile';
  const { info, sessionId } = holder;
  if (info === undefined) return `session ${sessionId}, registration data unreadable`;
  return `host ${info.host}, pid ${info.pid}, session ${sessionId}, started ${info.started}`;
}

export interface ExecutorInfo {
  readonly host: string;
  readonly pid: number;
  readonly threads: number;
  readonly started: string;
  /** The queue consumer id it writes into the taken nodes: how an operator tells who holds an entry. */
  readonly consumerId?: string;
  /**
   * The actions it can run, by name. Undefined for an executor that does not say (an older version):
   * it may run anything, so other executors leave it every job they cannot run themselves.
   */
  readonly actions?: readonly string[];
  /** The queues it serves by name (queue-layout.ts); undefined for an older executor: the default queue only. */
  readonly queues?: readonly string[];
}

/** The owner string an executor writes into the jobs it claims. */
export function ownerOf(name: string, session: ZkSession): string {
  return `${name}@${session.sessionId}`;
}

export function parseOwner(owner: string): { name: string; sessionId: string } | undefined {
  const match = OWNER.exec(owner);
  return match?.[1] === undefined || match[2] === undefined ? undefined : { name: match[1], sessionId: match[2] };
}

/** `<host>-<pid>` made fit for a znode name. */
export function defaultExecutorName(): string {
  const host =
    hostname()
      .replace(/[^A-Za-z0-9_.:-]/g, '_')
      .replace(/^[^A-Za-z0-9]+/, '') || 'host';
  return `${host}-${process.pid}`;
}

export interface RegisteredExecutor {
  readonly name: string;
  readonly sessionId: string;
  /** Undefined when the node's data is not an executor's registration. */
  readonly info: ExecutorInfo | undefined;
}

/** A registration's data, from unknown JSON. */
export function parseInfo(data: Buffer): ExecutorInfo | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(data.toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { host, pid, threads, started, consumerId, actions, queues } = parsed as Record<string, unknown>;
  if (typeof host !== 'string' || typeof pid !== 'number' || typeof threads !== 'number' || typeof started !== 'string') return undefined;
  const actionNames = Array.isArray(actions) && actions.every((name) => typeof name === 'string') ? actions : undefined;
  return {
    host,
    pid,
    threads,
    started,
    ...(typeof consumerId === 'string' ? { consumerId } : {}),
    ...(actionNames === undefined ? {} : { actions: actionNames }),
    ...(Array.isArray(queues) && queues.every((name) => typeof name === 'string') ? { queues } : {}),
  };
}

export class ExecutorRegistry {
  readonly path: string;
  readonly #client: ZkClient;

  constructor(client: ZkClient, queueRoot: string) {
    this.#client = client;
    this.path = `${queueRoot}/executors`;
  }

  /**
   * Registers `name` on `session`. A node left by this executor's previous session is taken over; one
   * held by another live session means two executors were given the same name, which would make
   * each think the other's jobs are its own: refused.
   */
  async register(session: ZkSession, name: string, info: ExecutorInfo): Promise<void> {
    if (!EXECUTOR_NAME.test(name)) throw new Error(`executor name "${name}" must be 1-128 characters of letters, digits, _ . : -`);
    const node = `${this.path}/${name}`;
    const data = Buffer.from(JSON.stringify(info));
    await session.mkdirp(this.path);
    try {
      await session.create(node, data, 'ephemeral');
      return;
    } catch (error) {
      if (!isZkError(error, 'NODE_EXISTS')) throw error;
    }
    const existing = await session.getData(node).catch((error: unknown) => {
      if (isZkError(error, 'NO_NODE')) return undefined;
      throw error;
    });
    if (existing !== undefined && existing.stat.ephemeralOwner === session.sessionId) return;
    if (existing !== undefined && isPreviousOfOurs(existing.data, info)) {
      await session.remove(node, existing.stat.version).catch((error: unknown) => {
        if (!isZkError(error, 'NO_NODE')) throw error;
      });
      await session.create(node, data, 'ephemeral');
      return;
    }
    throw new ExecutorNameInUseError(
      name,
      existing === undefined ? undefined : { sessionId: existing.stat.ephemeralOwner, info: parseInfo(existing.data) },
    );
  }

  /** Removes the registration at once (a clean stop); jobs it still owns then count as orphaned. */
  async deregister(session: ZkSession, name: string): Promise<void> {
    if (session.isEnded) return;
    await session.remove(`${this.path}/${name}`).catch((error: unknown) => {
      if (!isZkError(error, 'NO_NODE')) throw error;
    });
  }

  /** Every registered (live) executor, by name, with what it registered; unreadable data gives only its name. */
  async list(): Promise<RegisteredExecutor[]> {
    const names = await this.#client.getChildren(this.path).catch((error: unknown) => {
      if (isZkError(error, 'NO_NODE')) return [];
      throw error;
    });
    const found = await Promise.all(
      names.sort().map(async (name) => {
        try {
          const { data, stat } = await this.#client.getData(`${this.path}/${name}`);
          return { name, sessionId: stat.ephemeralOwner, info: parseInfo(data) };
        } catch (error) {
          if (isZkError(error, 'NO_NODE')) return undefined;
          throw error;
        }
      }),
    );
    return found.filter((entry): entry is RegisteredExecutor => entry !== undefined);
  }

  /** Whether the owner written into a job is a live executor session; false for an unparseable owner. */
  async isAlive(owner: string): Promise<boolean> {
    const parsed = parseOwner(owner);
    if (parsed === undefined) return false;
    const stat = await this.#client.exists(`${this.path}/${parsed.name}`);
    return stat !== undefined && stat.ephemeralOwner === parsed.sessionId;
  }
}

// Same host and pid: our own node from a session that expired or was replaced, not yet removed.
function isPreviousOfOurs(data: Buffer, info: ExecutorInfo): boolean {
  const previous = parseInfo(data);
  return previous?.host === info.host && previous.pid === info.pid;
}
