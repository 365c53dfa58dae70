/**
 * One of the executor's `--threads` slots: it runs one job at a time, in a worker thread it keeps
 * for the next job, and stops that thread after a while without work so an idle executor stays small.
 * An in-process action's job runs in the executor's event loop instead (the runner all slots share),
 * and needs no thread.
 */
import type { ActionIsolation } from '../sdk/action.js';
import { ActionThread } from './action-thread.js';
import type { InProcessRunner } from './in-process-runner.js';
import type { ActionRunner, SlotThreads } from './job-runner.js';
import type { WorkerSettings } from './worker-protocol.js';

export class Slot implements SlotThreads {
  readonly index: number;
  readonly #settings: WorkerSettings;
  readonly #idleMs: number;
  #thread: ActionThread | undefined;
  #idleTimer: NodeJS.Timeout | undefined;
  /** Undefined when the operator refused in-process runs (`--in-process never`): every action gets a thread. */
  readonly #inProcess: InProcessRunner | undefined;

  constructor(index: number, settings: WorkerSettings, idleMs: number, inProcess?: InProcessRunner) {
    this.index = index;
    this.#settings = settings;
    this.#idleMs = idleMs;
    this.#inProcess = inProcess;
  }

  runner(isolation: ActionIsolation | undefined): ActionRunner {
    if (isolation === 'in-process' && this.#inProcess !== undefined) return this.#inProcess;
    return this.thread();
  }

  thread(): ActionThread {
    clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
    if (this.#thread === undefined || !this.#thread.usable) this.#thread = new ActionThread(this.#settings, `slot-${this.index}`);
    return this.#thread;
  }

  /** The slot's job is done: its thread goes if no job comes within the idle time. */
  idle(): void {
    if (this.#thread === undefined || this.#idleTimer !== undefined) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      const thread = this.#thread;
      this.#thread = undefined;
      if (thread !== undefined && !thread.busy) void thread.terminate();
    }, this.#idleMs);
    this.#idleTimer.unref();
  }

  async close(): Promise<void> {
    clearTimeout(this.#idleTimer);
    const thread = this.#thread;
    this.#thread = undefined;
    await thread?.terminate();
  }
}
