/**
 * Date literals of CIMI filters: ISO-8601, or Elasticsearch's date math relative to `now`, both
 * resolved to `toISOString()` text, the form the stores keep dates in, so they compare as text.
 */

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d+))?)?(Z|[+-]\d{2}:?\d{2})?)?$/i;
const DATE_MATH = /^now((?:[+-]\d+[yMwdhHms])*)$/;
const DATE_MATH_STEP = /([+-])(\d+)([yMwdhHms])/g;
const UNIT_MS: Readonly<Record<string, number>> = {
  w: 7 * 86_400_000,
  d: 86_400_000,
  h: 3_600_000,
  H: 3_600_000,
  m: 60_000,
  s: 1_000,
};

/**
 * `2026-11-01`, `2026-11-01T10:00:00Z`, `2026-11-01T10:00:00.123+02:00` (no offset means UTC), or
 * `now`, `now-7d`, `now+1h`, `now-1M-2d` (units y M w d h H m s); undefined for anything else,
 * including impossible dates such as `2026-02-30`.
 */
export function resolveDate(text: string, now: Date): string | undefined {
  const math = DATE_MATH.exec(text);
  const time = math === null ? parseIso(text) : applyDateMath(now.getTime(), math[1] ?? '');
  return time === undefined || !Number.isFinite(time) || Math.abs(time) > 8.64e15 ? undefined : new Date(time).toISOString();
}

function applyDateMath(start: number, steps: string): number {
  let time = start;
  for (const [, sign, amount, unit] of steps.matchAll(DATE_MATH_STEP)) {
    const count = (sign === '-' ? -1 : 1) * Number(amount);
    if (unit === 'y' || unit === 'M') time = addMonths(time, unit === 'y' ? 12 * count : count);
    else time += count * (UNIT_MS[unit ?? ''] ?? Number.NaN);
  }
  return time;
}

/** Calendar months as Elasticsearch counts them: Mar 31 minus one month is Feb 28 (or 29). */
function addMonths(time: number, months: number): number {
  const date = new Date(time);
  const day = date.getUTCDate();
  date.setUTCDate(1);
  date.setUTCMonth(date.getUTCMonth() + months);
  const lastDay = new Date(date.getTime());
  lastDay.setUTCMonth(lastDay.getUTCMonth() + 1, 0);
  date.setUTCDate(Math.min(day, lastDay.getUTCDate()));
  return date.getTime();
}

function parseIso(text: string): number | undefined {
  const match = ISO_DATE.exec(text);
  if (match === null) return undefined;
  const [, year = '', month = '', day = '', hour = '0', minute = '0', second = '0', fraction = '', offset = 'Z'] = match;
  const [y, mo, d, h, mi, s] = [year, month, day, hour, minute, second].map(Number) as [number, number, number, number, number, number];
  if (h > 23 || mi > 59 || s > 59) return undefined;
  // setUTCFullYear rather than Date.UTC, which reads years 0-99 as 1900-1999.
  const date = new Date(0);
  date.setUTCFullYear(y, mo - 1, d);
  if (date.getUTCFullYear() !== y || date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d) return undefined;
  date.setUTCHours(h, mi, s, Number(fraction.slice(0, 3).padEnd(3, '0')));
  return date.getTime() - offsetMinutes(offset) * 60_000;
}

function offsetMinutes(offset: string): number {
  if (offset.toUpperCase() === 'Z') return 0;
  const digits = offset.slice(1).replace(':', '');
  const [hours, minutes] = [Number(digits.slice(0, 2)), Number(digits.slice(2))];
  if (hours > 23 || minutes > 59) return Number.NaN;
  return (offset.startsWith('-') ? -1 : 1) * (hours * 60 + minutes);
}
