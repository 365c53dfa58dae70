/**
 * `jobctl create --at <instant> | --in <duration>`: when a job may start (its `not-before`), checked
 * before anything is sent, each mistake named. `--in` counts from jobctl's clock; the API compares
 * against its own, so hosts should keep their clocks in step (NTP), as for any schedule.
 */
import { resolveDate } from '../api/cimi/dates.js';
import { usageError } from './errors.js';

const DURATION = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Readonly<Record<string, number>> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
/** As far ahead as a job may be delayed from the command line: a year. */
const MAX_DELAY_MS = 366 * 86_400_000;

/** `10s`, `1.5m`, `2h`, `3d`, `500ms` in milliseconds. */
export function parseDuration(text: string, flag: string): number {
  const match = DURATION.exec(text.trim());
  const ms = match === null ? Number.NaN : Number(match[1]) * (UNIT_MS[match[2] ?? ''] ?? Number.NaN);
  if (!Number.isFinite(ms)) {
    throw usageError(`${flag} must be a duration such as 30s, 10m, 2h or 1d (a number and one of ms s m h d), got ${JSON.stringify(text)}`);
  }
  if (ms > MAX_DELAY_MS) throw usageError(`${flag} ${text} is more than a year ahead`);
  return ms;
}

/** The job's `not-before` from `--at` or `--in` (not both), as ISO text; undefined when neither is given. */
export function notBeforeOf(at: string | undefined, after: string | undefined, now: number): string | undefined {
  if (at !== undefined && after !== undefined) throw usageError('give --at or --in, not both');
  if (after !== undefined) return new Date(now + parseDuration(after, '--in')).toISOString();
  if (at === undefined) return undefined;
  const resolved = /^now/i.test(at.trim()) ? undefined : resolveDate(at.trim(), new Date(now));
  if (resolved === undefined) {
    throw usageError(`--at must be an ISO-8601 instant such as 2026-12-05T03:00Z (no offset means UTC), got ${JSON.stringify(at)}`);
  }
  return resolved;
}
