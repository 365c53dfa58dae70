/**
 * How a job the executor holds retries its calls to the job API while the API cannot be reached:
 * with the gate's back-off, telling the gate of every such failure (it then admits no new job until a
 * probe gets through), until the call succeeds or `signal` aborts (the job's ZooKeeper session lost,
 * or the executor no longer waiting). The call is still made once when `signal` has aborted already:
 * a write during a shutdown gets its one try.
 */
import { isRetryable } from '../api/client/errors.js';
import { retrying } from '../util/retrying.js';
import type { ApiGate } from './api-gate.js';

/** `call`, telling `gate` when it found the API unreachable (whether or not it is then retried). */
export function reportingUnreachable<T>(gate: ApiGate, call: () => Promise<T>): () => Promise<T> {
  return async () => {
    try {
      return await call();
    } catch (error) {
      if (isRetryable(error)) gate.failed(error);
      throw error;
    }
  };
}

/** `call` until the API answers it (success or a failure that is not about reachability). */
export function untilReachable<T>(gate: ApiGate, call: () => Promise<T>, signal: AbortSignal): Promise<T> {
  return retrying(reportingUnreachable(gate, call), {
    delays: (retry) => gate.retryDelayMs(retry),
    signal,
    abortOnlyCutsWaits: true,
    retryIf: isRetryable,
  });
}
