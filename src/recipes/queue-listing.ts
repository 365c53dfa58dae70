/**
 * One listing of the queue shared by every slot of a process. kazoo lists `entries` and `taken` on
 * every get(), so N slots race for the same first entry and a large backlog is re-read per job
 * (design.md §6: 8 jobs/s at 100k). Here one watch-refreshed snapshot hands out candidates in order,
 * each to one slot only; a refresh is rate-limited by what the last one cost, so a 100k-entry listing
 * never dominates, while an idle consumer re-lists as soon as a watch fires.
 *
 * Competing processes collide on the head of the queue. After a collision the listing widens the
 * window it picks from at random (within the head's priority), which spreads processes apart; it
 * narrows again after clean takes, so a lone consumer keeps strict priority-then-FIFO order.
 */
import type { ZkSession } from '../zk/session.js';
import type { Logger } from '../util/logger.js';
import { messageOf } from '../util/errors.js';
import { parseEntryName, priorityOf, type QueuePaths } from './queue-layout.js';

export interface ListingTimings {
  /** Shortest gap between two listings triggered by watches. */
  readonly minRelistMs: number;
  /** A refresh waits at least this many times the last listing's duration. */
  readonly costFactor: number;
  /** Longest gap between a watch firing and the refresh, whatever a listing costs. */
  readonly maxRelistMs: number;
  /** Widest random window after collisions. */
  readonly maxSpread: number;
}

export const DEFAULT_LISTING_TIMINGS: ListingTimings = { minRelistMs: 10, costFactor: 4, maxRelistMs: 1000, maxSpread: 64 };

const CLEAN_TAKES_TO_NARROW = 32;
const LISTING_RETRY_MS = 200;

export class QueueListing {
  readonly #paths: QueuePaths;
  readonly #timings: ListingTimings;
  readonly #logger: Logger;
  /** Names this process is trying or holding: never handed out twice. */
  readonly #inProcess: Set<string>;
  #candidates: string[] = [];
  #head = 0;
  /** Names handed out or found unavailable since the last listing. */
  #used = new Set<string>();
  /** Names consumed while a listing was in flight: the listing may still show them. */
  #finishedDuringListing = new Set<string>();
  #session: ZkSession | undefined;
  #listing: Promise<void> | undefined;
  #stale = true;
  #lastListedAt = 0;
  #lastListingMs = 0;
  #refreshTimer: NodeJS.Timeout | undefined;
  #waiters: (() => void)[] = [];
  #spread = 1;
  #cleanTakes = 0;
  #closed = false;

  constructor(paths: QueuePaths, inProcess: Set<string>, logger: Logger, timings: ListingTimings = DEFAULT_LISTING_TIMINGS) {
    this.#paths = paths;
    this.#inProcess = inProcess;
    this.#logger = logger;
    this.#timings = timings;
  }

  /** Size of the last listing, for diagnostics. */
  get snapshotSize(): number {
    return this.#candidates.length;
  }

  /** The next entry for this slot to try, or undefined when the snapshot has none left. */
  next(session: ZkSession): string | undefined {
    this.#useSession(session);
    const window = this.#window();
    if (window.length === 0) {
      this.#stale = true;
      return undefined;
    }
    const pick = window.length === 1 ? window[0] : window[Math.floor(Math.random() * window.length)];
    if (pick === undefined) return undefined;
    this.#used.add(pick);
    if (this.#stale) this.#scheduleRefresh();
    return pick;
  }

  /** Waits until a refresh may have brought new candidates (or the listing closes). */
  waitForMore(signal: AbortSignal | undefined): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        signal?.removeEventListener('abort', done);
        resolve();
      };
      this.#waiters.push(done);
      signal?.addEventListener('abort', done, { once: true });
      if (this.#stale) this.#refreshNow();
    });
  }

  /** Another process had the entry (NodeExists) or consumed it (NoNode): spread out. */
  collided(): void {
    this.#cleanTakes = 0;
    this.#spread = Math.min(this.#timings.maxSpread, this.#spread * 2);
  }

  tookCleanly(): void {
    if (this.#spread > 1 && ++this.#cleanTakes >= CLEAN_TAKES_TO_NARROW) {
      this.#cleanTakes = 0;
      this.#spread = Math.max(1, this.#spread / 2);
    }
  }

  /** This process consumed the entry: a listing already in flight must not offer it again. */
  finished(name: string): void {
    if (this.#listing !== undefined) this.#finishedDuringListing.add(name);
  }

  /** Something changed that the snapshot cannot show (a release, a new session): list again soon. */
  invalidate(): void {
    this.#stale = true;
    if (this.#waiters.length > 0) this.#refreshNow();
    else this.#scheduleRefresh();
  }

  close(): void {
    this.#closed = true;
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
    this.#wakeWaiters();
  }

  #window(): string[] {
    const candidates = this.#candidates;
    while (this.#head < candidates.length && this.#unavailable(candidates[this.#head])) this.#head++;
    const first = candidates[this.#head];
    if (first === undefined) return [];
    if (this.#spread <= 1) return [first];
    const band = priorityOf(first);
    const window: string[] = [];
    for (let i = this.#head; i < candidates.length && window.length < this.#spread; i++) {
      const name = candidates[i];
      if (name === undefined || priorityOf(name) !== band) break;
      if (!this.#unavailable(name)) window.push(name);
    }
    return window;
  }

  #unavailable(name: string | undefined): boolean {
    return name === undefined || this.#used.has(name) || this.#inProcess.has(name);
  }

  #useSession(session: ZkSession): void {
    if (this.#session === session) return;
    // Watches belong to a session: a new one has none yet, so its first listing must set them.
    this.#session = session;
    this.#stale = true;
    this.#candidates = [];
    this.#head = 0;
  }

  #scheduleRefresh(): void {
    if (this.#listing !== undefined || this.#refreshTimer !== undefined || this.#closed) return;
    const gap = Math.min(
      this.#timings.maxRelistMs,
      Math.max(this.#timings.minRelistMs, this.#timings.costFactor * this.#lastListingMs),
    );
    const wait = this.#lastListedAt + gap - Date.now();
    if (wait <= 0) {
      this.#refreshNow();
      return;
    }
    this.#refreshTimer = setTimeout(() => {
      this.#refreshTimer = undefined;
      if (this.#stale) this.#refreshNow();
    }, wait);
    this.#refreshTimer.unref();
  }

  #refreshNow(): void {
    if (this.#listing !== undefined || this.#closed) return;
    const session = this.#session;
    if (session === undefined) return;
    if (this.#refreshTimer !== undefined) {
      clearTimeout(this.#refreshTimer);
      this.#refreshTimer = undefined;
    }
    this.#listing = this.#list(session).then((listed) => {
      this.#listing = undefined;
      // After a failure the waiters keep waiting: waking them would only spin on the same failure.
      if (listed) this.#wakeWaiters();
      if (this.#stale) this.#scheduleRefresh();
    });
  }

  /** Wakes every waiting slot, e.g. when a new session is up and they must move to it. */
  wakeAll(): void {
    this.#wakeWaiters();
  }

  async #list(session: ZkSession): Promise<boolean> {
    this.#stale = false;
    this.#finishedDuringListing = new Set();
    const started = Date.now();
    try {
      const [entries, taken] = await Promise.all([
        session.getChildren(this.#paths.entries, this.#onChange),
        session.getChildren(this.#paths.taken, this.#onChange),
      ]);
      if (session !== this.#session) return true;
      const takenSet = new Set(taken);
      const finished = this.#finishedDuringListing;
      this.#candidates = entries
        .filter((name) => !takenSet.has(name) && !finished.has(name) && parseEntryName(name) !== undefined)
        .sort();
      this.#head = 0;
      this.#used = new Set();
      this.#lastListingMs = Date.now() - started;
      this.#lastListedAt = Date.now();
      return true;
    } catch (error) {
      this.#stale = true;
      this.#lastListedAt = Date.now();
      this.#lastListingMs = LISTING_RETRY_MS / this.#timings.costFactor;
      this.#logger.debug('queue listing failed; retrying', { error: messageOf(error) });
      return false;
    }
  }

  readonly #onChange = (): void => {
    this.#stale = true;
    if (this.#waiters.length > 0) this.#refreshNow();
    else this.#scheduleRefresh();
  };

  #wakeWaiters(): void {
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const wake of waiters) wake();
  }
}
