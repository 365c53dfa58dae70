/**
 * An action may report progress as often as it likes; the job document gets at most one write per
 * interval, carrying the latest value, and never two at once.
 */
import { toError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { OwnershipLostError, type OwnedJob } from './owned-job.js';

export class ProgressWriter {
  readonly #job: OwnedJob;
  readonly #intervalMs: number;
  readonly #give: AbortSignal;
  readonly #logger: Logger;
  readonly #onLost: (error: OwnershipLostError) => void;
  #latest: { percent: number; message: string | undefined } | undefined;
  #pending: { percent: number; message: string | undefined } | undefined;
  #lastWrite = 0;
  #timer: NodeJS.Timeout | undefined;
  #inFlight: Promise<void> | undefined;
  #closed = false;

  constructor(job: OwnedJob, intervalMs: number, give: AbortSignal, logger: Logger, onLost: (error: OwnershipLostError) => void) {
    this.#job = job;
    this.#intervalMs = intervalMs;
    this.#give = give;
    this.#logger = logger;
    this.#onLost = onLost;
  }

  /** The last value the action reported (written or not yet). */
  get latest(): { percent: number; message: string | undefined } | undefined {
    return this.#latest;
  }

  report(percent: number, message: string | undefined): void {
    if (this.#closed) return;
    this.#latest = { percent, message };
    this.#pending = this.#latest;
    this.#schedule();
  }

  /** Stops writing; resolves once a write in flight has settled, so the final write sees its revision. */
  async close(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#timer);
    this.#timer = undefined;
    await this.#inFlight;
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#inFlight !== undefined || this.#pending === undefined) return;
    const wait = Math.max(0, this.#lastWrite + this.#intervalMs - Date.now());
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#flush();
    }, wait);
    this.#timer.unref();
  }

  #flush(): void {
    const next = this.#pending;
    if (next === undefined || this.#closed) return;
    this.#pending = undefined;
    this.#lastWrite = Date.now();
    this.#inFlight = this.#job
      .write({ progress: next.percent, ...(next.message === undefined ? {} : { 'status-message': next.message }) }, this.#give)
      .then(
        () => undefined,
        (error: unknown) => {
          if (error instanceof OwnershipLostError) this.#onLost(error);
          else if (!this.#give.aborted) this.#logger.warn('progress could not be written', { error: toError(error) });
        },
      )
      .finally(() => {
        this.#inFlight = undefined;
        this.#schedule();
      });
  }
}
