/**
 * Where a job whose action this executor lacks can run. Executors publish the
 * actions they offer in their registrations (`<queue>/executors/<name>`, executor-registry.ts); an
 * executor that takes such a job leaves its entry to them, and fails the job only when no live
 * executor has offered the action for a whole grace period, so that a rolling upgrade (the one
 * executor with the action restarting) does not fail its jobs.
 *
 * Not re-taking the entry in a loop is the queue's part: the caller sets the entry aside for
 * `setAsideMs` (LockingQueue.setAside), and this remembers, by entry name, since when its action has
 * been offered nowhere.
 */
import type { RegisteredExecutor } from '../recipes/executor-registry.js';
import { DEFAULT_QUEUE_NAME } from '../recipes/queue-layout.js';

export type ActionAvailability =
  /** Some live executor offers it (or may: one that does not say what it offers). */
  | { readonly kind: 'elsewhere'; readonly executors: readonly string[]; readonly setAsideMs: number }
  /** No live executor offers it, for `waitedMs` so far; still within the grace while `setAsideMs` is defined. */
  | { readonly kind: 'nowhere'; readonly waitedMs: number; readonly graceMs: number; readonly setAsideMs: number | undefined };

export interface ActionOffersOptions {
  /** How long an action may be offered nowhere before its jobs fail. */
  readonly graceMs: number;
  /** How long an entry left to another executor is not taken again here. */
  readonly recheckMs: number;
  /** The live executors' registrations. */
  readonly registered: () => Promise<readonly RegisteredExecutor[]>;
  /** This executor's own name: its own registration does not count as "elsewhere". */
  readonly self: string;
  readonly now?: () => number;
}

/** Registrations are listed at most this often: a burst of foreign entries costs one listing. */
const LISTING_TTL_MS = 1000;

export class ActionOffers {
  readonly #options: ActionOffersOptions;
  readonly #now: () => number;
  /** Entry name -> when its action was first found offered nowhere. */
  readonly #unofferedSince = new Map<string, number>();
  #listing: { readonly at: number; readonly executors: Promise<readonly RegisteredExecutor[]> } | undefined;

  constructor(options: ActionOffersOptions) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  /**
   * Where `action`, named by the job of entry `entry` of queue `queue`, can run; this executor does
   * not offer it. Only executors serving that queue count: no other would ever take the entry.
   */
  async availability(action: string, entry: string, queue: string = DEFAULT_QUEUE_NAME): Promise<ActionAvailability> {
    const { graceMs, recheckMs } = this.#options;
    const executors = await this.#registered();
    const now = this.#now();
    this.#forgetOld(now);
    const offering = executors
      .filter((executor) => executor.name !== this.#options.self && serves(executor, queue) && offers(executor, action))
      .map((executor) => executor.name);
    if (offering.length > 0) {
      this.#unofferedSince.delete(entry);
      return { kind: 'elsewhere', executors: offering, setAsideMs: recheckMs };
    }
    const since = this.#unofferedSince.get(entry) ?? now;
    this.#unofferedSince.set(entry, since);
    const waitedMs = now - since;
    const leftMs = graceMs - waitedMs;
    if (leftMs <= 0) {
      this.#unofferedSince.delete(entry);
      return { kind: 'nowhere', waitedMs, graceMs, setAsideMs: undefined };
    }
    return { kind: 'nowhere', waitedMs, graceMs, setAsideMs: Math.min(recheckMs, leftMs) };
  }

  #registered(): Promise<readonly RegisteredExecutor[]> {
    const now = this.#now();
    if (this.#listing === undefined || now - this.#listing.at >= LISTING_TTL_MS) {
      const executors = this.#options.registered();
      // A failed listing is not cached: the next entry lists again.
      executors.catch(() => {
        if (this.#listing?.executors === executors) this.#listing = undefined;
      });
      this.#listing = { at: now, executors };
    }
    return this.#listing.executors;
  }

  /** An entry not seen again well past its grace was consumed elsewhere: its memory goes. */
  #forgetOld(now: number): void {
    const horizon = 2 * (this.#options.graceMs + this.#options.recheckMs);
    for (const [entry, since] of this.#unofferedSince) if (now - since > horizon) this.#unofferedSince.delete(entry);
  }
}

/** An executor that does not say which queues it serves (an older version) serves the default one. */
function serves(executor: RegisteredExecutor, queue: string): boolean {
  return (executor.info?.queues ?? [DEFAULT_QUEUE_NAME]).includes(queue);
}

function offers(executor: RegisteredExecutor, action: string): boolean {
  const actions = executor.info?.actions;
  return actions === undefined || actions.includes(action);
}
