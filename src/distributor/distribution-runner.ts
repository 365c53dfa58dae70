/**
 * Runs one distribution in one process: stand for election at `/election/<name>`; while leading, wait
 * for each tick of the schedule and run it; when leadership is lost (session lost, suspended past the
 * grace period, node deleted), stop the tick in progress at once and stand again; on stop, resign so a
 * standby takes over without waiting for the session to expire.
 *
 *   CAMPAIGNING -> LEADING -> CAMPAIGNING (leadership lost) ... -> STOPPED
 */
import type { LeaderElection, Leadership } from '../recipes/election.js';
import type { Logger } from '../util/logger.js';
import { delay } from '../util/delay.js';
import { exponentialDelays, fixedDelays, retrying } from '../util/retrying.js';
import type { DistributionDefinition } from '../sdk/distribution.js';
import type { Schedule } from './schedule.js';
import { runTick, type TickOutcome, type TickServices } from './tick.js';

export type RunnerState = 'IDLE' | 'CAMPAIGNING' | 'LEADING' | 'STOPPED';

/** What an operator asks a distributor (SIGUSR1) about one distribution. */
export interface RunnerStatus {
  readonly distribution: string;
  readonly state: RunnerState;
  readonly schedule: string;
  /** While leading: the tick it waits for, or runs. */
  readonly nextTick?: string;
  readonly lastTick?: { readonly tick: string; readonly finished: string } & TickOutcome;
}

/** Long waits are taken in steps, so a clock that jumps (or a wait beyond setTimeout's limit) is noticed. */
const MAX_WAIT_STEP_MS = 60 * 60 * 1000;
/** A failed tick is retried with back-off, as long as the next tick is not due. */
const TICK_RETRY_DELAYS = exponentialDelays(1000, 60_000);
/** Between campaigns after an election failure that is not a lost leadership (e.g. ZooKeeper refusing). */
const CAMPAIGN_RETRY_DELAYS = fixedDelays(1000);

export interface RunnerEvents {
  /** Each state change; the daemon logs them, metrics will count them. */
  readonly onState?: (name: string, state: RunnerState) => void;
  /** Each finished tick (tests and metrics follow the schedule through it). */
  readonly onTick?: (name: string, tick: Date, outcome: TickOutcome, durationMs: number) => void;
  /** Each failed attempt at a tick: `retrying` false when the tick is abandoned (the next one is due). */
  readonly onTickFailed?: (name: string, tick: Date, error: unknown, retrying: boolean) => void;
  /** While leading, when the next tick is known and after each tick: the status operators are shown. */
  readonly onLeaderStatus?: (status: RunnerStatus) => void;
}

export class DistributionRunner {
  readonly definition: DistributionDefinition;
  readonly schedule: Schedule;
  readonly #election: LeaderElection;
  readonly #services: TickServices;
  readonly #logger: Logger;
  readonly #events: RunnerEvents;
  #state: RunnerState = 'IDLE';
  #nextTick: Date | undefined;
  #lastTick: RunnerStatus['lastTick'];

  constructor(
    definition: DistributionDefinition,
    schedule: Schedule,
    election: LeaderElection,
    services: TickServices,
    logger: Logger,
    events: RunnerEvents = {},
  ) {
    this.definition = definition;
    this.schedule = schedule;
    this.#election = election;
    this.#services = services;
    this.#logger = logger;
    this.#events = events;
  }

  get state(): RunnerState {
    return this.#state;
  }

  status(): RunnerStatus {
    return {
      distribution: this.definition.name,
      state: this.#state,
      schedule: this.schedule.description,
      ...(this.#state === 'LEADING' && this.#nextTick !== undefined ? { nextTick: this.#nextTick.toISOString() } : {}),
      ...(this.#lastTick === undefined ? {} : { lastTick: this.#lastTick }),
    };
  }

  /** Campaigns and leads until `signal` aborts; resolves once this runner holds no election node. */
  async run(signal: AbortSignal): Promise<void> {
    if (this.#state !== 'IDLE') throw new Error(`distribution ${this.definition.name} runner already ${this.#state.toLowerCase()}`);
    try {
      while (!signal.aborted) {
        this.#transition('CAMPAIGNING');
        let leadership: Leadership;
        try {
          leadership = await retrying(() => this.#election.campaign(signal), {
            delays: CAMPAIGN_RETRY_DELAYS,
            signal,
            onRetry: (error) => {
              this.#logger.error('election failed; standing again', { distribution: this.definition.name, error });
            },
          });
        } catch (error) {
          // Every failure is retried: only a stop ends the campaign.
          if (isAborted(signal)) break;
          throw error;
        }
        this.#transition('LEADING');
        await this.#lead(leadership, signal);
      }
    } finally {
      this.#transition('STOPPED');
    }
  }

  async #lead(leadership: Leadership, stop: AbortSignal): Promise<void> {
    const signal = AbortSignal.any([leadership.signal, stop]);
    try {
      // A tick the previous leader may have missed (it died just before it): made up at once; if it did
      // run, the idempotency keys make this a no-op.
      const missed = this.schedule.latestWithin(new Date(), this.definition.catchUpSeconds * 1000);
      if (missed !== undefined) await this.#tick(missed, signal, 'made up on becoming leader');
      for (;;) {
        const next = this.schedule.next(new Date());
        this.#nextTick = next;
        this.#events.onLeaderStatus?.(this.status());
        this.#logger.debug('next tick', { distribution: this.definition.name, tick: next.toISOString() });
        await waitUntil(next, signal);
        await this.#tick(next, signal);
      }
    } catch (error) {
      if (!signal.aborted) throw error;
    } finally {
      if (stop.aborted && !leadership.signal.aborted) {
        await leadership.resign().catch((error: unknown) => {
          this.#logger.warn('resigning failed; the session end will release the election', { distribution: this.definition.name, error });
        });
      }
    }
  }

  /** Runs the tick, retrying a failure with back-off until it succeeds or the following tick is due. */
  async #tick(tick: Date, signal: AbortSignal, why?: string): Promise<void> {
    const name = this.definition.name;
    const following = this.schedule.next(tick);
    let attempts = 0;
    try {
      await retrying(
        async (attempt) => {
          attempts = attempt;
          await this.#attempt(tick, attempt, following, signal, why);
        },
        {
          delays: TICK_RETRY_DELAYS,
          signal,
          // Retried only while the retry would start before the following tick is due.
          retryIf: (_error, next) => Date.now() + next.waitMs < following.getTime(),
          onRetry: (error, next) => {
            this.#events.onTickFailed?.(name, tick, error, true);
            this.#logger.warn('tick failed; retrying', {
              distribution: name,
              tick: tick.toISOString(),
              attempt: next.retry,
              retryInMs: next.waitMs,
              error,
            });
          },
        },
      );
    } catch (error) {
      if (signal.aborted) throw error;
      this.#events.onTickFailed?.(name, tick, error, false);
      this.#logger.error('tick abandoned: it kept failing until the next one was due', {
        distribution: name,
        tick: tick.toISOString(),
        attempt: attempts,
        error,
      });
    }
  }

  /** One attempt at a tick: run, then recorded and told. */
  async #attempt(tick: Date, attempt: number, following: Date, signal: AbortSignal, why: string | undefined): Promise<void> {
    const name = this.definition.name;
    const started = Date.now();
    this.#logger.info('tick started', { distribution: name, tick: tick.toISOString(), attempt, ...(why === undefined ? {} : { why }) });
    const outcome = await runTick(this.definition, tick, signal, this.#services, this.#logger);
    this.#logger.info('tick done', { distribution: name, tick: tick.toISOString(), ...outcome, durationMs: Date.now() - started });
    this.#lastTick = { tick: tick.toISOString(), finished: new Date().toISOString(), ...outcome };
    this.#events.onTick?.(name, tick, outcome, Date.now() - started);
    if (Date.now() > following.getTime()) {
      this.#logger.warn('tick outlasted the schedule; the ticks due meanwhile are skipped', {
        distribution: name,
        tick: tick.toISOString(),
      });
    }
  }

  #transition(state: RunnerState): void {
    if (this.#state === state || this.#state === 'STOPPED') return;
    this.#state = state;
    this.#logger.info(`distribution ${state.toLowerCase()}`, { distribution: this.definition.name });
    this.#events.onState?.(this.definition.name, state);
  }
}

// A function, because TypeScript keeps `signal.aborted` narrowed to false across awaits.
function isAborted(signal: AbortSignal): boolean {
  return signal.aborted;
}

/** Resolves at `at` by the wall clock (the schedule's clock), or rejects when `signal` aborts. */
async function waitUntil(at: Date, signal: AbortSignal): Promise<void> {
  for (let remaining = at.getTime() - Date.now(); remaining > 0; remaining = at.getTime() - Date.now()) {
    await delay(Math.min(remaining, MAX_WAIT_STEP_MS), signal, { keepProcessAlive: true });
  }
}
