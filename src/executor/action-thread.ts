/**
 * One worker thread that runs actions for one executor slot, one job at a time, and is reused for
 * the slot's next job (a thread costs tens of milliseconds to start). Each run is a ThreadRun: the
 * run's own way to abort its action (the action's AbortSignal) or to terminate the thread, which stops
 * even code that never yields; both do nothing once that run has ended, so a late stop of one job can
 * never reach the job the thread runs next. A terminated or crashed thread is not reused.
 */
import type { Worker } from 'node:worker_threads';
import type { JobDocument } from '../api/job/document.js';
import { toError } from '../util/errors.js';
import type { LogLevel } from '../util/logger.js';
import { startWorker } from './worker-bootstrap.js';
import { parseFromWorker, type RunOutcome, type ToWorker, type WorkerSettings } from './worker-protocol.js';

export type ThreadResult = RunOutcome | { readonly kind: 'killed' } | { readonly kind: 'crashed'; readonly message: string };

export interface RunHooks {
  onProgress(percent: number, message: string | undefined): void;
  onLog(level: LogLevel, message: string, meta: Record<string, unknown> | undefined): void;
}

/** One run of an action in the thread, from the executor's side. */
export interface ThreadRun {
  /** What the action returned or threw, or how its thread ended; never rejects. */
  readonly result: Promise<ThreadResult>;
  /** Fires this run's AbortSignal with `reason`; nothing once this run has ended. */
  abort(reason: string): void;
  /**
   * Terminates the thread while it still runs this run (the run ends 'killed'); nothing once this
   * run has ended, whatever the thread runs by then.
   */
  terminate(): Promise<void>;
}

interface CurrentRun {
  readonly runId: number;
  readonly hooks: RunHooks;
  readonly settle: (result: ThreadResult) => void;
}

export class ActionThread {
  readonly #worker: Worker;
  readonly #name: string;
  #nextRunId = 1;
  #current: CurrentRun | undefined;
  #dead: string | undefined;
  #terminating = false;

  constructor(settings: WorkerSettings, name: string) {
    this.#name = name;
    this.#worker = startWorker('action-worker', name, settings);
    this.#worker.on('message', (raw: unknown) => {
      this.#onMessage(raw);
    });
    this.#worker.on('error', (error: unknown) => {
      this.#die(`the action's thread crashed: ${toError(error).message}`);
    });
    this.#worker.on('exit', (code: number) => {
      this.#die(this.#terminating ? 'terminated' : `the action's thread exited with code ${code}`);
    });
    // An idle thread must not keep a stopping executor alive.
    this.#worker.unref();
  }

  get threadId(): number {
    return this.#worker.threadId;
  }

  /** False once the thread was terminated or died: the slot needs a new one. */
  get usable(): boolean {
    return this.#dead === undefined && !this.#terminating;
  }

  get busy(): boolean {
    return this.#current !== undefined;
  }

  /**
   * Starts the action of `job`; only one run at a time. With `leaseDeadline` (worker-protocol.ts) the
   * thread aborts the action itself once that deadline passes.
   */
  run(file: string, job: JobDocument, hooks: RunHooks, leaseDeadline?: SharedArrayBuffer): ThreadRun {
    if (!this.usable) return endedRun({ kind: 'crashed', message: this.#dead ?? 'the thread is being terminated' });
    if (this.#current !== undefined) throw new Error(`thread ${this.#name} is already running a job`);
    const runId = this.#nextRunId++;
    const result = new Promise<ThreadResult>((resolve) => {
      this.#current = { runId, hooks, settle: resolve };
    });
    this.#worker.ref();
    this.#send({ type: 'run', runId, file, job, ...(leaseDeadline === undefined ? {} : { leaseDeadline }) });
    return {
      result,
      abort: (reason) => {
        if (this.#isCurrent(runId) && this.usable) this.#send({ type: 'abort', runId, reason });
      },
      terminate: async () => {
        if (this.#isCurrent(runId)) await this.terminate();
      },
    };
  }

  /**
   * Stops the thread whatever it runs; a running job ends 'killed'. For the slot, which owns the
   * thread; a job's run terminates it only through its ThreadRun.
   */
  async terminate(): Promise<void> {
    if (this.#dead !== undefined) return;
    this.#terminating = true;
    this.#settle({ kind: 'killed' });
    await this.#worker.terminate();
  }

  #isCurrent(runId: number): boolean {
    return this.#current?.runId === runId;
  }

  #send(message: ToWorker): void {
    this.#worker.postMessage(message);
  }

  #onMessage(raw: unknown): void {
    const message = parseFromWorker(raw);
    const current = this.#current;
    if (message === undefined || current === undefined || message.runId !== current.runId) return;
    if (message.type === 'progress') current.hooks.onProgress(message.percent, message.message);
    else if (message.type === 'log') current.hooks.onLog(message.level, message.message, message.meta);
    else this.#settle(message.outcome);
  }

  #settle(result: ThreadResult): void {
    const current = this.#current;
    if (current === undefined) return;
    this.#current = undefined;
    if (this.#dead === undefined) this.#worker.unref();
    current.settle(result);
  }

  #die(reason: string): void {
    if (this.#dead !== undefined) return;
    this.#dead = reason;
    this.#settle(this.#terminating ? { kind: 'killed' } : { kind: 'crashed', message: reason });
  }
}

/** A run that ended before it began (the thread was already dead): nothing to abort or terminate. */
function endedRun(result: ThreadResult): ThreadRun {
  return {
    result: Promise.resolve(result),
    abort: () => undefined,
    terminate: () => Promise.resolve(),
  };
}
