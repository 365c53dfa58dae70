/**
 * Binds an action's abort signal to its job's lease deadline inside the action's own thread
 * (docs/contracts.md, invariant 2). The deadline is a float64 in shared memory that the executor
 * moves on while its session is confirmed; the thread checks it on its own clock, so a stalled or
 * stopped main thread cannot extend it.
 *
 * A periodic check alone is not enough: after a stop of the whole process (SIGSTOP, a VM pause, a long
 * GC), the action's own timers may run before the check does, and the action would see a signal that
 * is not aborted although its lease ran out while it was stopped. So the signal also checks the
 * deadline whenever it is read (`aborted`, `throwIfAborted()`): an action that looks at its signal
 * before an effect never has one after its lease.
 */
import { hrtimeMs } from './worker-protocol.js';

/** How often the deadline is looked at when nobody reads the signal (abort listeners fire then). */
const LEASE_CHECK_MS = 25;

const LEASE_EXPIRED = 'the ZooKeeper session lease holding the job ran out: it may be run elsewhere';

function nativeAbortedGetter(): (this: AbortSignal) => boolean {
  // eslint-disable-next-line @typescript-eslint/unbound-method -- a getter, always called with its signal below
  const getter = Object.getOwnPropertyDescriptor(AbortSignal.prototype, 'aborted')?.get;
  if (getter === undefined) throw new Error('AbortSignal.prototype.aborted has no getter: this Node.js is not supported');
  return getter as (this: AbortSignal) => boolean;
}

const abortedOf = nativeAbortedGetter();

/**
 * Aborts `controller` once the deadline in `deadlineBuffer` has passed, and makes its signal check
 * the deadline when read. `onExpired` is told once, with how late the abort came. Returns the stop of
 * the periodic check.
 */
export function bindSignalToLease(
  controller: AbortController,
  deadlineBuffer: SharedArrayBuffer | undefined,
  onExpired: (overdueMs: number) => void,
): () => void {
  if (deadlineBuffer === undefined) return () => undefined;
  const deadline = new Float64Array(deadlineBuffer);
  const signal = controller.signal;
  const check = (): void => {
    if (abortedOf.call(signal)) return;
    const overdueMs = hrtimeMs() - (deadline[0] ?? 0);
    if (overdueMs < 0) return;
    onExpired(Math.round(overdueMs));
    controller.abort(new Error(LEASE_EXPIRED));
  };
  Object.defineProperties(signal, {
    aborted: {
      configurable: true,
      get: () => {
        check();
        return abortedOf.call(signal);
      },
    },
    throwIfAborted: {
      configurable: true,
      value: () => {
        check();
        // As the native method does: the abort reason itself is thrown.
        if (abortedOf.call(signal)) throw signal.reason;
      },
    },
  });
  check();
  const timer = setInterval(check, LEASE_CHECK_MS);
  return () => {
    clearInterval(timer);
  };
}
