/**
 * Says when the job API stalls: one warning once a call has waited more than STALL_AFTER_MS for an
 * answer (its retries included), one line when the API answers again, and nothing in between. A daemon
 * waiting on a hung API otherwise logged nothing until a timeout (30 s) or a final failure, so an
 * operator could not tell a stall from idleness.
 *
 * The API has answered again when a call that stalled gets an answer of any status, or, once the
 * stalled calls have all given up, when any call does. An answer to another call while a stalled one
 * still waits does not count: the API is then only partly stuck.
 */
import type { Logger } from '../../util/logger.js';

const STALL_AFTER_MS = 5000;

/** One call's view of the watch: told when the call gets an answer, and when it ends either way. */
export interface WatchedCall {
  answered(): void;
  end(): void;
}

export class StallWatch {
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #stalled = new Set<object>();
  /** When the oldest call of the current stall started; undefined while the API answers. */
  #since: number | undefined;

  constructor(logger: Logger, now: () => number = Date.now) {
    this.#logger = logger;
    this.#now = now;
  }

  begin(call: { readonly method: string; readonly path: string }): WatchedCall {
    const token = {};
    const started = this.#now();
    const timer = setTimeout(() => {
      this.#stalled.add(token);
      if (this.#since !== undefined) return;
      this.#since = started;
      this.#logger.warn(`job API has not answered for ${String(STALL_AFTER_MS / 1000)} s; still waiting`, {
        method: call.method,
        path: call.path,
      });
    }, STALL_AFTER_MS);
    // A watch never keeps a process alive on its own.
    timer.unref();
    return {
      answered: () => {
        if (this.#since !== undefined && (this.#stalled.has(token) || this.#stalled.size === 0)) {
          const stalledSeconds = Math.round((this.#now() - this.#since) / 100) / 10;
          this.#since = undefined;
          this.#stalled.clear();
          this.#logger.info(`job API answers again after ${String(stalledSeconds)} s`, { method: call.method, path: call.path });
        }
      },
      end: () => {
        clearTimeout(timer);
        this.#stalled.delete(token);
      },
    };
  }
}
