/**
 * A batch as `jobctl show` renders it, in the manner of OpenIO xcute's `job show`: tasks sent,
 * processed and total (estimated while a generator runs), the rate per second since the batch started,
 * percent, time left, errors and the counters summed from its tasks.
 */
import { inFlightOf, processedOf, type BatchField } from '../api/batch/batch-field.js';
import type { JobDocument } from '../api/job/document.js';
import { progressBar } from './progress.js';
import { renderFields } from './table.js';
import { formatDuration } from './time-format.js';

export interface BatchNumbers {
  readonly processed: number;
  /** Tasks per second since the batch started (processed ones). */
  readonly rate: number | undefined;
  readonly percent: number | undefined;
  readonly remainingMs: number | undefined;
}

export function batchNumbers(job: JobDocument, batch: BatchField, now: number): BatchNumbers {
  const processed = processedOf(batch);
  const started = Date.parse(job.started ?? job.created);
  const seconds = (now - started) / 1000;
  const rate = seconds > 0 ? processed / seconds : undefined;
  const total = batch.total;
  const percent = total === undefined || total === 0 ? undefined : Math.min(100, (processed / total) * 100);
  const remainingMs = rate !== undefined && rate > 0 && total !== undefined ? ((total - processed) / rate) * 1000 : undefined;
  return { processed, rate, percent, remainingMs };
}

export function batchLines(job: JobDocument, batch: BatchField, now: number): string[] {
  const numbers = batchNumbers(job, batch, now);
  const total = batch.total === undefined ? '?' : `${String(batch.total)}${batch['total-estimated'] ? ' (estimated)' : ''}`;
  const counters = Object.entries(batch.counters).map(([name, count]) => [`  ${name}`, String(count)] as const);
  return renderFields([
    ['id', job.id],
    ['state', `${job.state}${job.state === 'RUNNING' ? ` (${batch.paused ? 'paused' : batch.phase})` : ''}`],
    ['action', batch.action],
    ['source', batch.source === 'list' ? `list${batch.sealed ? '' : ' (uploading)'}` : `generator ${batch.generator ?? ''}`],
    ['lock', batch.lock],
    ['tasks.sent', String(batch.sent)],
    ['tasks.processed', String(numbers.processed)],
    ['tasks.total', total],
    ['tasks.in_flight', String(inFlightOf(batch))],
    ['tasks.succeeded', String(batch.succeeded)],
    ['errors.failed', String(batch.failed)],
    ['errors.canceled', String(batch.canceled)],
    ['rate', numbers.rate === undefined ? undefined : `${numbers.rate.toFixed(1)} tasks/s`],
    ['progress', numbers.percent === undefined ? undefined : progressBar(numbers.percent)],
    ['time left', job.state === 'RUNNING' && numbers.remainingMs !== undefined ? formatDuration(numbers.remainingMs) : undefined],
    [
      'limits',
      `batch-size ${String(batch['batch-size'])}, max-in-flight ${String(batch['max-in-flight'])}${batch['tasks-per-second'] === undefined ? '' : `, ${String(batch['tasks-per-second'])} tasks/s`}${batch.canary === undefined ? '' : `, canary ${String(batch.canary)}`}`,
    ],
    ['message', job['status-message']],
    ...(counters.length > 0 ? ([['counters', ''], ...counters] as const) : []),
  ]);
}

/** One line for `--follow`: `[#####-----] 42% 4200/10000 sent 4300, 310.2 tasks/s, 19 s left, 3 failed`. */
export function batchProgressLine(job: JobDocument, batch: BatchField, now: number): string {
  const numbers = batchNumbers(job, batch, now);
  return [
    `${progressBar(numbers.percent ?? 0)} ${String(numbers.processed)}/${batch.total === undefined ? '?' : String(batch.total)} sent ${String(batch.sent)}`,
    numbers.rate === undefined ? undefined : `${numbers.rate.toFixed(1)} tasks/s`,
    numbers.remainingMs === undefined || job.state !== 'RUNNING' ? undefined : `${formatDuration(numbers.remainingMs)} left`,
    `${String(batch.failed)} failed`,
    job.state === 'RUNNING' ? (batch.paused ? 'paused' : batch.phase) : job.state,
  ]
    .filter((part) => part !== undefined)
    .join(', ');
}
