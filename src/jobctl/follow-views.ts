/**
 * What `show --follow` and `create --wait` print while a job runs, in three forms: a live progress line
 * redrawn in place under the events on a terminal, one line per event otherwise, and JSON lines with
 * --json (the job document as read, each event, the final document).
 */
import type { JobDocument } from '../api/job/document.js';
import type { JobEvent } from '../api/job/events.js';
import type { CommandContext } from './context.js';
import { eventLine } from './event-line.js';
import type { FollowView } from './follow.js';
import { finalLine, progressLine, showFields, type JobSummary } from './job-view.js';
import { clip, renderFields } from './table.js';

export interface FollowViewOptions {
  /** Print the job's fields first (`show`); `create` has said what it created already. */
  readonly details: boolean;
}

export function followView(ctx: CommandContext, options: FollowViewOptions): FollowView {
  if (ctx.options.json) return jsonView(ctx);
  return ctx.out.isTTY ? terminalView(ctx, options) : lineView(ctx, options);
}

function jsonView(ctx: CommandContext): FollowView {
  let lastPrinted: number | undefined;
  const document = (job: JobDocument): void => {
    if (job.revision === lastPrinted) return;
    lastPrinted = job.revision;
    ctx.out.jsonLine(job);
  };
  return {
    read: document,
    event: (event) => {
      ctx.out.jsonLine(event);
    },
    reopened: (reason) => {
      ctx.out.warn(`event stream reopened after: ${reason}`);
    },
    end: document,
  };
}

function lineView(ctx: CommandContext, options: FollowViewOptions): FollowView {
  let first = true;
  let shown: JobSummary | undefined;
  return {
    read: (job) => {
      if (first) {
        if (options.details) ctx.out.lines(renderFields(showFields(job, ctx.now())));
      } else if (shown === undefined || shown.state !== job.state || shown.progress !== job.progress) {
        ctx.out.line(`${new Date(ctx.now()).toISOString()}  read       ${job.state}  ${progressLine(job, ctx.now())}`);
      }
      first = false;
      shown = job;
    },
    event: (event: JobEvent, job) => {
      ctx.out.line(eventLine(event, { withJob: false }));
      shown = job;
    },
    reopened: (reason) => {
      ctx.out.warn(`event stream reopened after: ${reason}`);
    },
    end: (job) => {
      ctx.out.line(finalLine(job, ctx.now()));
    },
  };
}

function terminalView(ctx: CommandContext, options: FollowViewOptions): FollowView {
  let first = true;
  const draw = (job: JobSummary): void => {
    const message = job['status-message'] ?? '';
    const text = `${job.state}  ${progressLine(job, ctx.now())}${message === '' ? '' : `  ${message}`}`;
    ctx.out.live(clip(text, ctx.out.columns - 1));
  };
  return {
    read: (job) => {
      if (first && options.details) ctx.out.lines([...renderFields(showFields(job, ctx.now())), '']);
      first = false;
      draw(job);
    },
    event: (event, job) => {
      // Progress moves the bar; every other event is worth a line of its own above it.
      if (event.type !== 'progress') ctx.out.line(eventLine(event, { withJob: false }));
      draw(job);
    },
    reopened: (reason) => {
      ctx.out.endLive();
      ctx.out.warn(`event stream reopened after: ${reason}`);
    },
    end: (job) => {
      ctx.out.endLive();
      ctx.out.line(finalLine(job, ctx.now()));
    },
  };
}
