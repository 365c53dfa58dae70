/**
 * The job's `attempt-history`, kept by the job API on every change of state, so that no attempt goes
 * unrecorded whoever ends it (its executor's result, a retry, a cancel, a stopping executor handing it
 * back, the reconciler, another executor taking over after its owner died). Free of I/O: lifecycle.ts
 * calls it for every change it stamps.
 *
 * The first attempt of a round (the job's first, or the first after an operator's retry) is the
 * document itself (`attempt`, `started`, `executor`, then `state`, `return-code`, `status-message`),
 * so a job that runs once carries no history at all: nothing to store, send or parse for the common
 * case. Its record is written only when the job moves past it: handed back or retried by its policy
 * (RUNNING to QUEUED), taken over (a new attempt while RUNNING), or retried by an operator once final.
 * Any later attempt opens a record when it starts and closes it when it ends, whatever it ends in.
 * Only the last MAX_ATTEMPT_HISTORY records are kept.
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
  // A round's first attempt ending in a final state stays the document's own.
  if (wasRunning && !isRunning && next.state !== 'QUEUED' && isFirstOfRound(current)) return history;
  let records: AttemptRecord[] = withFirstOfRound(history, current);
  const last = records[records.length - 1];
  if (wasRunning && last !== undefined && last.ended === undefined && last.attempt === (current.attempt ?? 0)) {
    records[records.length - 1] = newAttempt
      ? { ...last, ended: at, 'status-message': `ended without a result: taken over as attempt ${String(next.attempt ?? 0)}` }
      : closed(last, next, at);
  }
  if (newAttempt && !isFirstOfRound(next)) {
    records.push({
      attempt: next.attempt ?? 0,
      started: at,
      ...(next.executor === undefined ? {} : { executor: next.executor }),
    });
  }
  if (records.length === 0) return history;
  if (records.length > MAX_ATTEMPT_HISTORY) records = records.slice(-MAX_ATTEMPT_HISTORY);
  return records;
}

/**
 * The history an operator's retry of the final `current` keeps: the round's first attempt, when the
 * job ended on it, recorded from the document before the retry clears its result.
 */
export function historyBeforeRetry(current: JobDocument): readonly AttemptRecord[] | undefined {
  const history = current['attempt-history'];
  if (!isFirstOfRound(current) || current.started === undefined) return history;
  const open = withFirstOfRound(history, current);
  const last = open[open.length - 1];
  if (last === undefined || last.ended !== undefined) return history;
  open[open.length - 1] = closed(last, current, current.updated);
  return open.length > MAX_ATTEMPT_HISTORY ? open.slice(-MAX_ATTEMPT_HISTORY) : open;
}

/** Whether the job's current attempt is the first since its creation or its operator's last retry. */
function isFirstOfRound(job: JobDocument): boolean {
  return (job.attempt ?? 0) === (job['retried-at-attempt'] ?? 0) + 1;
}

/** `history` with an open record of `job`'s current attempt added when it is its round's first (kept on the document so far). */
function withFirstOfRound(history: readonly AttemptRecord[] | undefined, job: JobDocument): AttemptRecord[] {
  const records = [...(history ?? [])];
  if (!isFirstOfRound(job) || job.started === undefined) return records;
  const attempt = job.attempt ?? 0;
  if (records.some((record) => record.attempt === attempt)) return records;
  records.push({ attempt, started: job.started, ...(job.executor === undefined ? {} : { executor: job.executor }) });
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
