/** A value that passes an `if`: what `waitFor` hands back once the condition holds. */
export type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

export interface WaitForOptions {
  /** Give up after this long (default 10 s). At least one attempt is always made. */
  readonly timeoutMs?: number;
  /** Pause between attempts (default 50 ms). */
  readonly intervalMs?: number;
  /** What is being waited for, used in the timeout error: "waiting for <message>". */
  readonly message?: string;
  /** Stops waiting at once, rejecting with the signal's reason (e.g. "the process exited"). */
  readonly signal?: AbortSignal;
}

type Outcome<T> = { readonly settled: true; readonly value: T } | { readonly settled: false };

/**
 * Polls `condition` until it returns (or resolves to) a truthy value, and returns that value.
 *
 * A condition that throws counts as "not yet": probes such as a TCP request to a server that is still
 * starting fail on the way to success. The last such error is reported if the deadline passes. A
 * condition that hangs is cut off by the deadline too, so a caller never waits longer than `timeoutMs`.
 */
export async function waitFor<T>(condition: () => T | Promise<T>, options: WaitForOptions = {}): Promise<Truthy<T>> {
  const { timeoutMs = 10_000, intervalMs = 50, message = 'a condition', signal } = options;
  const deadline = Date.now() + timeoutMs;
  let attempts = 0;
  let lastError: unknown;

  for (;;) {
    signal?.throwIfAborted();
    attempts += 1;
    try {
      const outcome = await settleWithin(Promise.resolve().then(condition), deadline - Date.now(), signal);
      if (outcome.settled && isTruthy(outcome.value)) return outcome.value;
    } catch (error) {
      if (signal?.aborted === true) throw abortReason(signal);
      lastError = error;
    }
    const remaining = deadline - Date.now();
    if (remaining <= 0) break;
    await settleWithin(new Promise<never>(() => undefined), Math.min(intervalMs, remaining), signal);
  }

  const detail = lastError === undefined ? '' : `; last error: ${describeError(lastError)}`;
  throw new Error(`Timed out after ${timeoutMs} ms (${attempts} attempts) waiting for ${message}${detail}`, { cause: lastError });
}

function isTruthy<T>(value: T): value is Truthy<T> {
  return Boolean(value);
}

/** Resolves with the work's value, or `{ settled: false }` after `ms`; rejects on failure or abort. */
function settleWithin<T>(work: Promise<T>, ms: number, signal: AbortSignal | undefined): Promise<Outcome<T>> {
  return new Promise<Outcome<T>>((resolve, reject) => {
    const onAbort = (): void => {
      cleanUp();
      if (signal !== undefined) reject(abortReason(signal));
    };
    const timer = setTimeout(
      () => {
        cleanUp();
        resolve({ settled: false });
      },
      Math.max(0, ms),
    );
    function cleanUp(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
    }
    signal?.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        cleanUp();
        resolve({ settled: true, value });
      },
      (error: unknown) => {
        cleanUp();
        reject(error instanceof Error ? error : new Error(describeError(error)));
      },
    );
  });
}

function abortReason(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason : new Error(`aborted: ${describeError(reason)}`);
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
