/**
 * One worker thread that runs actions for one executor slot, one job at a time, and is reused for
 * the slot's next job (a thread costs tens of milliseconds to start). It can be asked to abort the
 * running action (the action's AbortSignal) or be terminated, which stops even code that never yields;
 * a terminated or crashed thread is not reused.
 */
import { extname } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { JobDocument } from '../api/job/document.js';
import { toError } from '../util/errors.js';
import type { LogLevel } from '../util/logger.js';
import { parseFromWorker, type RunOutcome, type ToWorker, type WorkerSettings } from './worker-protocol.js';

export type ThreadResult = RunOutcome | { readonly kind: 'killed' } | { readonly kind: 'crashed'; readonly message: string };

export interface RunHooks {
  onProgress(percent: number, message: string | undefined): void;
  onLog(level: LogLevel, message: string, meta: Record<string, unknown> | undefined): void;
}

interface CurrentRun {
  readonly runId: number;
  readonly hooks: RunHooks;
  readonly settle: (result: ThreadResult) => void;
}

// Under tsx (tests, a checkout) the entry is TypeScript, and Node 20 does not carry the main thread's
// loader hooks into workers: the thread registers tsx itself before importing the entry.
const ENTRY_URL = new URL(`./action-worker${extname(new URL(import.meta.url).pathname)}`, import.meta.url).href;
const TSX_API = ENTRY_URL.endsWith('.ts') ? import.meta.resolve('tsx/esm/api') : undefined;
const BOOTSTRAP = `
const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.tsx !== undefined) (await import(workerData.tsx)).register();
  await import(workerData.entry);
})().catch((error) => { process.nextTick(() => { throw error; }); });
`;

export class ActionThread {
  readonly #worker: Worker;
  readonly #name: string;
  #nextRunId = 1;
  #current: CurrentRun | undefined;
  #dead: string | undefined;
  #terminating = false;

  constructor(settings: WorkerSettings, name: string) {
    this.#name = name;
    this.#worker = new Worker(BOOTSTRAP, {
      eval: true,
      name,
      workerData: { ...settings, entry: ENTRY_URL, tsx: TSX_API },
    });
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

  run(file: string, job: JobDocument, hooks: RunHooks): Promise<ThreadResult> {
    if (!this.usable) return Promise.resolve({ kind: 'crashed', message: this.#dead ?? 'the thread is being terminated' });
    if (this.#current !== undefined) throw new Error(`thread ${this.#name} is already running a job`);
    const runId = this.#nextRunId++;
    return new Promise((resolve) => {
      this.#current = { runId, hooks, settle: resolve };
      this.#worker.ref();
      this.#send({ type: 'run', runId, file, job });
    });
  }

  /** Fires the running action's AbortSignal with this reason. */
  abort(reason: string): void {
    const current = this.#current;
    if (current !== undefined && this.usable) this.#send({ type: 'abort', runId: current.runId, reason });
  }

  /** Stops the thread whatever it runs; a running job ends 'killed'. */
  async terminate(): Promise<void> {
    if (this.#dead !== undefined) return;
    this.#terminating = true;
    this.#settle({ kind: 'killed' });
    await this.#worker.terminate();
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
