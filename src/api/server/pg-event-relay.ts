/**
 * Lifecycle events across API replicas that share one PostgreSQL database: each replica sends the
 * events of the writes it served with NOTIFY on one channel, and LISTENs there for the others', which
 * it hands to its own hub (numbered there, not logged again). A client connected to any replica then
 * sees every job's events. Notifications are best effort: events published while this replica's
 * listening connection is down reach its streams only as later state (followers re-read the job).
 * Each event carries its audience (job-acl.ts), so the receiving hub serves it to the same keys; an
 * event without one (from an older replica) goes to keys that read every job only.
 */
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { parseJobEvent } from '../job/events.js';
import { isRecord } from '../../util/is-record.js';
import { delay } from '../../util/delay.js';
import type { Logger } from '../../util/logger.js';
import { toError } from '../../util/errors.js';
import { exponentialDelays, retrying } from '../../util/retrying.js';
import type { HubEvent, JobEventHub } from './event-hub.js';
import { parseAudience } from './job-acl.js';

export const EVENT_CHANNEL = 'zkje_job_events';
/** PostgreSQL refuses NOTIFY payloads of 8,000 bytes or more. */
const MAX_PAYLOAD_BYTES = 7_500;
const RECONNECT_MS = { first: 500, max: 10_000 } as const;

export class PgEventRelay {
  readonly #url: string;
  readonly #hub: JobEventHub;
  readonly #logger: Logger;
  readonly #origin = randomUUID();
  readonly #closed = new AbortController();
  #client: pg.Client | undefined;
  #pending: HubEvent[] = [];
  #scheduled = false;
  /** Flushes run one after another: a pg client takes one query at a time. */
  #flushing: Promise<void> = Promise.resolve();
  #unsubscribe: () => void = () => undefined;

  private constructor(url: string, hub: JobEventHub, logger: Logger) {
    this.#url = url;
    this.#hub = hub;
    this.#logger = logger;
  }

  /** Listens before it returns, so no event of another replica published after this is missed. */
  static async start(url: string, hub: JobEventHub, logger: Logger): Promise<PgEventRelay> {
    const relay = new PgEventRelay(url, hub, logger);
    await relay.#connect();
    relay.#unsubscribe = hub.onLocalPublish((events) => {
      relay.#send(events);
    });
    return relay;
  }

  async close(): Promise<void> {
    this.#closed.abort();
    this.#unsubscribe();
    await this.#flushing;
    await this.#client?.end().catch(() => undefined);
    this.#client = undefined;
  }

  async #connect(): Promise<void> {
    const client = new pg.Client({ connectionString: this.#url });
    client.on('notification', (message) => {
      if (message.channel === EVENT_CHANNEL && message.payload !== undefined) this.#receive(message.payload);
    });
    // A broken connection is replaced; without a listener its 'error' would end the process.
    client.on('error', (error) => {
      this.#logger.warn('job event relay connection failed; reconnecting', { error });
    });
    client.on('end', () => {
      if (this.#client === client) this.#client = undefined;
      if (!this.#closed.signal.aborted) void this.#reconnect();
    });
    await client.connect();
    await client.query(`LISTEN ${EVENT_CHANNEL}`);
    this.#client = client;
  }

  // A getter, because TypeScript keeps `signal.aborted` narrowed to false across awaits.
  get #isClosed(): boolean {
    return this.#closed.signal.aborted;
  }

  /** Until it listens again or the relay is closed: a moment's wait first, then doubling waits. */
  async #reconnect(): Promise<void> {
    const signal = this.#closed.signal;
    try {
      await delay(RECONNECT_MS.first, signal);
      await retrying(() => this.#connect(), {
        delays: exponentialDelays(2 * RECONNECT_MS.first, RECONNECT_MS.max),
        signal,
        onRetry: (error, next) => {
          this.#logger.warn('job event relay could not reconnect', { retryInMs: next.waitMs, error: toError(error) });
        },
      });
      this.#logger.info('job event relay listening again');
    } catch (error) {
      // retrying() only gives up once the relay is closed; anything else would be a bug worth seeing.
      if (!this.#isClosed) this.#logger.error('job event relay stopped reconnecting', { error: toError(error) });
    }
  }

  /** Batched per turn of the event loop (and while a NOTIFY is under way): one carries many writes' events. */
  #send(events: readonly HubEvent[]): void {
    this.#pending.push(...events);
    if (this.#scheduled) return;
    this.#scheduled = true;
    this.#flushing = this.#flushing.then(() => new Promise<void>((resolve) => setImmediate(resolve))).then(() => this.#flush());
  }

  async #flush(): Promise<void> {
    const events = this.#pending;
    this.#pending = [];
    this.#scheduled = false;
    const client = this.#client;
    if (client === undefined || events.length === 0) return;
    try {
      for (const payload of payloadsOf(this.#origin, events)) await client.query('SELECT pg_notify($1, $2)', [EVENT_CHANNEL, payload]);
    } catch (error) {
      this.#logger.warn('job events not relayed to the other API replicas', { events: events.length, error: toError(error) });
    }
  }

  #receive(payload: string): void {
    let parsed: unknown;
    try {
      parsed = JSON.parse(payload);
    } catch {
      return;
    }
    if (!isRecord(parsed) || parsed.origin === this.#origin || !Array.isArray(parsed.events)) return;
    const events = parsed.events.flatMap((item: unknown): HubEvent[] => {
      const event = parseJobEvent(item, { seqRequired: false });
      if (event === undefined || !isRecord(item)) return [];
      const { seq: _seq, ...published } = event;
      return [{ event: published, audience: parseAudience(item.audience) }];
    });
    this.#hub.publish(events, 'remote');
  }
}

/** `{origin, events}` payloads under PostgreSQL's limit; an event too large on its own goes without its status message. */
function payloadsOf(origin: string, events: readonly HubEvent[]): string[] {
  const payloads: string[] = [];
  let batch: string[] = [];
  let bytes = 0;
  const flush = (): void => {
    if (batch.length > 0) payloads.push(`{"origin":"${origin}","events":[${batch.join(',')}]}`);
    batch = [];
    bytes = 0;
  };
  for (const { event, audience } of events) {
    let json = JSON.stringify({ ...event, audience });
    if (Buffer.byteLength(json) > MAX_PAYLOAD_BYTES - 100) {
      const { 'status-message': _message, ...smaller } = event;
      json = JSON.stringify({ ...smaller, audience });
    }
    const size = Buffer.byteLength(json) + 1;
    if (bytes + size > MAX_PAYLOAD_BYTES - 100) flush();
    batch.push(json);
    bytes += size;
  }
  flush();
  return payloads;
}
