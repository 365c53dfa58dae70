/**
 * A batch's `batch` field from the wire (`unknown` JSON) into BatchField: what the feeder and jobctl
 * read of a batch, checked field by field; undefined when it is not one.
 */
import { isRecord } from '../../util/is-record.js';
import { BATCH_PHASES, isCounters, type BatchField, type BatchPhase } from './batch-field.js';

const count = (value: unknown): value is number => typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;

export function parseBatchField(value: unknown): BatchField | undefined {
  if (!isRecord(value)) return undefined;
  const { action, source, generator, args, phase, paused, sealed, marker, sent, total, succeeded, failed, canceled, counters, lock } =
    value;
  const tasksPerSecond = value['tasks-per-second'];
  const batchSize = value['batch-size'];
  const maxInFlight = value['max-in-flight'];
  const estimated = value['total-estimated'];
  const canary = value.canary;
  const defaults = value.defaults;
  const retryingSince = value['retrying-since'];
  const pacedUntil = value['paced-until'];
  const { waiting } = value;
  if (typeof action !== 'string' || (source !== 'list' && source !== 'generator')) return undefined;
  if (typeof phase !== 'string' || !(BATCH_PHASES as readonly string[]).includes(phase)) return undefined;
  if (typeof paused !== 'boolean' || typeof sealed !== 'boolean' || typeof estimated !== 'boolean') return undefined;
  if (!count(sent) || !count(succeeded) || !count(failed) || !count(canceled) || !count(batchSize) || !count(maxInFlight)) return undefined;
  if (!isCounters(counters) || !isRecord(defaults)) return undefined;
  if (total !== undefined && !count(total)) return undefined;
  if (canary !== undefined && !count(canary)) return undefined;
  if (tasksPerSecond !== undefined && typeof tasksPerSecond !== 'number') return undefined;
  if ((generator !== undefined && typeof generator !== 'string') || (marker !== undefined && typeof marker !== 'string')) return undefined;
  if ((lock !== undefined && typeof lock !== 'string') || (args !== undefined && !isRecord(args))) return undefined;
  const text = (item: unknown): boolean => item === undefined || typeof item === 'string';
  if (!text(retryingSince) || !text(pacedUntil) || !text(waiting)) return undefined;
  return {
    action,
    source,
    ...(typeof generator === 'string' ? { generator } : {}),
    ...(isRecord(args) ? { args } : {}),
    'batch-size': batchSize,
    ...(typeof tasksPerSecond === 'number' ? { 'tasks-per-second': tasksPerSecond } : {}),
    'max-in-flight': maxInFlight,
    ...(count(canary) ? { canary } : {}),
    ...(typeof lock === 'string' ? { lock } : {}),
    defaults: { ...defaults },
    phase: phase as BatchPhase,
    paused,
    sealed,
    ...(typeof marker === 'string' ? { marker } : {}),
    sent,
    ...(count(total) ? { total } : {}),
    'total-estimated': estimated,
    succeeded,
    failed,
    canceled,
    counters: { ...counters },
    ...(typeof retryingSince === 'string' ? { 'retrying-since': retryingSince } : {}),
    ...(typeof waiting === 'string' ? { waiting } : {}),
    ...(typeof pacedUntil === 'string' ? { 'paced-until': pacedUntil } : {}),
  };
}
