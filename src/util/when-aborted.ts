/**
 * A promise that resolves when `signal` aborts (at once if it already has), to race against work that
 * takes no signal of its own; the caller then throws the signal's reason. `dispose` removes the
 * listener when the work won the race.
 */
export function whenAborted(signal: AbortSignal): { readonly promise: Promise<undefined>; readonly dispose: () => void } {
  let dispose = (): void => undefined;
  const promise = new Promise<undefined>((resolve) => {
    // An aborted signal fires no further event: an abort that came before this call must count too.
    if (signal.aborted) {
      resolve(undefined);
      return;
    }
    const onAbort = (): void => {
      resolve(undefined);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    dispose = () => {
      signal.removeEventListener('abort', onAbort);
    };
  });
  return { promise, dispose };
}
