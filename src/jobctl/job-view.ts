/**
 * How a job reads for a person: a row of `jobctl list`, the fields of `jobctl show`, and the one-line
 * progress summary that `show --follow` redraws. Pure functions of the document and the clock.
 */
import { isFinal, type AttemptRecord, type JobDocument } from '../api/job/document.js';
import { describeEstimate, estimate, progressBar } from './progress.js';
import type { Column } from './table.js';
import { formatAge, formatDuration, formatMoment, formatWholeSeconds } from './time-format.js';

/** The part of a document the views read (also what `list` selects). */
export type JobSummary = Pick<JobDocument, 'id' | 'action' | 'state' | 'priority' | 'progress' | 'created'> &
  Partial<Pick<JobDocument, 'return-code' | 'status-message' | 'started' | 'duration' | 'executor' | 'attempt'>>;

/**
 * Time spent so far, as text: the duration of a final job (whole seconds, as the API counts it), the
 * time since `started` of a running one (to the tenth, from the clock).
 */
export function elapsedText(job: JobSummary, now: number): string | undefined {
  if (isFinal(job.state)) return job.duration === undefined ? undefined : formatWholeSeconds(job.duration);
  if (job.state !== 'RUNNING' || job.started === undefined) return undefined;
  const started = Date.parse(job.started);
  return Number.isNaN(started) ? undefined : formatDuration(now - started);
}

export function listColumns(now: number): Column<JobSummary>[] {
  return [
    { header: 'ID', value: (job) => job.id },
    { header: 'ACTION', value: (job) => job.action, maxWidth: 30 },
    { header: 'STATE', value: (job) => job.state },
    { header: 'PRI', value: (job) => String(job.priority), align: 'right' },
    { header: 'PROGRESS', value: (job) => `${Math.floor(job.progress)}%`, align: 'right' },
    { header: 'RC', value: (job) => (job['return-code'] === undefined ? '-' : String(job['return-code'])), align: 'right' },
    { header: 'CREATED', value: (job) => formatAge(job.created, now) },
    { header: 'TIME', value: (job) => elapsedText(job, now) ?? '-' },
    { header: 'MESSAGE', value: (job) => job['status-message'] ?? '', maxWidth: 60 },
  ];
}

/** `[#####-----] 42%  2.9 %/s, about 14 s left`: the estimate only for a RUNNING job with progress. */
export function progressLine(job: JobSummary, now: number): string {
  const bar = progressBar(job.progress);
  if (job.state !== 'RUNNING' || job.started === undefined) return bar;
  const started = Date.parse(job.started);
  const guess = estimate(job.progress, Number.isNaN(started) ? undefined : started, now);
  return guess === undefined ? bar : `${bar}  ${describeEstimate(guess)}`;
}

/** The label-value pairs of `jobctl show`, in reading order; absent values are left out. */
export function showFields(job: JobDocument, now: number): (readonly [string, string | undefined])[] {
  const elapsed = elapsedText(job, now);
  return [
    ['id', job.id],
    ['action', job.action],
    ['state', job.state],
    ['target', job['target-resource']?.href],
    ['priority', String(job.priority)],
    ['owner', job.executor],
    ['attempt', job.attempt === undefined ? undefined : String(job.attempt)],
    ['progress', progressLine(job, now)],
    ['message', job['status-message']],
    ['return code', job['return-code'] === undefined ? undefined : String(job['return-code'])],
    ['created', formatMoment(job.created, now)],
    // The next run time of a delayed job (cleared once the scheduler enqueued it), and its deadline.
    ['not before', formatMoment(job['not-before'], now)],
    ['expiry', formatMoment(job.expiry, now)],
    ['started', formatMoment(job.started, now)],
    [isFinal(job.state) ? 'duration' : 'elapsed', elapsed],
    ['updated', formatMoment(job.updated, now)],
    ['timeout', job.timeout === undefined ? undefined : formatDuration(job.timeout * 1000)],
    ['next run', job['not-before'] === undefined ? undefined : formatMoment(job['not-before'], now)],
    ['retry policy', job.retry === undefined ? undefined : JSON.stringify(job.retry)],
    [
      'dead letter',
      job['dead-letter'] === undefined
        ? undefined
        : `${job['dead-letter'].reason} (${formatMoment(job['dead-letter'].at, now) ?? job['dead-letter'].at})`,
    ],
    ['payload', job.payload],
    ['parent', job['parent-job']],
    ['tags', job.tags === undefined || job.tags.length === 0 ? undefined : job.tags.join(', ')],
  ];
}

/**
 * One line per attempt of the history, oldest first: `#2  <started>  3.2 s  QUEUED  rc 1  by x@1  message`.
 * Empty without a history (Nuvla's API, or a job never claimed).
 */
export function attemptLines(job: JobDocument): string[] {
  return attemptsOf(job).map((record) => {
    const took = record.ended === undefined ? 'running' : formatDuration(Date.parse(record.ended) - Date.parse(record.started));
    const parts = [`#${String(record.attempt)}`, record.started, took, record.state ?? 'RUNNING'];
    if (record['return-code'] !== undefined) parts.push(`rc ${String(record['return-code'])}`);
    if (record.executor !== undefined) parts.push(`by ${record.executor}`);
    const message = record['status-message'];
    if (message !== undefined && message !== '') parts.push(firstLine(message));
    return parts.join('  ');
  });
}

/**
 * The history and the job's current attempt, which the API records there only once the job moves past
 * it when it is the first of its round: until then the document's own fields are that attempt.
 */
function attemptsOf(job: JobDocument): AttemptRecord[] {
  const records = [...(job['attempt-history'] ?? [])];
  const attempt = job.attempt;
  if (attempt === undefined || job.started === undefined || records.some((record) => record.attempt === attempt)) return records;
  if (job.state === 'QUEUED') return records;
  const ended = isFinal(job.state);
  records.push({
    attempt,
    started: job.started,
    ...(ended ? { ended: job.updated, state: job.state } : {}),
    ...(job['return-code'] === undefined ? {} : { 'return-code': job['return-code'] }),
    ...(job.executor === undefined ? {} : { executor: job.executor }),
    ...(ended && job['status-message'] !== undefined ? { 'status-message': job['status-message'] } : {}),
  });
  return records;
}

/** `SUCCESS after 5.2 s, return code 0: slept 500 ms` */
export function finalLine(job: JobSummary, now: number): string {
  const elapsed = elapsedText(job, now);
  const parts = [job.state, elapsed === undefined ? '' : ` after ${elapsed}`];
  if (job['return-code'] !== undefined) parts.push(`, return code ${job['return-code']}`);
  const message = job['status-message'];
  if (message !== undefined && message !== '') parts.push(`: ${firstLine(message)}`);
  return parts.join('');
}

function firstLine(text: string): string {
  const line = text.split('\n', 1)[0] ?? '';
  return line.length > 200 ? `${line.slice(0, 199)}…` : line;
}
