export interface DelayOptions {
  /**
   * Whether the timer alone keeps the process running. Off by default: a pause between internal
   * retries must not hold a stopping daemon open. On for a wait that is work in progress, such as a
   * client call waiting to retry, which a CLI awaiting it must not lose by exiting.
   */
  readonly keepProcessAlive?: boolean;
}

/** Waits `ms`, or less if `signal` aborts (then rejects with its reason). */
export function delay(ms: number, signal?: AbortSignal, options: DelayOptions = {}): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted === true) {
      reject(abortReason(signal));
      return;
    }
    const onAbort = (): void => {
      clearTimeout(timer);
      reject(abortReason(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    if (options.keepProcessAlive !== true) timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

function abortReason(signal: AbortSignal | undefined): Error {
  const reason: unknown = signal?.reason;
  return reason instanceof Error ? reason : new Error('aborted');
}
