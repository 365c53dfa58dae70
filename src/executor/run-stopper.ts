/**
 * Stops one run of an action once, whoever asks first (timeout, cancel, the job given to another
 * executor, the ZooKeeper session lost, the executor stopping): the action's signal, then its thread
 * terminated when the action has not ended within the grace period.
 *
 * A run only ever stops itself: it reaches the thread through its own ThreadRun, and once the run
 * has ended (`ended()`) a stop reaches nothing at all: no abort, no kill timer. The thread runs the
 * slot's next job by then, and a loss noticed that late (a progress write refused while the run was
 * ending) is found again by the run's final write, which the job's fencing refuses
 * (docs/contracts.md, invariant 2).
 */
import type { Logger } from '../util/logger.js';
import type { ThreadRun } from './action-thread.js';
import type { StopReason, Stopped } from './run-outcome.js';

type Phase =
  /** The action is not started yet: a stop is remembered, and takes effect when it starts. */
  | { readonly kind: 'starting' }
  | { readonly kind: 'running'; readonly run: ThreadRun }
  /** The action has ended: nothing of this run may reach the thread any more. */
  | { readonly kind: 'ended' };

export class RunStopper {
  readonly #graceMs: number;
  readonly #log: Logger;
  #phase: Phase = { kind: 'starting' };
  #stopped: Stopped | undefined;
  #killTimer: NodeJS.Timeout | undefined;

  constructor(graceMs: number, log: Logger) {
    this.#graceMs = graceMs;
    this.#log = log;
  }

  /** Why the run was stopped while its action ran; undefined when it was not. */
  get stopped(): Stopped | undefined {
    return this.#stopped;
  }

  /** The action has started as `run`. */
  started(run: ThreadRun): void {
    if (this.#phase.kind !== 'starting') throw new Error(`a run cannot start once it is ${this.#phase.kind}`);
    this.#phase = { kind: 'running', run };
    if (this.#stopped !== undefined) this.#signal(run, this.#stopped.detail);
  }

  stop(reason: StopReason, detail: string): void {
    if (this.#phase.kind === 'ended') {
      this.#log.debug('the action had already ended: nothing to stop', { reason, detail });
      return;
    }
    if (this.#stopped !== undefined) return;
    this.#stopped = { reason, detail };
    this.#log.warn('stopping the action', { reason, detail });
    if (this.#phase.kind === 'running') this.#signal(this.#phase.run, detail);
  }

  /** The action has ended (returned, threw, crashed or was killed): its kill timer goes, and no stop arms another. */
  ended(): void {
    this.#phase = { kind: 'ended' };
    clearTimeout(this.#killTimer);
    this.#killTimer = undefined;
  }

  #signal(run: ThreadRun, detail: string): void {
    run.abort(detail);
    this.#killTimer = setTimeout(() => {
      this.#killTimer = undefined;
      this.#log.error('the action did not stop within the grace period: its thread is terminated', { graceMs: this.#graceMs });
      void run.terminate();
    }, this.#graceMs);
  }
}
