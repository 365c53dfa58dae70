/**
 * Fleet-wide limits per action, as the executor applies them before it claims a job: a lease of the
 * action's semaphore (`maxConcurrent`, kazoo's Semaphore layout, semaphore.ts) and a token of its
 * bucket (`ratePerSecond`, rate-bucket.ts). The limits are the action's own (`defineAction`) unless
 * the operator overrides them (`jobctl limits`, limit-overrides.ts), followed live.
 *
 * A job whose permit cannot be had is deferred, never waited for in a slot: its entry is released
 * and set aside, parked here under its action, so the slots take other work. The entries come back
 * when a permit may be had: for a lease, when the semaphore's leases change (a watch) and one is
 * free, as many entries as leases are free; for a token, when the next one is due. The job is not
 * claimed meanwhile, so its attempt is not counted. Each entry's action is remembered once its job
 * was read, so a deferred entry taken again costs no request to the job API.
 */
import type { QueueItem } from '../recipes/locking-queue.js';
import type { QueueConsumer } from '../recipes/queue-set.js';
import { effectiveLimits, limitPaths, type ActionLimitValues, type LimitOverride } from '../recipes/limit-layout.js';
import { OverrideWatch, type OverrideReading } from '../recipes/limit-overrides.js';
import { RateBucket } from '../recipes/rate-bucket.js';
import { ZkSemaphore, type SemaphoreLease } from '../recipes/semaphore.js';
import type { ZkClient } from '../zk/client.js';
import { toError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';

export type DeferReason = 'concurrency' | 'rate';

/** What the metrics are told. */
export interface LimitObserver {
  deferred?(action: string, reason: DeferReason): void;
}

/** Held from before the claim to the end of the job's handling. */
export interface Permit {
  readonly action: string;
  release(): Promise<void>;
}

export interface Deferral {
  readonly reason: DeferReason;
  /** How long the entry is set aside at most (it is recalled sooner when a permit may be had). */
  readonly asideMs: number;
  readonly detail: string;
}

export interface ActionLimitsOptions {
  readonly client: ZkClient;
  /** The queue root: the limits' nodes live under it, for every named queue. */
  readonly root: string;
  readonly queue: Pick<QueueConsumer, 'recall'>;
  /** Each loaded action's own limits. */
  readonly own: ReadonlyMap<string, ActionLimitValues>;
  /** Written into lease nodes with the job id: who holds them. */
  readonly owner: string;
  /** How many entries a change of limits recalls at once: the executor's slots. */
  readonly threads: number;
  readonly logger: Logger;
  readonly observer?: LimitObserver;
}

/** Longest wait for the semaphore's lock: its holder keeps it for two requests unless it died. */
const LOCK_WAIT_MS = 500;
/** A parked entry comes back by itself after this (± 20 %), should no watch or timer recall it. */
const PARK_FALLBACK_MS = 10_000;
/** A semaphore found full is believed full this long without asking, unless its watch says otherwise. */
const FULL_BELIEF_MS = 5_000;
/** After ZooKeeper failed a permit's request. */
const ERROR_ASIDE_MS = 1_000;
/** Entries whose action is remembered; the oldest are forgotten beyond it. */
const KNOWN_ENTRIES = 100_000;

interface Parked {
  readonly queue: string;
  readonly name: string;
}

interface ActionState {
  readonly semaphore: ZkSemaphore;
  readonly bucket: RateBucket;
  /** Entries deferred for this action, by key, oldest first when sorted. */
  readonly parked: Map<string, Parked>;
  leases: number;
  fullUntil: number;
  watching: boolean;
  dueAt: number;
  dueTimer: NodeJS.Timeout | undefined;
}

export class ActionLimits {
  readonly #options: ActionLimitsOptions;
  readonly #states = new Map<string, ActionState>();
  /** Entry key -> the job id it held and the job's action. */
  readonly #known = new Map<string, { readonly jobId: string; readonly action: string }>();
  readonly #watch: OverrideWatch;
  #overrides: ReadonlyMap<string, LimitOverride> = new Map();
  #closed = false;

  constructor(options: ActionLimitsOptions) {
    this.#options = options;
    this.#watch = new OverrideWatch(options.client, limitPaths(options.root).overrides, options.logger, (reading) => {
      this.#onOverrides(reading);
    });
  }

  /** Reads the operator's overrides and follows them. */
  async start(): Promise<void> {
    await this.#watch.start();
  }

  close(): void {
    this.#closed = true;
    this.#watch.stop();
    for (const state of this.#states.values()) clearTimeout(state.dueTimer);
  }

  /** The limits in force for `action`. */
  limitsOf(action: string): ActionLimitValues {
    return effectiveLimits(this.#options.own.get(action) ?? {}, this.#overrides.get(action));
  }

  isLimited(action: string): boolean {
    const limits = this.limitsOf(action);
    return limits.maxConcurrent !== undefined || limits.ratePerSecond !== undefined;
  }

  /** The loaded actions a claim may take without a permit, plus `permitted` (one this slot holds a permit for). */
  claimable(loaded: readonly string[], permitted?: string): string[] {
    return loaded.filter((action) => action === permitted || !this.isLimited(action));
  }

  /** The action of `item`'s job, when it was read before. */
  actionOf(item: QueueItem): string | undefined {
    const known = this.#known.get(keyOf(item.queue, item.name));
    return known?.jobId === item.jobId ? known.action : undefined;
  }

  /** Remembers the action of `item`'s job, for when the entry is taken again. */
  learn(item: QueueItem, action: string): void {
    const key = keyOf(item.queue, item.name);
    if (this.#known.get(key)?.action === action) return;
    this.#known.set(key, { jobId: item.jobId, action });
    if (this.#known.size > KNOWN_ENTRIES) {
      const oldest = this.#known.keys().next().value;
      if (oldest !== undefined) this.#known.delete(oldest);
    }
  }

  /** The entry is done with (consumed): nothing to remember of it. */
  forget(item: QueueItem): void {
    this.#known.delete(keyOf(item.queue, item.name));
  }

  /** Leases this executor holds now, by action. */
  leasesHeld(): Map<string, number> {
    const held = new Map<string, number>();
    for (const [action, state] of this.#states) if (state.leases > 0) held.set(action, state.leases);
    return held;
  }

  /** Entries deferred now, by action. */
  deferredEntries(): Map<string, number> {
    const parked = new Map<string, number>();
    for (const [action, state] of this.#states) if (state.parked.size > 0) parked.set(action, state.parked.size);
    return parked;
  }

  /**
   * A permit for `item`'s job of `action` (nothing to hold when the action has no limit), or a
   * deferral: the entry is parked here, and its caller releases it aside for `asideMs`.
   */
  async acquire(item: QueueItem, action: string, jobId: string): Promise<Permit | Deferral> {
    const limits = this.limitsOf(action);
    const state = this.#state(action);
    let lease: SemaphoreLease | undefined;
    try {
      if (limits.maxConcurrent !== undefined) {
        const got = await this.#lease(state, limits.maxConcurrent, `${this.#options.owner} ${jobId}`);
        if (!('path' in got)) return this.#defer(item, action, state, 'concurrency', got.detail, got.asideMs);
        lease = got;
        state.leases += 1;
      }
      if (limits.ratePerSecond !== undefined) {
        const due = await this.#token(state, limits.ratePerSecond);
        if (due !== undefined) {
          await this.#drop(state, lease);
          lease = undefined;
          return this.#defer(
            item,
            action,
            state,
            'rate',
            `the next start of ${action} is due in ${due - Date.now()} ms (ratePerSecond ${limits.ratePerSecond})`,
          );
        }
      }
    } catch (error) {
      await this.#drop(state, lease);
      this.#options.logger.warn('a permit of a limited action could not be had: the job is deferred', { action, error: toError(error) });
      return {
        reason: limits.maxConcurrent === undefined ? 'rate' : 'concurrency',
        asideMs: ERROR_ASIDE_MS,
        detail: toError(error).message,
      };
    }
    const held = lease;
    let released = false;
    return {
      action,
      release: async () => {
        if (released) return;
        released = true;
        await this.#drop(state, held);
      },
    };
  }

  async #lease(
    state: ActionState,
    max: number,
    identifier: string,
  ): Promise<SemaphoreLease | { readonly detail: string; readonly asideMs?: number }> {
    const now = Date.now();
    if (state.fullUntil > now && state.parked.size > 0) return { detail: `all ${max} leases were held a moment ago` };
    const got = await state.semaphore.tryAcquire(max, LOCK_WAIT_MS, identifier);
    if ('path' in got) return got;
    if (!got.full) return { detail: `the semaphore's lock was busy for ${LOCK_WAIT_MS} ms`, asideMs: ERROR_ASIDE_MS };
    state.fullUntil = now + FULL_BELIEF_MS;
    return { detail: `all ${max} leases are held (${got.held} held)` };
  }

  /** Undefined when a token was had, else when the next one is due. */
  async #token(state: ActionState, rate: number): Promise<number | undefined> {
    if (state.dueAt > Date.now()) return state.dueAt;
    const answer = await state.bucket.take(rate);
    if (answer.granted) return undefined;
    state.dueAt = answer.dueAt;
    return answer.dueAt;
  }

  async #drop(state: ActionState, lease: SemaphoreLease | undefined): Promise<void> {
    if (lease === undefined) return;
    state.leases -= 1;
    await lease.release();
  }

  #defer(item: QueueItem, action: string, state: ActionState, reason: DeferReason, detail: string, asideMs?: number): Deferral {
    this.#options.observer?.deferred?.(action, reason);
    state.parked.set(keyOf(item.queue, item.name), { queue: item.queue, name: item.name });
    if (reason === 'concurrency') this.#watchLeases(action, state);
    else this.#armDue(action, state);
    return { reason, detail, asideMs: asideMs ?? Math.round(PARK_FALLBACK_MS * (0.8 + Math.random() * 0.4)) };
  }

  #watchLeases(action: string, state: ActionState): void {
    if (state.watching || this.#closed) return;
    state.watching = true;
    state.semaphore.watchLeases(() => {
      state.watching = false;
      void this.#onLeasesChanged(action, state);
    });
  }

  /** Recalls as many parked entries as leases are free; watches on while some stay parked. */
  async #onLeasesChanged(action: string, state: ActionState): Promise<void> {
    if (this.#closed || state.parked.size === 0) return;
    const max = this.limitsOf(action).maxConcurrent;
    if (max === undefined) {
      this.#recall(state, this.#options.threads);
      return;
    }
    try {
      const holders = (await this.#options.client.getChildren(state.semaphore.path)).length;
      if (holders < max) {
        state.fullUntil = 0;
        this.#recall(state, max - holders);
      }
    } catch (error) {
      this.#options.logger.debug('semaphore leases could not be counted', { action, error: toError(error) });
      state.fullUntil = 0;
      this.#recall(state, 1);
    }
    if (state.parked.size > 0) this.#watchLeases(action, state);
  }

  #armDue(action: string, state: ActionState): void {
    if (state.dueTimer !== undefined || this.#closed) return;
    state.dueTimer = setTimeout(
      () => {
        state.dueTimer = undefined;
        const rate = this.limitsOf(action).ratePerSecond;
        // About the tokens due in the next 50 ms: this executor races the others for them.
        this.#recall(state, rate === undefined ? this.#options.threads : Math.ceil(rate / 20));
      },
      Math.max(0, state.dueAt - Date.now()),
    );
    state.dueTimer.unref();
  }

  /** The `count` oldest parked entries of the action go back to the takes. */
  #recall(state: ActionState, count: number): void {
    if (count <= 0 || state.parked.size === 0) return;
    const chosen = [...state.parked.entries()].sort(([, a], [, b]) => (a.name < b.name ? -1 : 1)).slice(0, count);
    const byQueue = new Map<string, string[]>();
    for (const [key, parked] of chosen) {
      state.parked.delete(key);
      byQueue.set(parked.queue, [...(byQueue.get(parked.queue) ?? []), parked.name]);
    }
    for (const [queue, names] of byQueue) this.#options.queue.recall(queue, names);
  }

  #onOverrides(reading: OverrideReading): void {
    const valid = new Map<string, LimitOverride>();
    for (const [action, override] of reading) {
      if (override instanceof Error) this.#options.logger.error(override.message, { action });
      else valid.set(action, override);
    }
    const said = (overrides: ReadonlyMap<string, LimitOverride>): string => JSON.stringify([...overrides].sort());
    if (said(valid) !== said(this.#overrides)) this.#options.logger.info('limit overrides read', { overrides: Object.fromEntries(valid) });
    const before = new Map([...this.#states.keys()].map((action) => [action, JSON.stringify(this.limitsOf(action))]));
    this.#overrides = valid;
    for (const [action, state] of this.#states) {
      if (before.get(action) === JSON.stringify(this.limitsOf(action))) continue;
      this.#options.logger.info('limits of action changed', { action, limits: this.limitsOf(action) });
      state.fullUntil = 0;
      state.dueAt = 0;
      this.#recall(state, this.#options.threads);
    }
  }

  #state(action: string): ActionState {
    let state = this.#states.get(action);
    if (state === undefined) {
      const paths = limitPaths(this.#options.root);
      state = {
        semaphore: new ZkSemaphore(this.#options.client, `${paths.semaphores}/${action}`),
        bucket: new RateBucket(this.#options.client, `${paths.rates}/${action}`),
        parked: new Map(),
        leases: 0,
        fullUntil: 0,
        watching: false,
        dueAt: 0,
        dueTimer: undefined,
      };
      this.#states.set(action, state);
    }
    return state;
  }
}

function keyOf(queue: string, name: string): string {
  return `${queue}\n${name}`;
}
