/**
 * A consumer of several named queues at once (an executor given `--queue gpu --queue default`), each
 * a kazoo LockingQueue of its own (queue-layout.ts). A take looks at every queue's next entry and
 * takes from the most urgent priority band; among queues whose next entries share that band it goes
 * round-robin, so that a busy queue never starves another. With nothing anywhere it waits on every
 * queue's listing at once (their watches), never polling. Each item is consumed, released or
 * rejected on the queue it came from.
 *
 * One queue is served by its LockingQueue alone (openQueueConsumer): this adds nothing to that path.
 */
import { randomUUID } from 'node:crypto';
import { setMaxListeners } from 'node:events';
import type { ZkClient } from '../zk/client.js';
import { ZkError, isZkError } from '../zk/errors.js';
import type { Logger } from '../util/logger.js';
import { delay } from '../util/delay.js';
import type { ForeignHolder } from './entry-holders.js';
import { LockingQueue, type QueueItem } from './locking-queue.js';
import { namedQueuePaths, validateQueueName } from './queue-layout.js';

/** What an executor needs of its queue(s): a LockingQueue is one, a QueueSet another. */
export type QueueConsumer = Pick<
  LockingQueue,
  'take' | 'consume' | 'release' | 'releaseAside' | 'recall' | 'reject' | 'holds' | 'foreignHolder' | 'close' | 'consumerId'
>;

export interface QueueSetOptions {
  /** The queue root (`/job`): `default` is the root itself, another name `<root>/queues/<name>`. */
  readonly root: string;
  /** The queues served, each once. */
  readonly names: readonly string[];
  /** Shared by every queue: the one id the executor registers, written into every taken node. */
  readonly consumerId?: string;
  readonly logger?: Logger;
}

const TRANSIENT_PAUSE_MS = 50;

/** The queues `names` under `root`: one LockingQueue for one name, else a QueueSet over them. */
export function openQueueConsumer(client: ZkClient, options: QueueSetOptions): QueueConsumer {
  const [only, ...others] = options.names;
  if (only !== undefined && others.length === 0) {
    return new LockingQueue(client, {
      path: namedQueuePaths(options.root, only).root,
      name: only,
      ...(options.consumerId === undefined ? {} : { consumerId: options.consumerId }),
      ...(options.logger === undefined ? {} : { logger: options.logger }),
    });
  }
  return new QueueSet(client, options);
}

export class QueueSet implements QueueConsumer {
  readonly consumerId: string;
  readonly #client: ZkClient;
  readonly #queues: readonly LockingQueue[];
  readonly #byName = new Map<string, LockingQueue>();
  readonly #closed = new AbortController();
  /** Where the next tie starts: the queue after the one served last. */
  #turn = 0;

  constructor(client: ZkClient, options: QueueSetOptions) {
    if (options.names.length === 0) throw new Error('a queue set needs at least one queue name');
    this.#client = client;
    this.consumerId = options.consumerId ?? randomUUID().replaceAll('-', '');
    for (const name of options.names) {
      validateQueueName(name);
      if (this.#byName.has(name)) throw new Error(`queue name "${name}" is given twice`);
      this.#byName.set(
        name,
        new LockingQueue(client, {
          path: namedQueuePaths(options.root, name).root,
          name,
          consumerId: this.consumerId,
          ...(options.logger === undefined ? {} : { logger: options.logger }),
        }),
      );
    }
    this.#queues = [...this.#byName.values()];
    setMaxListeners(0, this.#closed.signal);
  }

  get names(): string[] {
    return [...this.#byName.keys()];
  }

  /** Items held now, over every queue. */
  get heldCount(): number {
    return this.#queues.reduce((sum, queue) => sum + queue.heldCount, 0);
  }

  /** Takes the most urgent entry among the queues, waiting while all are empty or ZooKeeper unreachable. */
  async take(signal?: AbortSignal): Promise<QueueItem> {
    // Combined only when this take has to wait, as LockingQueue.take does: not on every take.
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
        const bands = await Promise.all(this.#queues.map((queue) => queue.nextBand(session)));
        const chosen = this.#choose(bands);
        if (chosen === undefined) {
          await this.#waitForAny(stop());
          continue;
        }
        const item = await this.#queues[chosen]?.takeOnce(session);
        if (item === undefined) continue;
        this.#turn = (chosen + 1) % this.#queues.length;
        return item;
      } catch (error) {
        if (!isTransient(error)) throw error;
        await delay(TRANSIENT_PAUSE_MS, stop());
      }
    }
  }

  /** The queue whose next entry is in the lowest band; ties go to the first from `#turn` on. */
  #choose(bands: readonly (string | undefined)[]): number | undefined {
    let chosen: number | undefined;
    let best: string | undefined;
    for (let offset = 0; offset < bands.length; offset++) {
      const index = (this.#turn + offset) % bands.length;
      const band = bands[index];
      if (band !== undefined && (best === undefined || band < best)) {
        chosen = index;
        best = band;
      }
    }
    return chosen;
  }

  /** Until any queue's listing may have something; the other queues' waits are withdrawn. */
  async #waitForAny(stop: AbortSignal): Promise<void> {
    const woken = new AbortController();
    const signal = AbortSignal.any([stop, woken.signal]);
    try {
      await Promise.race(this.#queues.map((queue) => queue.waitForEntries(signal)));
    } finally {
      woken.abort();
    }
  }

  consume(item: QueueItem): Promise<void> {
    return this.#of(item).consume(item);
  }

  release(item: QueueItem): Promise<void> {
    return this.#of(item).release(item);
  }

  releaseAside(item: QueueItem, ms: number): Promise<void> {
    return this.#of(item).releaseAside(item, ms);
  }

  recall(queue: string, names: readonly string[]): void {
    this.#byName.get(queue)?.recall(queue, names);
  }

  reject(item: QueueItem): Promise<void> {
    return this.#of(item).reject(item);
  }

  holds(item: QueueItem): Promise<boolean> {
    return this.#of(item).holds(item);
  }

  foreignHolder(item: QueueItem): Promise<ForeignHolder | undefined> {
    return this.#of(item).foreignHolder(item);
  }

  async close(): Promise<void> {
    if (this.#closed.signal.aborted) return;
    this.#closed.abort(new ZkError('CLOSED', 'queue closed'));
    await Promise.all(this.#queues.map((queue) => queue.close()));
  }

  #of(item: QueueItem): LockingQueue {
    const queue = this.#byName.get(item.queue);
    if (queue === undefined) throw new ZkError('BAD_DATA', `${item.name} is of queue "${item.queue}", which this set does not serve`);
    return queue;
  }
}

function isTransient(error: unknown): boolean {
  return isZkError(error) && (error.retryable || error.code === 'SESSION_EXPIRED' || error.code === 'SESSION_LOST');
}
