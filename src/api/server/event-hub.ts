/**
 * The job API's lifecycle events: each is numbered, logged as one structured line, kept in a short
 * history, and handed to the live subscribers whose filter it matches (the event stream's clients).
 * One hub per API process; replicas on one PostgreSQL database pass each other their local events
 * (pg-event-relay.ts), which each hub numbers in its own sequence.
 *
 * Each event travels with its audience (job-acl.ts): which keys bound by job acls may see it, decided
 * once from its job when the event is made. A subscriber bound by acls names its identities in its
 * filter, and gets, live and in the history, only the events whose audience includes one of them.
 * The audience is never served nor logged: it is the job's acl, which a viewer may not be shown.
 */
import type { JobEvent, PublishedJobEvent } from '../job/events.js';
import type { Logger } from '../../util/logger.js';
import { inAudience, type EventAudience } from './job-acl.js';

export interface EventFilter {
  readonly job?: string;
  readonly action?: string;
  /** The subscriber's identities (job-acl.ts identitiesOf) when its key is bound by job acls; absent: every job's events. */
  readonly identities?: readonly string[];
}

/** An event and who may see it. */
export interface HubEvent<E extends PublishedJobEvent = PublishedJobEvent> {
  readonly event: E;
  readonly audience: EventAudience;
}

/** The events of one job, each with the job's audience. */
export function forAudience(events: readonly PublishedJobEvent[], audience: EventAudience): HubEvent[] {
  return events.map((event) => ({ event, audience }));
}

export type EventListener = (event: JobEvent) => void;

/** Enough for a client that reconnects within a few seconds under load to miss nothing. */
export const DEFAULT_HISTORY = 10_000;

export class JobEventHub {
  readonly #logger: Logger;
  /** A ring: the event with seq n is at (n - 1) % size while it is kept. */
  readonly #history: (HubEvent<JobEvent> | undefined)[];
  readonly #historySize: number;
  readonly #subscribers = new Map<EventListener, EventFilter>();
  readonly #closers = new Set<() => void>();
  readonly #localListeners = new Set<(events: readonly HubEvent[]) => void>();
  #seq = 0;

  constructor(logger: Logger, historySize = DEFAULT_HISTORY) {
    this.#logger = logger;
    this.#historySize = historySize;
    this.#history = new Array<HubEvent<JobEvent> | undefined>(historySize);
  }

  get lastSeq(): number {
    return this.#seq;
  }

  get subscriberCount(): number {
    return this.#subscribers.size;
  }

  /**
   * Numbers, keeps and hands out the events. `local` ones (of writes this process served) are also
   * logged and passed to `onLocalPublish` listeners (the relay to other replicas); `remote` ones came
   * from another replica, which logged them.
   */
  publish(events: readonly HubEvent[], origin: 'local' | 'remote' = 'local'): void {
    if (events.length === 0) return;
    if (origin === 'local') for (const listener of this.#localListeners) listener(events);
    for (const { event: published, audience } of events) {
      this.#seq += 1;
      const kept = { event: { seq: this.#seq, ...published }, audience };
      const { event } = kept;
      this.#history[(this.#seq - 1) % this.#historySize] = kept;
      if (origin === 'local') this.#logger.info(`job ${event.type}`, { event: `job.${event.type}`, ...event });
      for (const [listener, filter] of this.#subscribers) if (matches(kept, filter)) listener(event);
    }
  }

  /**
   * Calls `listener` with the kept events after `afterSeq` (if given) that match, then with each new
   * one; `onClose` runs when the hub closes. Returns the unsubscribe function.
   */
  subscribe(
    filter: EventFilter,
    listener: EventListener,
    options: { readonly afterSeq?: number; readonly onClose?: () => void } = {},
  ): () => void {
    const { afterSeq, onClose } = options;
    if (afterSeq !== undefined) {
      const oldest = Math.max(afterSeq + 1, this.#seq - this.#historySize + 1, 1);
      for (let seq = oldest; seq <= this.#seq; seq++) {
        const kept = this.#history[(seq - 1) % this.#historySize];
        if (kept !== undefined && matches(kept, filter)) listener(kept.event);
      }
    }
    this.#subscribers.set(listener, filter);
    if (onClose !== undefined) this.#closers.add(onClose);
    return () => {
      this.#subscribers.delete(listener);
      if (onClose !== undefined) this.#closers.delete(onClose);
    };
  }

  /** Told of every batch of local events, before they are numbered (for relaying them elsewhere). */
  onLocalPublish(listener: (events: readonly HubEvent[]) => void): () => void {
    this.#localListeners.add(listener);
    return () => this.#localListeners.delete(listener);
  }

  /** Ends every subscription (the server is closing: open streams must not hold it open). */
  close(): void {
    const closers = [...this.#closers];
    this.#closers.clear();
    this.#subscribers.clear();
    for (const close of closers) close();
  }
}

function matches({ event, audience }: HubEvent<JobEvent>, filter: EventFilter): boolean {
  return (
    (filter.job === undefined || filter.job === event.job) &&
    (filter.action === undefined || filter.action === event.action) &&
    (filter.identities === undefined || inAudience(audience, filter.identities))
  );
}
