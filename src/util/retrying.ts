/**
 * The one back-off loop: call `attempt` until it resolves, waiting `delays(retry)` between attempts,
 * for as long as `retryIf` says the failure is worth another try and `signal` is not aborted. Every
 * caller that used to hand-write this loop differed only in those three answers.
 */
import { delay } from './delay.js';

export interface RetryingOptions {
  /** The wait before retry number `retry` (1 for the first retry), in milliseconds. */
  readonly delays: (retry: number) => number;
  /** Aborting it ends the wait at once (rejecting with its reason) and stops further attempts. */
  readonly signal?: AbortSignal;
  /**
   * When true, aborting `signal` only cuts a wait short: an attempt is made even when it has aborted
   * already, and a failure goes to `retryIf` as usual (a retry then rejects at once with its reason).
   * For a call that must still be tried once after its caller stopped waiting for it, such as a
   * job's last write during a shutdown.
   */
  readonly abortOnlyCutsWaits?: boolean;
  /** Whether this failure is retried; rethrown when not. Every failure is retried by default. */
  readonly retryIf?: (error: unknown, next: RetryStep) => boolean;
  /** Told of each failure about to be retried (a log line, a metric). */
  readonly onRetry?: (error: unknown, next: RetryStep) => void;
  /** Whether the wait alone keeps the process alive (see `delay`). */
  readonly keepProcessAlive?: boolean;
}

/** The retry about to happen: its number (1 for the first) and how long it will wait first. */
export interface RetryStep {
  readonly retry: number;
  readonly waitMs: number;
}

/** `attempt` gets the attempt number (1 for the first call). */
export async function retrying<T>(attempt: (attemptNumber: number) => Promise<T>, options: RetryingOptions): Promise<T> {
  const abortStopsAttempts = options.abortOnlyCutsWaits !== true;
  for (let retry = 1; ; retry++) {
    if (abortStopsAttempts) options.signal?.throwIfAborted();
    try {
      return await attempt(retry);
    } catch (error) {
      const next: RetryStep = { retry, waitMs: options.delays(retry) };
      const stopped = abortStopsAttempts && options.signal?.aborted === true;
      if (stopped || (options.retryIf !== undefined && !options.retryIf(error, next))) throw error;
      options.onRetry?.(error, next);
      await delay(next.waitMs, options.signal, options.keepProcessAlive === true ? { keepProcessAlive: true } : {});
    }
  }
}

/** Doubling waits from `firstMs`, capped at `maxMs`: retry 1 waits firstMs, retry 2 twice that, ... */
export function exponentialDelays(firstMs: number, maxMs: number): (retry: number) => number {
  return (retry) => Math.min(firstMs * 2 ** Math.min(retry - 1, 52), maxMs);
}

/** The same wait every time. */
export function fixedDelays(ms: number): (retry: number) => number {
  return () => ms;
}
