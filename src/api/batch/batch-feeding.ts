/**
 * The batch feeder's records on a batch (docs/batches.md): how far it fed (`advance`, a
 * compare-and-set on `sent`), which failed tasks it put back for a retry (`requeue`), and why it
 * cannot feed it (`wait`). Free of I/O, as batch-field.ts.
 */
import { badRequest, conflict } from '../errors.js';
import type { JobDocument } from '../job/document.js';
import { isRecord } from '../../util/is-record.js';
import { MAX_BATCH_SIZE, requireLive, settled, withBatch, type BatchField } from './batch-field.js';

export interface Advance {
  /** The `sent` the feeder read: refused (409) when the batch moved on meanwhile (another feeder). */
  readonly from: number;
  readonly sent: number;
  readonly marker?: string;
  readonly exhausted: boolean;
  readonly total?: number;
  /** The rate's clock after this group (see BatchField `paced-until`). */
  readonly pacedUntil?: string;
}

function pacedUntilOf(body: Record<string, unknown>): string | undefined {
  const value = body['paced-until'];
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || Number.isNaN(Date.parse(value))) throw badRequest('"paced-until" must be an ISO 8601 time');
  return value;
}

export function parseAdvance(body: unknown): Advance {
  if (!isRecord(body)) throw badRequest('an advance is {"from": n, "sent": m, "marker": "...", "exhausted": false}');
  const { from, sent, marker, exhausted, total } = body;
  const count = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
  if (!count(from) || !count(sent) || sent < from) throw badRequest('an advance needs counts "from" <= "sent"');
  if (marker !== undefined && typeof marker !== 'string') throw badRequest('"marker" must be a string');
  if (typeof exhausted !== 'boolean') throw badRequest('"exhausted" must be true or false');
  if (total !== undefined && !count(total)) throw badRequest('"total" must be a count');
  const pacedUntil = pacedUntilOf(body);
  return {
    from,
    sent,
    exhausted,
    ...(marker === undefined ? {} : { marker }),
    ...(total === undefined ? {} : { total }),
    ...(pacedUntil === undefined ? {} : { pacedUntil }),
  };
}

/** The feeder's record of what it created: compare-and-set on `sent`, so two feeders never both advance. */
export function advanced(job: JobDocument, advance: Advance, now: Date): JobDocument {
  const batch = requireLive(job);
  if (batch.sent !== advance.from) {
    throw conflict(`batch ${job.id} has sent ${String(batch.sent)} tasks, not ${String(advance.from)}: another feeder moved it`, {
      sent: batch.sent,
    });
  }
  const exhausted = advance.exhausted && (batch.source === 'generator' || batch.sealed);
  const total = exhausted ? advance.sent : (advance.total ?? batch.total);
  const { waiting, ...rest } = batch;
  const next: BatchField = {
    ...rest,
    sent: advance.sent,
    ...(advance.pacedUntil === undefined ? {} : { 'paced-until': advance.pacedUntil }),
    ...(advance.marker === undefined ? {} : { marker: advance.marker }),
    ...(total === undefined ? {} : { total }),
    'total-estimated': !exhausted && batch['total-estimated'],
    phase: exhausted && batch.phase === 'feeding' ? 'draining' : batch.phase,
  };
  // Fed again after waiting: the note of why it waited goes.
  const fed = withBatch(job, next, now, waiting === undefined ? {} : { 'status-message': 'feeding' });
  return settled(fed, now) ?? fed;
}

/** The feeder cannot feed the batch (`reason`): it says so on the batch, once; undefined when it already does. */
export function heldBack(job: JobDocument, reason: string, now: Date): JobDocument | undefined {
  const batch = requireLive(job);
  if (batch.waiting === reason) return undefined;
  return withBatch(job, { ...batch, waiting: reason }, now, {
    'status-message': `waiting: ${reason}`,
    'time-of-status-change': now.toISOString(),
  });
}

export interface Requeue {
  /** The most failed tasks to put back now: the room the feeder has (max-in-flight, rate, queue window). */
  readonly limit: number;
  readonly pacedUntil?: string;
}

export function parseRequeue(body: unknown): Requeue {
  if (!isRecord(body)) throw badRequest('a requeue is {"limit": n}');
  const { limit } = body;
  if (typeof limit !== 'number' || !Number.isSafeInteger(limit) || limit < 1 || limit > MAX_BATCH_SIZE) {
    throw badRequest(`"limit" must be an integer from 1 to ${String(MAX_BATCH_SIZE)}`);
  }
  const pacedUntil = pacedUntilOf(body);
  return { limit, ...(pacedUntil === undefined ? {} : { pacedUntil }) };
}

/** After a requeue of `count` failed tasks: the retry is over once none that failed before it is left. */
export function requeued(job: JobDocument, requeue: Requeue, count: number, now: Date): JobDocument {
  const batch = requireLive(job);
  const { 'retrying-since': since, ...rest } = batch;
  const next: BatchField = {
    ...(count < requeue.limit ? rest : batch),
    ...(requeue.pacedUntil === undefined ? {} : { 'paced-until': requeue.pacedUntil }),
  };
  const done = since !== undefined && count < requeue.limit;
  const changed = withBatch(job, next, now, done ? { 'status-message': 'failed tasks retried' } : {});
  const ended = done ? settled(changed, now) : undefined;
  // One update, one revision: settling builds on the changed document, which already counts it.
  return ended === undefined ? changed : { ...ended, revision: changed.revision };
}
