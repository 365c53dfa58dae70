/**
 * The executor's view of whether the job API is reachable. While it is not, no slot takes a new job
 * (Nuvla's executor released and re-took in a hot loop): one probe at a time, with exponential
 * back-off and full jitter, finds out when it is back. Jobs already running keep retrying their own
 * writes with the same kind of back-off (`retryDelayMs`), so the request rate stays bounded.
 */
import { backoffDelayMs } from '../api/client/retry.js';
import type { RetryPolicy } from '../api/client/options.js';
import { delay } from '../util/delay.js';
import { toError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';

export interface ApiGateOptions {
  /** Something cheap that succeeds when the API answers. */
  readonly probe: () => Promise<void>;
  readonly logger: Logger;
  readonly backoff: Pick<RetryPolicy, 'baseDelayMs' | 'maxDelayMs'>;
}

export class ApiGate {
  readonly #options: ApiGateOptions;
  readonly #stopped = new AbortController();
  #down: { since: number; recovered: Promise<void>; resolve: () => void } | undefined;
  #failures = 0;

  constructor(options: ApiGateOptions) {
    this.#options = options;
  }

  get isDown(): boolean {
    return this.#down !== undefined;
  }

  /** How long to wait before the `retry`-th retry of a call (1-based). */
  retryDelayMs(retry: number): number {
    return backoffDelayMs(retry, { retries: 0, ...this.#options.backoff });
  }

  /** A call found the API unreachable: stop admitting new work until a probe gets through. */
  failed(error: unknown): void {
    if (this.#down !== undefined || this.#stopped.signal.aborted) return;
    let resolve: () => void = () => undefined;
    const recovered = new Promise<void>((done) => (resolve = done));
    this.#down = { since: Date.now(), recovered, resolve };
    this.#options.logger.warn('job API unreachable: taking no new jobs until it answers', { error: toError(error) });
    void this.#probeUntilBack();
  }

  /** Resolves at once while the API is reachable, else when it is back (or rejects when `signal` aborts). */
  async admit(signal: AbortSignal): Promise<void> {
    const down = this.#down;
    if (down === undefined) return;
    signal.throwIfAborted();
    await new Promise<void>((resolve, reject) => {
      const onAbort = (): void => {
        reject(signal.reason instanceof Error ? signal.reason : new Error('aborted'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      void down.recovered.then(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      });
    });
  }

  stop(): void {
    this.#stopped.abort();
    this.#recover();
  }

  async #probeUntilBack(): Promise<void> {
    this.#failures = 0;
    const since = this.#down?.since ?? Date.now();
    while (this.#down !== undefined) {
      this.#failures += 1;
      try {
        await delay(this.retryDelayMs(this.#failures), this.#stopped.signal);
        await this.#options.probe();
      } catch (error) {
        if (this.#stopped.signal.aborted) return;
        this.#options.logger.debug('job API still unreachable', { error: toError(error), probes: this.#failures });
        continue;
      }
      this.#options.logger.info('job API reachable again', { downForMs: Date.now() - since, probes: this.#failures });
      this.#recover();
    }
  }

  #recover(): void {
    const down = this.#down;
    this.#down = undefined;
    down?.resolve();
  }
}
