/**
 * What the local stack says when a daemon dies, and when it starts it again. The end of a daemon's
 * log is mostly its ordinary lines (the job API logs every job event), which bury the cause; the cause
 * is in its warnings and errors and in what is not a log line at all (an uncaught exception's stack
 * trace, a message from Node itself). Pure functions, so the rules are tested without a stack.
 */
import { exponentialDelays } from '../util/retrying.js';

/** `<ISO time> <level> <message>...`: the daemons' log lines (src/util/winston-logger.ts). */
const LOG_LINE = /^\d{4}-\d\d-\d\dT\S+ (error|warn|info|debug) /;
/** The header the supervisor writes before each run's output in the (appended) log file. */
const RUN_HEADER = /^--- \S+ local stack: /;

/** The last `max` lines of `log` that may say why the daemon died: warnings, errors, and non-log output. */
export function causeLines(log: string, max: number): string[] {
  const lines = log
    .trimEnd()
    .split('\n')
    .filter((line) => {
      if (line.trim() === '' || RUN_HEADER.test(line)) return false;
      const level = LOG_LINE.exec(line)?.[1];
      return level === undefined || level === 'error' || level === 'warn';
    });
  return lines.slice(-max);
}

/** From 1 s, doubling, up to 30 s between a death and the restart, for deaths in a row. */
export const restartDelayMs = exponentialDelays(1000, 30_000);

/** A daemon that ran this long since its last start is healthy again: its next death waits 1 s. */
export const STABLE_AFTER_MS = 60_000;

/** The restart number of a death: 1 after a healthy run, one more than the last otherwise. */
export function nextRestart(previous: { readonly restart: number; readonly startedAt: number } | undefined, now: number): number {
  return previous === undefined || now - previous.startedAt >= STABLE_AFTER_MS ? 1 : previous.restart + 1;
}
