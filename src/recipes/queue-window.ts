/**
 * The queue's window: how many entries a queue may hold in ZooKeeper (docs/contracts.md §2). The job
 * API is the system of record and ZooKeeper holds only the jobs about to run, so every listing an
 * executor makes stays small whatever the backlog: producers enqueue directly only while a queue has
 * room, and park the rest in the job API, which the queue feeder enqueues as room comes back.
 *
 * The size is fleet-wide configuration, kept in `<root>/window` (a decimal number; absent: the
 * default), so every producer and the feeder agree without a flag of their own; `jobctl queue
 * window N` sets it. Room is read from the entries node's child count (one `exists`, no listing).
 * It is a guide, not a lock: producers racing for the last room may overshoot it by a batch, and a
 * kazoo producer that ignores it still works (the listing then grows, as before the window).
 */
import { isZkError } from '../zk/errors.js';
import type { ZkClient } from '../zk/client.js';
import { namedQueuePaths } from './queue-layout.js';

/** Well under the 1 MB listing Java clients accept: entry names are 20 bytes, so 20,000 is about 0.5 MB. */
export const DEFAULT_QUEUE_WINDOW = 20_000;
export const MAX_QUEUE_WINDOW = 1_000_000;
/** How long a read size is trusted: a change reaches every producer within this. */
const SIZE_TTL_MS = 5_000;

export function windowPath(root: string): string {
  return `${root === '/' ? '' : root}/window`;
}

/** The size as stored, or why it is not one. */
export function parseWindowSize(text: string): number | string {
  const trimmed = text.trim();
  if (!/^\d+$/.test(trimmed)) return `not a whole number: ${JSON.stringify(text.slice(0, 40))}`;
  const size = Number(trimmed);
  if (size < 1 || size > MAX_QUEUE_WINDOW) return `${trimmed} is not from 1 to ${String(MAX_QUEUE_WINDOW)}`;
  return size;
}

export class QueueWindow {
  readonly #client: Pick<ZkClient, 'getData' | 'exists' | 'logger'>;
  readonly #root: string;
  readonly #now: () => number;
  #size: { readonly value: number; readonly readAt: number } | undefined;

  constructor(client: Pick<ZkClient, 'getData' | 'exists' | 'logger'>, root: string, now: () => number = Date.now) {
    this.#client = client;
    this.#root = root;
    this.#now = now;
  }

  /** The window's size: `<root>/window`, or the default; a malformed value is logged and ignored. */
  async size(): Promise<number> {
    const cached = this.#size;
    if (cached !== undefined && this.#now() - cached.readAt < SIZE_TTL_MS) return cached.value;
    let value = DEFAULT_QUEUE_WINDOW;
    try {
      const { data } = await this.#client.getData(windowPath(this.#root));
      const parsed = parseWindowSize(data.toString('utf8'));
      if (typeof parsed === 'number') value = parsed;
      else this.#client.logger.warn('queue window size ignored: the default applies', { path: windowPath(this.#root), problem: parsed });
    } catch (error) {
      if (!isZkError(error, 'NO_NODE')) throw error;
    }
    this.#size = { value, readAt: this.#now() };
    return value;
  }

  /** Entries queue `name` holds now, waiting or taken. */
  async entries(name: string): Promise<number> {
    const stat = await this.#client.exists(namedQueuePaths(this.#root, name).entries);
    return stat?.numChildren ?? 0;
  }

  /** How many more entries queue `name` may take now (0 when full or over). */
  async room(name: string): Promise<number> {
    const [size, entries] = await Promise.all([this.size(), this.entries(name)]);
    return Math.max(0, size - entries);
  }
}

/**
 * Which of `jobs` (in order) fit their queue's room: the first `room(queue)` of each queue do, the
 * rest are to be parked. Each queue's room is read once.
 */
export async function splitByRoom<T extends { readonly queue?: string | undefined }>(
  jobs: readonly T[],
  room: (queue: string) => Promise<number>,
  defaultQueue: string,
): Promise<{ readonly fit: T[]; readonly parked: T[] }> {
  const left = new Map<string, number>();
  for (const job of jobs) {
    const queue = job.queue ?? defaultQueue;
    if (!left.has(queue)) left.set(queue, await room(queue));
  }
  const fit: T[] = [];
  const parked: T[] = [];
  for (const job of jobs) {
    const queue = job.queue ?? defaultQueue;
    const remaining = left.get(queue) ?? 0;
    if (remaining > 0) {
      fit.push(job);
      left.set(queue, remaining - 1);
    } else {
      parked.push(job);
    }
  }
  return { fit, parked };
}
