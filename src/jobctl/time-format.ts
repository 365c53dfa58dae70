/**
 * Times as an operator reads them: durations in the largest units that matter ("3 m 12 s"), ages
 * relative to now ("3 m ago"), and timestamps in UTC ISO form (the API's, unambiguous across hosts).
 */

const SECOND = 1000;
const MINUTE = 60 * SECOND;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

/**
 * A job's `duration` as the API counts it, in whole seconds: `< 1 s` for 0 (it rounded down), `3 s`,
 * `3 m 12 s`; never tenths it does not have.
 */
export function formatWholeSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '-';
  if (seconds < 1) return '< 1 s';
  const ms = Math.round(seconds) * SECOND;
  return ms < MINUTE ? `${String(ms / SECOND)} s` : formatDuration(ms);
}

/** 0.4 s, 12.3 s, 3 m 12 s, 2 h 5 m, 3 d 4 h. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '-';
  const value = Math.max(0, ms);
  if (value < 10 * SECOND) return `${(value / SECOND).toFixed(1)} s`;
  if (value < MINUTE) return `${Math.round(value / SECOND)} s`;
  if (value < HOUR) return pair(value, MINUTE, 'm', SECOND, 's');
  if (value < DAY) return pair(value, HOUR, 'h', MINUTE, 'm');
  return pair(value, DAY, 'd', HOUR, 'h');
}

/** "12 s ago", "3 m ago", "2 h ago", "4 d ago"; "just now" under a second; "in 5 s" for a clock ahead of ours. */
export function formatAge(iso: string | undefined, now: number): string {
  if (iso === undefined) return '-';
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return iso;
  const ms = now - at;
  if (ms < -SECOND) return `in ${coarse(-ms)}`;
  if (ms < SECOND) return 'just now';
  return `${coarse(ms)} ago`;
}

/** One unit, rounded down: what a column of ages needs. */
export function coarse(ms: number): string {
  if (ms < MINUTE) return `${Math.floor(ms / SECOND)} s`;
  if (ms < HOUR) return `${Math.floor(ms / MINUTE)} m`;
  if (ms < DAY) return `${Math.floor(ms / HOUR)} h`;
  return `${Math.floor(ms / DAY)} d`;
}

/** `2026-11-29T22:48:37Z (3 m ago)`. */
export function formatMoment(iso: string | undefined, now: number): string | undefined {
  if (iso === undefined) return undefined;
  return `${iso} (${formatAge(iso, now)})`;
}

function pair(ms: number, big: number, bigUnit: string, small: number, smallUnit: string): string {
  const bigCount = Math.floor(ms / big);
  const smallCount = Math.floor((ms - bigCount * big) / small);
  return smallCount === 0 ? `${bigCount} ${bigUnit}` : `${bigCount} ${bigUnit} ${smallCount} ${smallUnit}`;
}
