/**
 * The operator's overrides of actions' limits, one node per action under `<root>/limits`
 * (limit-layout.ts), written by `jobctl limits` and watched by every executor so that a change takes
 * effect fleet-wide without a restart. A node that does not parse is reported and ignored: the
 * action's own limits apply.
 */
import type { ClientStateChange, ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import type { Logger } from '../util/logger.js';
import { toError } from '../util/errors.js';
import { encodeLimitOverride, parseLimitOverride, type LimitOverride } from './limit-layout.js';

/** Each action's override, or why its node was refused. */
export type OverrideReading = ReadonlyMap<string, LimitOverride | Error>;

/** Coalesces a burst of watch events into one reading. */
const REREAD_DELAY_MS = 50;
/** Read again after a failed reading, however quiet the watches are. */
const RETRY_MS = 2000;

export async function readOverrides(client: ZkClient, path: string, watcher?: () => void): Promise<Map<string, LimitOverride | Error>> {
  let actions: string[];
  try {
    actions = await client.getChildren(path, watcher);
  } catch (error) {
    if (!isZkError(error, 'NO_NODE')) throw error;
    // Watch for its creation instead: the first `jobctl limits set` makes it.
    if (watcher !== undefined && (await client.exists(path, watcher)) !== undefined) return readOverrides(client, path, watcher);
    return new Map();
  }
  const read = await Promise.all(
    actions.map(async (action): Promise<[string, LimitOverride | Error] | undefined> => {
      try {
        const { data } = await client.getData(`${path}/${action}`, watcher);
        try {
          return [action, parseLimitOverride(data)];
        } catch (error) {
          return [action, new Error(`limit override ${path}/${action} refused: ${toError(error).message}`)];
        }
      } catch (error) {
        if (isZkError(error, 'NO_NODE')) return undefined;
        throw error;
      }
    }),
  );
  return new Map(read.filter((entry): entry is [string, LimitOverride | Error] => entry !== undefined));
}

/** Sets the override of `action` (replacing the node's content); creates the path as needed. */
export async function writeOverride(client: ZkClient, path: string, action: string, override: LimitOverride): Promise<void> {
  const node = `${path}/${action}`;
  const data = encodeLimitOverride(override);
  await client.mkdirp(path);
  try {
    await client.create(node, data, 'persistent');
  } catch (error) {
    if (!isZkError(error, 'NODE_EXISTS')) throw error;
    await client.setData(node, data);
  }
}

/** Removes the override of `action`; false when there was none. */
export async function removeOverride(client: ZkClient, path: string, action: string): Promise<boolean> {
  try {
    await client.remove(`${path}/${action}`);
    return true;
  } catch (error) {
    if (isZkError(error, 'NO_NODE')) return false;
    throw error;
  }
}

/** Keeps a current reading of the overrides and tells `onChange` each new one. */
export class OverrideWatch {
  readonly #client: ZkClient;
  readonly #path: string;
  readonly #logger: Logger;
  readonly #onChange: (reading: OverrideReading) => void;
  #timer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => void) | undefined;
  #stopped = false;

  constructor(client: ZkClient, path: string, logger: Logger, onChange: (reading: OverrideReading) => void) {
    this.#client = client;
    this.#path = path;
    this.#logger = logger;
    this.#onChange = onChange;
  }

  /** Reads once (rejects if that fails), then follows changes until stop(). */
  async start(): Promise<void> {
    this.#unsubscribe = this.#client.onStateChange((change: ClientStateChange) => {
      // A new session has none of the old one's watches.
      if (change.state === 'CONNECTED' && !change.reconnected) this.#schedule(0);
    });
    this.#onChange(await readOverrides(this.#client, this.#path, this.#fired));
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#unsubscribe?.();
  }

  readonly #fired = (): void => {
    this.#schedule(REREAD_DELAY_MS);
  };

  #schedule(ms: number): void {
    if (this.#stopped || this.#timer !== undefined) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      void this.#read();
    }, ms);
    this.#timer.unref();
  }

  async #read(): Promise<void> {
    try {
      const reading = await readOverrides(this.#client, this.#path, this.#fired);
      if (!this.#stopped) this.#onChange(reading);
    } catch (error) {
      this.#logger.warn('limit overrides could not be read; trying again', { path: this.#path, error: toError(error) });
      this.#schedule(RETRY_MS);
    }
  }
}
