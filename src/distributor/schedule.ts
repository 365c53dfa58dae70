/**
 * A distribution's schedule compiled into ticks: a tick is a point in time that every distributor
 * computes the same way, whatever the moment its timer fires, because the tick names the jobs it creates
 * (their idempotency keys): two processes that both believe they lead agree on which tick they are
 * creating. What authors write, and its checks, is the SDK's (src/sdk/schedule-spec.ts).
 */
import cron, { type ScheduledTask } from 'node-cron';
import { DEFAULT_TIME_ZONE, type ScheduleSpec } from '../sdk/schedule-spec.js';

export interface Schedule {
  /** e.g. `cron "0 3 * * *" (UTC)` or `every 15 s`. */
  readonly description: string;
  /** The first tick strictly after the current second. */
  next(now: Date): Date;
  /** The latest tick at or before `now` that is at most `withinMs` old, if there is one. */
  latestWithin(now: Date, withinMs: number): Date | undefined;
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
