/**
 * When a distribution ticks: a cron expression (node-cron's syntax, seconds optional, in a time zone)
 * or a fixed interval. A tick is a point in time that every distributor computes the same way, whatever
 * the moment its timer fires, because the tick names the jobs it creates (their idempotency keys): two
 * processes that both believe they lead agree on which tick they are creating.
 */
import cron, { type ScheduledTask } from 'node-cron';
import { describeValue } from '../executor/action.js';

export type ScheduleSpec =
  /** `timezone` is UTC when absent, never the machine's zone: every distributor must compute the same ticks. */
  | { readonly cron: string; readonly timezone?: string }
  | { readonly everySeconds: number };

export interface Schedule {
  /** e.g. `cron "0 3 * * *" (UTC)` or `every 15 s`. */
  readonly description: string;
  /** The first tick strictly after the current second. */
  next(now: Date): Date;
  /** The latest tick at or before `now` that is at most `withinMs` old, if there is one. */
  latestWithin(now: Date, withinMs: number): Date | undefined;
}

export const DEFAULT_TIME_ZONE = 'UTC';

/** A month: shorter intervals are what a distribution means by "every". */
export const MAX_INTERVAL_SECONDS = 31 * 24 * 60 * 60;

export function scheduleProblems(spec: unknown): string[] {
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec)) {
    return [`schedule must be { cron: "<expression>" } or { everySeconds: N }, got ${describeValue(spec)}`];
  }
  const fields = spec as Record<string, unknown>;
  const keys = Object.keys(fields);
  if ('everySeconds' in fields) {
    const { everySeconds } = fields;
    const problems: string[] = [];
    if (typeof everySeconds !== 'number' || !Number.isInteger(everySeconds) || everySeconds < 1 || everySeconds > MAX_INTERVAL_SECONDS) {
      problems.push(`schedule.everySeconds must be a whole number of seconds from 1 to ${MAX_INTERVAL_SECONDS}, got ${describeValue(everySeconds)}`);
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
  if (typeof expression !== 'string' || expression.trim() === '') return [`schedule.cron must be a cron expression, got ${describeValue(expression)}`];
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

/** The spec must be valid (see scheduleProblems). */
export function compileSchedule(spec: ScheduleSpec): Schedule {
  return 'everySeconds' in spec ? intervalSchedule(spec.everySeconds) : cronSchedule(spec.cron, spec.timezone ?? DEFAULT_TIME_ZONE);
}

/** Ticks at the multiples of the interval since the epoch, so every process computes the same ones. */
function intervalSchedule(everySeconds: number): Schedule {
  const periodMs = everySeconds * 1000;
  return {
    description: `every ${everySeconds} s`,
    next: (now) => new Date((Math.floor(now.getTime() / periodMs) + 1) * periodMs),
    latestWithin: (now, withinMs) => {
      const latest = Math.floor(now.getTime() / periodMs) * periodMs;
      return now.getTime() - latest <= withinMs ? new Date(latest) : undefined;
    },
  };
}

function cronSchedule(expression: string, timezone: string): Schedule {
  // A task that is never started: node-cron's matcher, without its timers (ours are interruptible).
  const task: ScheduledTask = cron.createTask(expression, () => undefined, { timezone });
  return {
    description: `cron ${JSON.stringify(expression)} (${timezone})`,
    next: (now) => {
      // node-cron counts from the current clock; a caller asking about another moment gets at least that.
      const [next] = task.getNextRuns(1);
      if (next === undefined) throw new Error(`cron ${JSON.stringify(expression)} has no next run`);
      return next.getTime() > now.getTime() ? next : new Date(Math.floor(now.getTime() / 1000) * 1000 + 1000);
    },
    latestWithin: (now, withinMs) => {
      // Cron resolution is one second: look back second by second (300 checks for five minutes).
      const newest = Math.floor(now.getTime() / 1000) * 1000;
      for (let at = newest; now.getTime() - at <= withinMs; at -= 1000) {
        const candidate = new Date(at);
        if (task.match(candidate)) return candidate;
      }
      return undefined;
    },
  };
}

/**
 * An operator's override from the command line: `15s`, `5m`, `1h`, `1d` for an interval, anything
 * else a cron expression (`0 4 * * *`), optionally followed by `@<time zone>`.
 */
export function parseScheduleText(text: string): ScheduleSpec {
  const trimmed = text.trim();
  const interval = /^(\d+)\s*(s|m|h|d)$/.exec(trimmed);
  if (interval?.[1] !== undefined && interval[2] !== undefined) {
    const unit = { s: 1, m: 60, h: 3600, d: 86_400 }[interval[2] as 's' | 'm' | 'h' | 'd'];
    return { everySeconds: Number(interval[1]) * unit };
  }
  const at = trimmed.lastIndexOf('@');
  return at > 0 ? { cron: trimmed.slice(0, at).trim(), timezone: trimmed.slice(at + 1).trim() } : { cron: trimmed };
}
