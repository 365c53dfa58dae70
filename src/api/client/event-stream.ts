/**
 * Following the job API's event stream (GET /api/job/events): events as they happen, filtered by job
 * or action. A stream that breaks is opened again with the last event's number, so the server replays
 * what was missed (as far as its history reaches); it gives up after the retry policy's attempts in a
 * row without a successful connection. With several replicas the stream stays on one while it
 * answers, and moves to another when it does not: each replica numbers events in its own sequence,
 * so the move starts afresh (no replay), and `onOpen` tells the caller to read the state it follows again.
 */
import { ApiError } from '../errors.js';
import { parseJobEvent, type JobEvent } from '../job/events.js';
import { delay } from '../../util/delay.js';
import type { Logger } from '../../util/logger.js';
import { errorFromResponse } from './errors.js';
import type { HttpTransport } from './http.js';
import type { ApiCredentials, RetryPolicy } from './options.js';
import type { Replica, ReplicaSet } from './replicas.js';
import { backoffDelayMs } from './retry.js';
import { readSse } from './sse.js';

export interface EventStreamOptions {
  /** Only this job's events (`job/<uuid>`). */
  readonly job?: string;
  /** Only this action's events. */
  readonly action?: string;
  /** Ends the stream (the generator then returns). */
  readonly signal?: AbortSignal;
  /**
   * Called each time the stream is open (the server has subscribed it): from then on, nothing that
   * happens is missed, so a caller reads a job's state after this, not before.
   */
  readonly onOpen?: () => void;
}

export const EVENTS_PATH = '/api/job/events';

export async function* followEvents(
  http: HttpTransport,
  replicas: ReplicaSet,
  credentials: ApiCredentials | undefined,
  retry: RetryPolicy,
  logger: Logger,
  options: EventStreamOptions,
): AsyncGenerator<JobEvent> {
  const signal = options.signal ?? new AbortController().signal;
  const query: Record<string, string> = {};
  if (options.job !== undefined) query.job = options.job;
  if (options.action !== undefined) query.action = options.action;
  // The stream authenticates with the key itself: a streaming request cannot be replayed after a login.
  const headers: Record<string, string> =
    credentials === undefined ? {} : { authorization: `Bearer ${credentials.key}:${credentials.secret}` };
  let lastSeq: number | undefined;
  let replica: Replica | undefined;
  const silent = new Set<Replica>();
  for (let failures = 0; !signal.aborted;) {
    let failure: ApiError;
    const next = replica ?? replicas.pick(silent) ?? replicas.pick();
    if (next === undefined) throw new ApiError('internal', 'the job API client has no replica to follow events from');
    if (next !== replica) lastSeq = undefined;
    replica = next;
    try {
      const opened = await http.openStream(
        { path: EVENTS_PATH, query, headers: lastSeq === undefined ? headers : { ...headers, 'last-event-id': String(lastSeq) } },
        signal,
        replica.baseUrl,
      );
      if ('response' in opened)
        throw errorFromResponse(opened.response.status, opened.response.body, { method: 'GET', path: EVENTS_PATH, attempts: 1 });
      failures = 0;
      silent.clear();
      replica.answered();
      options.onOpen?.();
      try {
        for await (const message of readSse(opened.stream)) {
          const event = parseJobEvent(parseData(message.data));
          if (event === undefined) {
            logger.warn('job event stream sent something that is not a job event; skipped', { data: message.data.slice(0, 200) });
            continue;
          }
          lastSeq = event.seq;
          yield event;
        }
      } finally {
        opened.stream.destroy();
      }
      failure = new ApiError('unavailable', 'the job event stream was closed by the server');
    } catch (error) {
      if (isAborted(signal)) return;
      if (!(error instanceof ApiError) || error.code === 'unauthorized' || error.code === 'forbidden' || error.code === 'bad-request')
        throw error;
      failure = error;
      if (replicas.size > 1 && error.code === 'unavailable') {
        replicas.failed(replica);
        silent.add(replica);
        replica = undefined;
        if (replicas.hasAnswering(silent)) {
          logger.warn('job event stream broken; following another replica', { error: failure.message });
          continue;
        }
        silent.clear();
      }
    }
    failures += 1;
    if (failures > retry.retries) throw failure;
    const wait = backoffDelayMs(failures, retry);
    logger.warn('job event stream broken; reconnecting', { after: lastSeq ?? null, retryInMs: wait, error: failure.message });
    await delay(wait, signal).catch(() => undefined);
  }
}

// A function, because TypeScript keeps `signal.aborted` narrowed to false across awaits.
function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

function parseData(data: string): unknown {
  try {
    return JSON.parse(data) as unknown;
  } catch {
    return undefined;
  }
}
