/**
 * The job API replicas a client may talk to (several `job-api` processes over one PostgreSQL
 * database): calls are spread over the replicas that answer, round-robin, and a replica that did not
 * answer is set aside for a while (1 s, doubling with each failure in a row, at most 30 s) so that
 * the calls that follow go straight to the others instead of each waiting for it to time out again.
 * Each replica keeps its own session: a login is answered by one replica, and replicas configured
 * with different session secrets would not accept each other's cookies.
 */
import { SessionCookie } from './session.js';

export const FIRST_BENCH_MS = 1_000;
export const MAX_BENCH_MS = 30_000;

export class Replica {
  readonly session = new SessionCookie();
  /** A login in flight for this replica, shared by the calls that need one. */
  loggingIn: Promise<void> | undefined;
  #failuresInARow = 0;
  #benchedUntil = 0;

  constructor(readonly baseUrl: string) {}

  /** Until when (ms since the epoch) calls avoid it; 0 when it is in use. */
  get benchedUntil(): number {
    return this.#benchedUntil;
  }

  isBenched(now: number): boolean {
    return now < this.#benchedUntil;
  }

  /** Returns how long it is set aside for. */
  failed(now: number): number {
    this.#failuresInARow += 1;
    const benchMs = Math.min(MAX_BENCH_MS, FIRST_BENCH_MS * 2 ** (this.#failuresInARow - 1));
    this.#benchedUntil = now + benchMs;
    return benchMs;
  }

  answered(): void {
    this.#failuresInARow = 0;
    this.#benchedUntil = 0;
  }
}

export class ReplicaSet {
  readonly replicas: readonly Replica[];
  #next = 0;

  constructor(
    baseUrls: readonly string[],
    private readonly now: () => number = Date.now,
  ) {
    if (baseUrls.length === 0) throw new TypeError('a job API client needs at least one base URL');
    this.replicas = baseUrls.map((url) => new Replica(url));
  }

  get size(): number {
    return this.replicas.length;
  }

  /** The replicas' URLs, for messages. */
  describe(): string {
    return this.replicas.map((replica) => replica.baseUrl).join(', ');
  }

  /**
   * The next replica in turn that is not set aside and not in `skip` (those a call already tried);
   * when every candidate is set aside, the one that comes back first, so a call never has nowhere to
   * go. Undefined only when `skip` holds them all.
   */
  pick(skip: ReadonlySet<Replica> = new Set()): Replica | undefined {
    const now = this.now();
    const count = this.replicas.length;
    let soonest: Replica | undefined;
    for (let step = 0; step < count; step += 1) {
      const replica = this.replicas[(this.#next + step) % count];
      if (replica === undefined || skip.has(replica)) continue;
      if (!replica.isBenched(now)) {
        this.#next = (this.#next + step + 1) % count;
        return replica;
      }
      if (soonest === undefined || replica.benchedUntil < soonest.benchedUntil) soonest = replica;
    }
    return soonest;
  }

  /** True when a call that failed on the replicas in `tried` has another that answers to turn to at once. */
  hasAnswering(tried: ReadonlySet<Replica>): boolean {
    const now = this.now();
    return this.replicas.some((replica) => !tried.has(replica) && !replica.isBenched(now));
  }

  failed(replica: Replica): number {
    return replica.failed(this.now());
  }
}
