/**
 * Which job ids the queue holds, waiting or taken: what the queue reconciler compares the job API's
 * QUEUED and RUNNING jobs against. An entry's data never changes once created, so what was read is
 * kept by entry name and each pass reads only the entries that are new since the last one: with a
 * backlog of 100,000 entries a first pass reads them all (about 5 s here), the next ones one listing.
 */
import { isZkError } from '../zk/errors.js';
import type { ZkClient } from '../zk/client.js';
import type { ZkSession } from '../zk/session.js';
import { listQueueNames, namedQueuePaths, parseEntryName, type QueuePaths } from './queue-layout.js';

/** Reads in flight at once: the client pipelines them on one connection. */
const READS_IN_FLIGHT = 500;

export class QueueInventory {
  readonly #client: ZkClient;
  readonly #paths: QueuePaths;
  /** Entry name -> job id, for the entries present at the last pass. */
  readonly #known = new Map<string, string>();
  #session: ZkSession | undefined;

  constructor(client: ZkClient, paths: QueuePaths) {
    this.#client = client;
    this.#paths = paths;
  }

  async jobIds(): Promise<Set<string>> {
    // A new session may mean a server restored from a snapshot, where an entry name can come back
    // holding another job: nothing read before it is trusted.
    if (this.#client.session !== this.#session) {
      this.#known.clear();
      this.#session = this.#client.session;
    }
    const names = await this.#client.getChildren(this.#paths.entries).catch((error: unknown) => {
      if (isZkError(error, 'NO_NODE')) return [];
      throw error;
    });
    const present = new Set(names);
    for (const name of this.#known.keys()) if (!present.has(name)) this.#known.delete(name);
    const unread = names.filter((name) => !this.#known.has(name) && parseEntryName(name) !== undefined);
    for (let start = 0; start < unread.length; start += READS_IN_FLIGHT) {
      const batch = unread.slice(start, start + READS_IN_FLIGHT);
      const data = await Promise.all(batch.map((name) => this.#read(name)));
      batch.forEach((name, index) => {
        const id = data[index];
        if (id !== undefined) this.#known.set(name, id);
      });
    }
    return new Set(this.#known.values());
  }

  async #read(name: string): Promise<string | undefined> {
    try {
      return (await this.#client.getData(`${this.#paths.entries}/${name}`)).data.toString('utf8');
    } catch (error) {
      // Consumed while we listed: it no longer counts.
      if (isZkError(error, 'NO_NODE')) return undefined;
      throw error;
    }
  }
}

/**
 * The inventory of every queue under a root: the default queue (the root) and each named queue found
 * under `<root>/queues` at the time of the pass (a queue made since the last pass is read whole).
 */
export class AllQueuesInventory {
  readonly #client: ZkClient;
  readonly #root: string;
  readonly #inventories = new Map<string, QueueInventory>();

  constructor(client: ZkClient, root: string) {
    this.#client = client;
    this.#root = root;
  }

  async jobIds(): Promise<Set<string>> {
    const names = await listQueueNames(this.#client, this.#root);
    for (const name of this.#inventories.keys()) if (!names.includes(name)) this.#inventories.delete(name);
    const ids = new Set<string>();
    for (const name of names) {
      let inventory = this.#inventories.get(name);
      if (inventory === undefined) {
        inventory = new QueueInventory(this.#client, namedQueuePaths(this.#root, name));
        this.#inventories.set(name, inventory);
      }
      for (const id of await inventory.jobIds()) ids.add(id);
    }
    return ids;
  }
}
