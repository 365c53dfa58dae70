/**
 * When a distribution ticks, as its author writes it: a cron expression (node-cron's syntax, seconds
 * optional, in a time zone) or a fixed interval, and the checks of that spec. Turning a valid spec into
 * ticks and timers is the distributor's business (src/distributor/schedule.ts).
 */
import cron from 'node-cron';
import { fieldsOf } from './define.js';
import { describeValue } from './describe-value.js';

export type ScheduleSpec =
  /** `timezone` is UTC when absent, never the machine's zone: every distributor must compute the same ticks. */
  { readonly cron: string; readonly timezone?: string } | { readonly everySeconds: number };

export const DEFAULT_TIME_ZONE = 'UTC';

/** A month: shorter intervals are what a distribution means by "every". */
export const MAX_INTERVAL_SECONDS = 31 * 24 * 60 * 60;

/** Every problem of a schedule spec, none when it is valid. */
export function scheduleProblems(spec: unknown): string[] {
  const fields = fieldsOf(spec);
  if (fields === undefined) {
    return [`schedule must be { cron: "<expression>" } or { everySeconds: N }, got ${describeValue(spec)}`];
  }
  const keys = Object.keys(fields);
  if ('everySeconds' in fields) {
    const { everySeconds } = fields;
    const problems: string[] = [];
    if (typeof everySeconds !== 'number' || !Number.isInteger(everySeconds) || everySeconds < 1 || everySeconds > MAX_INTERVAL_SECONDS) {
      problems.push(
        `schedule.everySeconds must be a whole number of seconds from 1 to ${MAX_INTERVAL_SECONDS}, got ${describeValue(everySeconds)}`,
      );
    }
    const extra = keys.filter((key) => key !== 'everySeconds');
    if (extra.length > 0) problems.push(`schedule { everySeconds } takes no other field, got ${extra.join(', ')}`);
    return problems;
  }
  if (!('cron' in fields)) return [`schedule must have a cron expression or everySeconds, got fields ${keys.join(', ') || 'none'}`];
  const problems = cronProblems(fields.cron);
  const { timezone } = fields;
  if (timezone !== undefined && (typeof timezone !== 'string' || !isTimeZone(timezone))) {
    problems.push(`schedule.timezone must be an IANA time zone such as "UTC" or "Europe/Zurich", got ${describeValue(timezone)}`);
  }
  const extra = keys.filter((key) => key !== 'cron' && key !== 'timezone');
  if (extra.length > 0) problems.push(`schedule { cron, timezone } takes no other field, got ${extra.join(', ')}`);
  return problems;
}

function cronProblems(expression: unknown): string[] {
  if (typeof expression !== 'string' || expression.trim() === '')
    return [`schedule.cron must be a cron expression, got ${describeValue(expression)}`];
  const validation = cron.validateDetailed(expression);
  if (validation.valid) return [];
  const details = validation.errors.map((error) => `${error.field}: ${error.message}`).join(', ');
  return [`schedule.cron ${JSON.stringify(expression)} is not a valid cron expression (${details || 'unrecognised'})`];
}

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}
