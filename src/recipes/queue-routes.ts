/**
 * The producer's side of named queues: each job id goes into the LockingQueue of the queue its job
 * names (queue-layout.ts: `default` is the root, another name `<root>/queues/<name>`), grouped so
 * that every queue gets its own few transactions. A queue's structure is made the first time a put
 * finds it missing (LockingQueue's own rule), never checked per job.
 */
import type { ZkClient } from '../zk/client.js';
import type { Logger } from '../util/logger.js';
import { LockingQueue, type PutRequest } from './locking-queue.js';
import { DEFAULT_QUEUE_NAME, namedQueuePaths, validateQueueName } from './queue-layout.js';
import { QueueWindow } from './queue-window.js';

export interface RoutedPut extends PutRequest {
  /** The queue's name; `default` (the root) when absent. */
  readonly queue?: string;
}

export class QueueRoutes {
  readonly root: string;
  /** How many more entries each queue may take (queue-window.ts): producers park what does not fit. */
  readonly window: QueueWindow;
  readonly #client: ZkClient;
  readonly #logger: Logger | undefined;
  readonly #queues = new Map<string, LockingQueue>();

  constructor(client: ZkClient, root: string, logger?: Logger) {
    this.#client = client;
    this.root = root;
    this.#logger = logger;
    this.window = new QueueWindow(client, root);
    // The root's paths are checked now: a bad --queue-path fails at start, not at the first put.
    this.queue(DEFAULT_QUEUE_NAME);
  }

  /** The LockingQueue of queue `name`, made once. */
  queue(name: string): LockingQueue {
    let queue = this.#queues.get(name);
    if (queue === undefined) {
      const paths = namedQueuePaths(this.root, name);
      queue = new LockingQueue(this.#client, { path: paths.root, name, ...(this.#logger === undefined ? {} : { logger: this.#logger }) });
      this.#queues.set(name, queue);
    }
    return queue;
  }

  /** Puts each job into its own queue, one batch per queue; returns the entry names in input order. */
  async putRouted(requests: readonly RoutedPut[]): Promise<string[]> {
    // The common case, every job of one queue, costs no grouping.
    const first = validateQueueName(requests[0]?.queue ?? DEFAULT_QUEUE_NAME);
    if (requests.every((request) => (request.queue ?? DEFAULT_QUEUE_NAME) === first)) return this.queue(first).putMany(requests);
    const groups = new Map<string, { readonly indexes: number[]; readonly puts: PutRequest[] }>();
    requests.forEach((request, index) => {
      const name = validateQueueName(request.queue ?? DEFAULT_QUEUE_NAME);
      let group = groups.get(name);
      if (group === undefined) groups.set(name, (group = { indexes: [], puts: [] }));
      group.indexes.push(index);
      group.puts.push(request.priority === undefined ? { jobId: request.jobId } : { jobId: request.jobId, priority: request.priority });
    });
    const names: string[] = new Array<string>(requests.length);
    for (const [name, group] of groups) {
      const written = await this.queue(name).putMany(group.puts);
      written.forEach((entry, position) => {
        const index = group.indexes[position];
        if (index !== undefined) names[index] = entry;
      });
    }
    return names;
  }

  async close(): Promise<void> {
    await Promise.all([...this.#queues.values()].map((queue) => queue.close()));
  }
}
