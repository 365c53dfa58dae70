/**
 * One job event as one line for a person: when, what, which job, then the facts the event carries
 * (progress, return code, files and bytes staged, duration, owner, attempt, message). `jobctl events` prints every event this
 * way; `show --follow` without a terminal prints its job's events this way too.
 */
import type { JobEvent } from '../api/job/events.js';
import { clip } from './table.js';
import { formatWholeSeconds } from './time-format.js';

const TYPE_WIDTH = 'timed-out'.length;

export function eventLine(event: JobEvent, options: { readonly withJob: boolean }): string {
  const head = [event.at, event.type.padEnd(TYPE_WIDTH)];
  if (options.withJob) head.push(event.job, event.action);
  head.push(event.state);
  return [...head, ...eventFacts(event)].join('  ');
}

export function eventFacts(event: JobEvent): string[] {
  const facts: string[] = [];
  if (event.progress !== undefined && event.type === 'progress') facts.push(`${Math.floor(event.progress)}%`);
  if (event.priority !== undefined && (event.type === 'created' || event.type === 'enqueued')) facts.push(`priority ${event.priority}`);
  if (event['return-code'] !== undefined) facts.push(`return code ${event['return-code']}`);
  if (event.files !== undefined) facts.push(`${event.files} files`);
  if (event.bytes !== undefined) facts.push(`${event.bytes} bytes`);
  // A stage takes milliseconds to minutes: its own seconds, not the whole seconds of a job's run.
  if (event.duration !== undefined && event.type.startsWith('stage-')) facts.push(`in ${event.duration.toFixed(3)} s`);
  else if (event.duration !== undefined) facts.push(`after ${formatWholeSeconds(event.duration)}`);
  if (event.executor !== undefined) facts.push(`by ${event.executor}`);
  if (event.attempt !== undefined) facts.push(`attempt ${event.attempt}`);
  if (event['not-before'] !== undefined) facts.push(`next attempt at ${event['not-before']}`);
  if (event.reason !== undefined) facts.push(`reason ${JSON.stringify(clip(event.reason, 160))}`);
  const message = event['status-message'];
  if (message !== undefined && message !== '') facts.push(JSON.stringify(clip(message, 120)));
  return facts;
}
