/**
 * The job event stream read ahead into a buffer, so a command can subscribe first, then read a job's
 * state, then take the events that came meanwhile (the stream has no history for a new subscriber).
 *
 * A stream that has worked and breaks (the client already reconnects a few times by itself) is
 * opened once more; the consumer is told (`reopened`) so it reads the job's state again for what fell
 * in the gap. A second break in a row, or a stream that never delivered an event, fails the feed.
 * `next(idleMs)` also returns `idle` after a quiet spell: a follower then re-reads the job, because a
 * stream may miss what its replica did not see (replicas without a shared PostgreSQL, a relay
 * connection that was down).
 */
import { ApiError } from '../api/errors.js';
import type { JobEvent } from '../api/job/events.js';
import type { EventStreamOptions } from '../api/client/event-stream.js';

/** Failures of the stream itself, which a new connection may not have. */
const REOPENABLE: ReadonlySet<string> = new Set(['unavailable', 'internal']);

export interface EventSource {
  events(options: EventStreamOptions): AsyncIterable<JobEvent>;
}

export interface EventFilter {
  readonly job?: string;
  readonly action?: string;
}

export type FeedItem = { readonly kind: 'event'; readonly event: JobEvent } | { readonly kind: 'reopened'; readonly reason: string };

export class EventFeed {
  readonly #items: FeedItem[] = [];
  readonly #stop = new AbortController();
  #failure: Error | undefined;
  #ended = false;
  #wake: (() => void) | undefined;
  #markOpen: () => void = () => undefined;
  /** Settles when the stream is first open, or the feed ends or fails before that. */
  readonly #open = new Promise<void>((resolve) => {
    this.#markOpen = resolve;
  });

  private constructor() {}

  /**
   * Waits until the server has subscribed the stream (at most `timeoutMs`), so that a read of the job
   * after it misses nothing; a stream that fails meanwhile shows its failure at the next `next()`.
   */
  async opened(timeoutMs: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.#open, new Promise<void>((resolve) => (timer = setTimeout(resolve, timeoutMs)))]);
    clearTimeout(timer);
  }

  /** Starts reading at once; `signal` (Ctrl-C) ends the feed, as does close(). */
  static open(source: EventSource, filter: EventFilter, signal: AbortSignal): EventFeed {
    const feed = new EventFeed();
    const stop = (): void => {
      feed.close();
    };
    if (signal.aborted) stop();
    else signal.addEventListener('abort', stop, { once: true });
    void feed.#run(source, filter).finally(() => {
      signal.removeEventListener('abort', stop);
    });
    return feed;
  }

  /**
   * The next item; `idle` when none came within `idleMs`; `ended` once closed or interrupted.
   * Rejects with the stream's failure when it broke twice in a row.
   */
  async next(idleMs: number): Promise<FeedItem | 'idle' | 'ended'> {
    for (;;) {
      const item = this.#items.shift();
      if (item !== undefined) return item;
      if (this.#failure !== undefined) throw this.#failure;
      if (this.#ended) return 'ended';
      if (!(await this.#sleep(idleMs))) return 'idle';
    }
  }

  close(): void {
    this.#stop.abort();
    this.#end();
  }

  // A getter, because TypeScript keeps `signal.aborted` narrowed to false across the awaits of the loop.
  get #stopped(): boolean {
    return this.#stop.signal.aborted;
  }

  async #run(source: EventSource, filter: EventFilter): Promise<void> {
    const signal = this.#stop.signal;
    let reopened = false;
    let worked = false;
    while (!signal.aborted) {
      try {
        for await (const event of source.events({
          ...filter,
          signal,
          onOpen: () => {
            this.#markOpen();
          },
        })) {
          reopened = false;
          worked = true;
          this.#push({ kind: 'event', event });
        }
        if (this.#stopped) break;
        throw new ApiError('unavailable', 'the job API ended the event stream');
      } catch (error) {
        if (this.#stopped) break;
        const failure = error instanceof Error ? error : new Error(String(error));
        // A refused request (bad filter, credentials) fails the same way every time, and a stream
        // that never worked is not worth a second try (the client has retried its connection).
        if (!(error instanceof ApiError) || !REOPENABLE.has(error.code) || !worked) {
          this.#failure = failure;
          this.#markOpen();
          this.#notify();
          return;
        }
        if (reopened) {
          this.#failure = new ApiError(error.code, `the job event stream broke twice in a row: ${failure.message}`, { cause: failure });
          this.#notify();
          return;
        }
        reopened = true;
        this.#push({ kind: 'reopened', reason: failure.message });
      }
    }
    this.#end();
  }

  #push(item: FeedItem): void {
    if (this.#ended) return;
    this.#items.push(item);
    this.#notify();
  }

  #end(): void {
    this.#ended = true;
    this.#markOpen();
    this.#notify();
  }

  #notify(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }

  /** True when woken by news, false after `ms` of quiet. */
  #sleep(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve(false);
      }, ms);
      this.#wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
  }
}
