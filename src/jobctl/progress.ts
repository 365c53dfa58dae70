/**
 * A job's progress as a bar, with the rate and the time left when they mean something: progress is
 * what the action reports (0-100), so the rate is only an estimate from progress over the time since
 * `started`, and only a RUNNING job with some progress has one.
 */
import { formatDuration } from './time-format.js';

const BAR_WIDTH = 24;

/** `[##########--------------] 42%` */
export function progressBar(progress: number, width: number = BAR_WIDTH): string {
  const percent = clampPercent(progress);
  const filled = Math.round((percent / 100) * width);
  return `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${Math.floor(percent)}%`;
}

export interface ProgressEstimate {
  /** Percent per second. */
  readonly ratePerSecond: number;
  /** Milliseconds until 100% at that rate. */
  readonly remainingMs: number;
}

/** The rate since `startedMs` and the time left; undefined without progress or elapsed time. */
export function estimate(progress: number, startedMs: number | undefined, nowMs: number): ProgressEstimate | undefined {
  const percent = clampPercent(progress);
  if (startedMs === undefined || percent <= 0) return undefined;
  const elapsedSeconds = (nowMs - startedMs) / 1000;
  if (!(elapsedSeconds > 0)) return undefined;
  const ratePerSecond = percent / elapsedSeconds;
  return { ratePerSecond, remainingMs: ((100 - percent) / ratePerSecond) * 1000 };
}

/** `2.9 %/s, about 14 s left` */
export function describeEstimate(value: ProgressEstimate): string {
  const rate =
    value.ratePerSecond >= 10
      ? value.ratePerSecond.toFixed(0)
      : value.ratePerSecond >= 0.1
        ? value.ratePerSecond.toFixed(1)
        : value.ratePerSecond.toPrecision(2);
  return `${rate} %/s, about ${formatDuration(value.remainingMs)} left`;
}

function clampPercent(progress: number): number {
  return Number.isFinite(progress) ? Math.min(100, Math.max(0, progress)) : 0;
}
