/**
 * The lease a ZooKeeper session gives its holder: how long this process may still act as the owner
 * of what the session holds (queue items, leadership) without hearing from the server again.
 *
 * The server expires a session a session timeout after the last request it heard; this process
 * cannot know when that was, but a request whose reply came back was heard no earlier than it was
 * sent. So the session is certainly alive until (send time of the last answered request) + timeout,
 * and the lease ends a safety margin before that (Chubby's lease arithmetic; Curator's rule that a
 * client not sure of its session is not an owner). Measured on the monotonic clock
 * (`performance.now()`), which wall-clock steps cannot move. docs/contracts.md, invariant 2.
 */

/**
 * The margin kept between the end of the lease and the earliest moment the server may expire the
 * session: max(500 ms, timeout / 5). It covers the time from the lease's end to the action actually
 * stopping (a timer firing late on a busy event loop, the abort reaching the worker thread) and
 * the server's expiry running up to one tick early relative to our clock; a fifth of the timeout
 * keeps most of the session usable while staying above a loaded machine's scheduling delays.
 */
export function leaseMarginMs(sessionTimeoutMs: number): number {
  return Math.max(500, Math.floor(sessionTimeoutMs / 5));
}

/** The lease's monotonic clock, in milliseconds (`performance.now()`, process-wide for one thread). */
export function monotonicNow(): number {
  return performance.now();
}

export class SessionLease {
  readonly #timeoutMs: () => number;
  readonly #onExpired: () => void;
  #confirmedSendAt: number | undefined;
  #timer: NodeJS.Timeout | undefined;
  #ended = false;

  /**
   * `timeoutMs` is read at each confirmation: the timeout the server granted is only known after the
   * handshake. `onExpired` runs once, when the lease ends unrenewed.
   */
  constructor(timeoutMs: () => number, onExpired: () => void) {
    this.#timeoutMs = timeoutMs;
    this.#onExpired = onExpired;
  }

  /** Send time (monotonic ms) of the last answered request; undefined until one was answered. */
  get renewedAt(): number | undefined {
    return this.#confirmedSendAt;
  }

  /** When the lease ends (monotonic ms); undefined until a request was answered. */
  get expiresAt(): number | undefined {
    if (this.#confirmedSendAt === undefined) return undefined;
    const timeoutMs = this.#timeoutMs();
    return this.#confirmedSendAt + timeoutMs - leaseMarginMs(timeoutMs);
  }

  /** How long the lease still runs; 0 when it has ended or was never confirmed. */
  remainingMs(now = monotonicNow()): number {
    const expiresAt = this.expiresAt;
    if (this.#ended || expiresAt === undefined) return 0;
    return Math.max(0, expiresAt - now);
  }

  /** A request sent at `sentAt` (monotonic ms) was answered: the server heard us then at the latest. */
  confirm(sentAt: number): void {
    if (this.#ended || (this.#confirmedSendAt !== undefined && sentAt <= this.#confirmedSendAt)) return;
    this.#confirmedSendAt = sentAt;
    this.#arm();
  }

  /** The session is over: no more expiry callback. */
  end(): void {
    this.#ended = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #arm(): void {
    clearTimeout(this.#timer);
    const expiresAt = this.expiresAt;
    if (expiresAt === undefined) return;
    // After a stall (SIGSTOP, a long GC) this timer may run after replies read in the same loop turn;
    // those cannot renew an ended lease (their send time is as old as the stall), and whoever must not
    // act on an ended lease asks remainingMs(), which reads the clock rather than this timer.
    this.#timer = setTimeout(
      () => {
        this.#timer = undefined;
        if (this.#ended) return;
        if (monotonicNow() < (this.expiresAt ?? 0)) {
          this.#arm();
          return;
        }
        this.#ended = true;
        this.#onExpired();
      },
      Math.max(0, expiresAt - monotonicNow()),
    );
    this.#timer.unref();
  }
}
