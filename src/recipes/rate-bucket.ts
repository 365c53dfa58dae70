/**
 * A fleet-wide token bucket for the starts of one action, kept in one znode (`<root>/rates/<action>`)
 * and updated by compare-and-set (setData at the version read; BAD_VERSION: read again).
 *
 * The node holds the bucket as a theoretical arrival time (GCRA): `tat` is when the bucket would be
 * full again, in ms since the epoch. A start is allowed when, after adding one interval (1 / rate) to
 * max(tat, now), tat is at most `burst` intervals ahead of now; otherwise the answer is the time the
 * next token is due, and the caller defers the job until then. So over any window of T seconds at
 * most rate x T + burst starts happen, whoever makes them. The clocks of the hosts are compared
 * through `tat`: they must agree (NTP) to well within one interval.
 *
 * Data: JSON `{"ratePerSecond": r, "tat": ms}`; `ratePerSecond` is the rate of the last start, for
 * operators (jobctl limits).
 */
import type { ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import { isRecord } from '../util/is-record.js';

/** How much lateness in waking up the bucket absorbs: a quarter second of starts, at least one. */
export function burstOf(ratePerSecond: number): number {
  return Math.max(1, Math.ceil(ratePerSecond / 4));
}

/** Compare-and-set rounds before a contended take gives up for one interval. */
const CAS_ROUNDS = 8;

export type TokenAnswer = { readonly granted: true } | { readonly granted: false; readonly dueAt: number };

export interface BucketState {
  readonly ratePerSecond: number | undefined;
  readonly tat: number;
}

export function parseBucket(data: Buffer): BucketState {
  try {
    const value: unknown = JSON.parse(data.toString('utf8'));
    if (isRecord(value) && typeof value.tat === 'number' && Number.isFinite(value.tat)) {
      const rate = value.ratePerSecond;
      return { tat: value.tat, ratePerSecond: typeof rate === 'number' && rate > 0 ? rate : undefined };
    }
  } catch {
    // Not ours (or damaged): a full bucket, rewritten by the next start.
  }
  return { tat: 0, ratePerSecond: undefined };
}

export class RateBucket {
  readonly path: string;
  readonly #client: ZkClient;
  readonly #now: () => number;

  constructor(client: ZkClient, path: string, now: () => number = Date.now) {
    this.#client = client;
    this.path = path;
    this.#now = now;
  }

  /** One token at `ratePerSecond`, or when the next one is due. Rejects on ZooKeeper errors. */
  async take(ratePerSecond: number): Promise<TokenAnswer> {
    const interval = 1000 / ratePerSecond;
    const horizon = burstOf(ratePerSecond) * interval;
    for (let round = 0; round < CAS_ROUNDS; round++) {
      const read = await this.#read();
      const now = this.#now();
      const next = Math.max(read?.state.tat ?? 0, now) + interval;
      if (next - now > horizon) return { granted: false, dueAt: Math.ceil(next - horizon) };
      const data = Buffer.from(JSON.stringify({ ratePerSecond, tat: next }), 'utf8');
      try {
        if (read === undefined) await this.#client.create(this.path, data, 'persistent');
        else await this.#client.setData(this.path, data, read.version);
        return { granted: true };
      } catch (error) {
        if (isZkError(error, 'BAD_VERSION', 'NODE_EXISTS')) continue;
        if (isZkError(error, 'NO_NODE')) {
          await this.#client.mkdirp(this.path.slice(0, this.path.lastIndexOf('/')) || '/');
          continue;
        }
        throw error;
      }
    }
    return { granted: false, dueAt: this.#now() + Math.ceil(interval) };
  }

  /** The bucket as stored; undefined when no start was ever counted. */
  async state(): Promise<BucketState | undefined> {
    return (await this.#read())?.state;
  }

  async #read(): Promise<{ readonly state: BucketState; readonly version: number } | undefined> {
    try {
      const { data, stat } = await this.#client.getData(this.path);
      return { state: parseBucket(data), version: stat.version };
    } catch (error) {
      if (isZkError(error, 'NO_NODE')) return undefined;
      throw error;
    }
  }
}
