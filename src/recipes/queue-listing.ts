/**
 * One listing of the queue shared by every slot of a process. kazoo lists `entries` and `taken` on
 * every get(), so N slots race for the same first entry and a large backlog is re-read per job
 * (docs/zookeeper.md: 8 jobs/s at 100k). Here one watch-refreshed snapshot hands out candidates in order,
 * each to one slot only.
 *
 * Several consumer processes split the queue (QueueMembers): within the most urgent priority band a
 * process takes its own share first, oldest first, and only then helps with the others' share from
 * its newest end, where their owners are least likely to be. A snapshot that is stale therefore costs
 * little, so a large listing is refreshed only when this process runs short of candidates or, for
 * urgent newcomers, about once a second; an idle consumer re-lists as soon as a watch fires.
 */
import type { ZkSession } from '../zk/session.js';
import type { Logger } from '../util/logger.js';
import { toError } from '../util/errors.js';
import { parseEntryName, priorityOf, type QueuePaths } from './queue-layout.js';
import { WHOLE_QUEUE, type Partition } from './queue-members.js';

export interface ListingTimings {
  /** Shortest gap between two listings triggered by watches. */
  readonly minRelistMs: number;
  /** While short of candidates, a refresh waits this many times the last listing's duration. */
  readonly costFactor: number;
  /** With candidates to spare, how stale the snapshot may grow (new urgent entries wait this long). */
  readonly freshnessMs: number;
  /** Fewer own candidates than this counts as running short. */
  readonly lowWater: number;
}

export const DEFAULT_LISTING_TIMINGS: ListingTimings = { minRelistMs: 10, costFactor: 4, freshnessMs: 1000, lowWater: 64 };

const LISTING_RETRY_MS = 200;

export class QueueListing {
  readonly #paths: QueuePaths;
  readonly #timings: ListingTimings;
  readonly #logger: Logger;
  /** Names this process is trying or holding: never handed out twice. */
  readonly #inProcess: Set<string>;
  #partition: Partition = WHOLE_QUEUE;
  #candidates: string[] = [];
  /** First candidate not yet known to be unavailable. */
  #head = 0;
  /** Next own candidate. */
  #own = 0;
  /** Band being helped with, and the next candidate to steal from its newest end. */
  #stealBand: string | undefined;
  #steal = -1;
  /** Names handed out or found unavailable since the last listing. */
  #used = new Set<string>();
  /** Names consumed while a listing was in flight: the listing may still show them. */
  #finishedDuringListing = new Set<string>();
  #session: ZkSession | undefined;
  /** The session of the last listing that succeeded: a snapshot of another one shows nothing yet. */
  #listedOn: ZkSession | undefined;
  #listing: Promise<void> | undefined;
  #stale = true;
  #lastListedAt = 0;
  #lastListingMs = 0;
  #refreshTimer: NodeJS.Timeout | undefined;
  #waiters: (() => void)[] = [];
  #closed = false;
  /** Entries this process leaves to other consumers, until the time given (setAside). */
  readonly #aside = new Map<string, number>();
  #asideTimer: NodeJS.Timeout | undefined;

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

  setPartition(partition: Partition): void {
    this.#partition = partition;
    this.#own = this.#head;
  }

  /** The next entry for a slot to try, or undefined when the snapshot has none left. */
  next(session: ZkSession): string | undefined {
    this.#useSession(session);
    const pick = this.#pick();
    // Nothing left in a snapshot that is still current: the watches set by its listing say when that
    // changes. Marking it stale here made an idle consumer re-list back to back, thousands of times a second.
    if (pick === undefined) return undefined;
    this.#used.add(pick);
    if (this.#stale) this.#scheduleRefresh();
    return pick;
  }

  /**
   * The entry next() would hand out, without handing it out: a take across several queues compares
   * the queues' next entries before it takes one (queue-set.ts).
   */
  peek(session: ZkSession): string | undefined {
    this.#useSession(session);
    const pick = this.#pick();
    if (pick !== undefined && this.#stale) this.#scheduleRefresh();
    return pick;
  }

  /** Whether a listing on `session` has succeeded: before that, an empty snapshot says nothing. */
  listedOn(session: ZkSession): boolean {
    return this.#listedOn === session;
  }

  /** Waits until a refresh may have brought new candidates (or the listing closes). */
  waitForMore(signal: AbortSignal | undefined): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const done = (): void => {
        signal?.removeEventListener('abort', aborted);
        resolve();
      };
      // A take across queues aborts the waits of the queues that did not wake it: forgotten here,
      // or an idle queue would keep one dead waiter per wake-up of the others.
      const aborted = (): void => {
        const index = this.#waiters.indexOf(done);
        if (index >= 0) this.#waiters.splice(index, 1);
        done();
      };
      this.#waiters.push(done);
      signal?.addEventListener('abort', aborted, { once: true });
      if (this.#stale) this.#refreshNow();
    });
  }

  /** Another consumer had the entry or consumed it: the snapshot is behind. */
  collided(): void {
    this.#stale = true;
    this.#scheduleRefresh();
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

  /**
   * Leaves `name` to other consumers for `ms`: not handed out here meanwhile (an entry this process
   * cannot run, released). Offered again by the first listing after that.
   */
  setAside(name: string, ms: number): void {
    this.#aside.set(name, Date.now() + ms);
    this.#armAsideTimer();
  }

  /**
   * Ends the set-aside of `names` before its time (what kept them aside is over): offered again by the
   * next listing, made at once when a slot waits.
   */
  endAside(names: readonly string[]): void {
    let ended = false;
    for (const name of names) ended = this.#aside.delete(name) || ended;
    if (ended) this.invalidate();
  }

  /** Wakes every waiting slot, e.g. when a new session is up and they must move to it. */
  wakeAll(): void {
    this.#wakeWaiters();
  }

  close(): void {
    this.#closed = true;
    if (this.#refreshTimer !== undefined) clearTimeout(this.#refreshTimer);
    clearTimeout(this.#asideTimer);
    this.#wakeWaiters();
  }

  #pick(): string | undefined {
    const candidates = this.#candidates;
    while (this.#head < candidates.length && this.#unavailable(candidates[this.#head])) this.#head++;
    const first = candidates[this.#head];
    if (first === undefined) return undefined;
    if (this.#partition.count === 1) return first;
    const band = priorityOf(first);
    this.#own = Math.max(this.#own, this.#head);
    while (this.#own < candidates.length && (this.#unavailable(candidates[this.#own]) || !this.#owns(candidates[this.#own]))) {
      this.#own++;
    }
    const own = candidates[this.#own];
    if (own !== undefined && priorityOf(own) === band) return own;
    return this.#stealFromBand(band);
  }

  /** The newest available entry of the band: the one its owner will reach last. */
  #stealFromBand(band: string): string | undefined {
    const candidates = this.#candidates;
    if (this.#stealBand !== band) {
      // Within one listing entries only ever become unavailable, so the cursor only moves down.
      let end = this.#head;
      while (end < candidates.length && priorityOf(candidates[end] ?? '') === band) end++;
      this.#stealBand = band;
      this.#steal = end - 1;
    }
    while (this.#steal >= this.#head && this.#unavailable(candidates[this.#steal])) this.#steal--;
    return this.#steal >= this.#head ? candidates[this.#steal] : undefined;
  }

  #owns(name: string | undefined): boolean {
    if (name === undefined) return false;
    const sequence = parseEntryName(name)?.sequence ?? 0;
    return Math.abs(sequence) % this.#partition.count === this.#partition.index;
  }

  #unavailable(name: string | undefined): boolean {
    return (
      name === undefined ||
      this.#used.has(name) ||
      this.#inProcess.has(name) ||
      // Checked on the hot path of every take: nearly always an empty map, and no clock read then.
      (this.#aside.size > 0 && this.#isAside(name, Date.now()))
    );
  }

  #isAside(name: string, now: number): boolean {
    const until = this.#aside.get(name);
    return until !== undefined && until > now;
  }

  /** One timer, at the earliest end of a set-aside: the entries whose time is up are listed again. */
  #armAsideTimer(): void {
    if (this.#closed) return;
    clearTimeout(this.#asideTimer);
    this.#asideTimer = undefined;
    const now = Date.now();
    let earliest = Number.POSITIVE_INFINITY;
    for (const [name, until] of this.#aside) {
      if (until <= now) this.#aside.delete(name);
      else earliest = Math.min(earliest, until);
    }
    if (earliest === Number.POSITIVE_INFINITY) return;
    this.#asideTimer = setTimeout(() => {
      this.#asideTimer = undefined;
      this.#armAsideTimer();
      this.invalidate();
    }, earliest - now);
    this.#asideTimer.unref();
  }

  #ownRemaining(): number {
    let count = 0;
    for (let i = this.#own; i < this.#candidates.length && count < this.#timings.lowWater; i++) {
      const name = this.#candidates[i];
      if (!this.#unavailable(name) && (this.#partition.count === 1 || this.#owns(name))) count++;
    }
    return count;
  }

  #useSession(session: ZkSession): void {
    if (this.#session === session) return;
    // Watches belong to a session: a new one has none yet, so its first listing must set them.
    this.#session = session;
    this.#stale = true;
    this.#candidates = [];
    this.#head = 0;
    this.#own = 0;
    this.#stealBand = undefined;
  }

  #scheduleRefresh(): void {
    if (this.#listing !== undefined || this.#refreshTimer !== undefined || this.#closed) return;
    const short = this.#ownRemaining() < this.#timings.lowWater;
    const costGap = Math.max(this.#timings.minRelistMs, this.#timings.costFactor * this.#lastListingMs);
    const gap = short ? costGap : Math.max(this.#timings.freshnessMs, costGap);
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
    // An ended session cannot list; the slots move the listing to the next session (wakeAll).
    if (session === undefined || session.isEnded) return;
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
      // Entries this process holds stay out even after it consumes them: the listing predates that.
      const inProcess = this.#inProcess;
      const now = Date.now();
      const anyAside = this.#aside.size > 0;
      this.#candidates = entries
        .filter(
          (name) =>
            !takenSet.has(name) &&
            !finished.has(name) &&
            !inProcess.has(name) &&
            !(anyAside && this.#isAside(name, now)) &&
            parseEntryName(name) !== undefined,
        )
        .sort();
      this.#head = 0;
      this.#own = 0;
      this.#stealBand = undefined;
      this.#used = new Set();
      this.#lastListingMs = Date.now() - started;
      this.#lastListedAt = Date.now();
      this.#listedOn = session;
      return true;
    } catch (error) {
      this.#stale = true;
      this.#lastListedAt = Date.now();
      this.#lastListingMs = LISTING_RETRY_MS / this.#timings.costFactor;
      this.#logger.debug('queue listing failed; retrying', { error: toError(error) });
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
