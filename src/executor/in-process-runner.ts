/**
 * Runs actions that ask for it (`isolation: 'in-process'`) in the executor's own event loop instead
 * of a worker thread: no thread to keep per slot, no messages, no copy of the job, which makes a short
 * job several times cheaper. The price is the hard kill: a thread can be terminated, a call in this
 * event loop cannot. Its signal is aborted as a thread's would be (timeout, cancel, lease, shutdown);
 * when the action has not ended after the grace period the run is abandoned: its job ends as a killed
 * run would, and whatever the action still does later is ignored. An action that blocks the event loop
 * stalls the whole executor, ZooKeeper heartbeats included, until its session is lost: only actions
 * that always yield and honour their signal belong here (docs/operations.md, "In-process actions").
 */
import type { JobDocument } from '../api/job/document.js';
import type { Logger } from '../util/logger.js';
import type { RunHooks, ThreadResult, ThreadRun } from './action-thread.js';
import { actionServices, clampPercent, invokeAction, type ActionServices } from './action-invocation.js';
import { bindSignalToLease } from './lease-signal.js';
import type { WorkerSettings } from './worker-protocol.js';

/** Node's id of the main thread: what the stack dump and the running-job listing show for these runs. */
export const MAIN_THREAD_ID = 0;

export class InProcessRunner {
  readonly threadId = MAIN_THREAD_ID;
  readonly #services: ActionServices;

  constructor(settings: WorkerSettings) {
    this.#services = actionServices(settings);
  }

  run(file: string, job: JobDocument, hooks: RunHooks, leaseDeadline?: SharedArrayBuffer): ThreadRun {
    const controller = new AbortController();
    let settle: (result: ThreadResult) => void = () => undefined;
    let ended = false;
    const result = new Promise<ThreadResult>((resolve) => {
      settle = (value) => {
        if (ended) return;
        ended = true;
        resolve(value);
      };
    });
    const log = runLogger(hooks, () => ended);
    const stopLeaseCheck = bindSignalToLease(controller, leaseDeadline, (overdueMs) => {
      log.warn('aborting the in-process action: its lease ran out', { overdueMs });
    });
    void invokeAction(this.#services, file, job, {
      signal: controller.signal,
      log,
      progress: (percent, message) => {
        const clamped = clampPercent(percent);
        // The progress writer throttles the writes; after the run nothing may reach the job.
        if (clamped !== undefined && !ended) hooks.onProgress(clamped, typeof message === 'string' ? message : undefined);
      },
    }).then((outcome) => {
      stopLeaseCheck();
      settle(outcome);
    });
    return {
      result,
      abort: (reason) => {
        if (!ended) controller.abort(new Error(reason));
      },
      terminate: () => {
        // Nothing can stop a call in this event loop: the run is abandoned, and ends as a killed one.
        stopLeaseCheck();
        settle({ kind: 'killed' });
        return Promise.resolve();
      },
    };
  }
}

/** The action's log, into the job's log; silent once the run has ended (an abandoned action may go on). */
function runLogger(hooks: RunHooks, ended: () => boolean): Logger {
  const send =
    (level: 'error' | 'warn' | 'info' | 'debug') =>
    (message: string, meta?: Record<string, unknown>): void => {
      if (!ended()) hooks.onLog(level, typeof message === 'string' ? message : JSON.stringify(message), meta);
    };
  return { error: send('error'), warn: send('warn'), info: send('info'), debug: send('debug') };
}
