/**
 * The job's `attempt-history`, kept by the job API on every change of state, so that no attempt goes
 * unrecorded whoever ends it (its executor's result, a retry, a cancel, a stopping executor handing it
 * back, the reconciler, another executor taking over after its owner died). Free of I/O: lifecycle.ts
 * calls it for every change it stamps.
 *
 * A move to RUNNING as a new attempt opens a record (attempt, started, executor); leaving RUNNING, or a
 * new attempt taking over, closes it (ended, the state gone to, return code, status message). Only
 * the last MAX_ATTEMPT_HISTORY records are kept.
 */
import { MAX_ATTEMPT_HISTORY, MAX_ATTEMPT_MESSAGE_CHARS, type AttemptRecord, type JobDocument } from './document.js';

const TRUNCATED = ' ... (truncated)';

/** The history after the change from `current` to `next` (the same array when the change opens or closes no attempt). */
export function nextAttemptHistory(current: JobDocument, next: JobDocument, at: string): readonly AttemptRecord[] | undefined {
  const history = current['attempt-history'];
  const wasRunning = current.state === 'RUNNING';
  const isRunning = next.state === 'RUNNING';
  const newAttempt = isRunning && (!wasRunning || (next.attempt ?? 0) !== (current.attempt ?? 0));
  if (!newAttempt && !(wasRunning && !isRunning)) return history;
  let records: AttemptRecord[] = [...(history ?? [])];
  const last = records[records.length - 1];
  if (wasRunning && last !== undefined && last.ended === undefined && last.attempt === (current.attempt ?? 0)) {
    records[records.length - 1] = newAttempt
      ? { ...last, ended: at, 'status-message': `ended without a result: taken over as attempt ${String(next.attempt ?? 0)}` }
      : closed(last, next, at);
  }
  if (newAttempt) {
    records.push({
      attempt: next.attempt ?? 0,
      started: at,
      ...(next.executor === undefined ? {} : { executor: next.executor }),
    });
  }
  if (records.length > MAX_ATTEMPT_HISTORY) records = records.slice(-MAX_ATTEMPT_HISTORY);
  return records;
}

function closed(record: AttemptRecord, next: JobDocument, at: string): AttemptRecord {
  const message = next['status-message'];
  const code = next['return-code'];
  return {
    ...record,
    ended: at,
    state: next.state,
    ...(code === undefined ? {} : { 'return-code': code }),
    ...(message === undefined ? {} : { 'status-message': shortened(message) }),
  };
}

function shortened(message: string): string {
  if (message.length <= MAX_ATTEMPT_MESSAGE_CHARS) return message;
  return message.slice(0, MAX_ATTEMPT_MESSAGE_CHARS - TRUNCATED.length) + TRUNCATED;
}

/** The record of `attempt`, if the history still holds it. */
export function attemptRecord(job: JobDocument, attempt: number | undefined): AttemptRecord | undefined {
  if (attempt === undefined) return undefined;
  const history = job['attempt-history'] ?? [];
  for (let index = history.length - 1; index >= 0; index -= 1) {
    const record = history[index];
    if (record?.attempt === attempt) return record;
  }
  return undefined;
}
