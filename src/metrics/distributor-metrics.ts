/**
 * The distributor's metrics, fed by its runners' events: which distributions this process leads,
 * every tick attempt and its jobs, the ZooKeeper session; and its readiness (ZooKeeper connected,
 * and the latest tick attempt of each distribution it leads succeeded: the job API and the module
 * work). Made in the entry point with the daemon's registry before the distributor starts.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { RunnerEvents, RunnerState } from '../distributor/distribution-runner.js';
import type { TickOutcome } from '../distributor/tick.js';
import type { ZkClient } from '../zk/client.js';
import { messageOf } from '../util/errors.js';
import type { ReadinessChecks } from './metrics-server.js';
import { METRIC_PREFIX } from './registry.js';
import { ZooKeeperMetrics } from './zk-metrics.js';

export interface DistributorSource {
  readonly zookeeper: ZkClient;
}

/** A tick creates from none to tens of thousands of jobs (10,000 in about a second here). */
const TICK_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300];

export class DistributorMetrics {
  readonly registry: Registry;
  /** Hand these to Distributor.start. */
  readonly events: RunnerEvents;
  readonly #zookeeper: ZooKeeperMetrics;
  /** Per distribution this process leads: why its latest tick attempt failed, if it did. */
  readonly #tickProblems = new Map<string, string>();
  #source: DistributorSource | undefined;

  constructor(registry: Registry) {
    this.registry = registry;
    const registers = [registry];
    const leader = new Gauge({
      name: `${METRIC_PREFIX}distributor_leader`,
      help: "1 while this process leads the distribution's election (and runs its ticks), else 0",
      labelNames: ['distribution'],
      registers,
    });
    const ticks = new Counter({
      name: `${METRIC_PREFIX}distributor_ticks_total`,
      help: 'Tick attempts by result: done, retried (failed, tried again), abandoned (failed until the next tick was due)',
      labelNames: ['distribution', 'result'],
      registers,
    });
    const tickDurations = new Histogram({
      name: `${METRIC_PREFIX}distributor_tick_duration_seconds`,
      help: 'Duration of each tick that was done: asking the module for its jobs, creating and enqueueing them',
      labelNames: ['distribution'],
      buckets: TICK_BUCKETS,
      registers,
    });
    const lastTick = new Gauge({
      name: `${METRIC_PREFIX}distributor_last_tick_timestamp_seconds`,
      help: 'When this process last finished a tick of the distribution (Unix time)',
      labelNames: ['distribution'],
      registers,
    });
    const jobs = new Counter({
      name: `${METRIC_PREFIX}distributor_jobs_total`,
      help: 'Jobs the ticks asked for, by result: created, existing (made by an earlier run of the same tick), invalid (refused spec)',
      labelNames: ['distribution', 'result'],
      registers,
    });
    this.#zookeeper = new ZooKeeperMetrics(registry);
    this.events = {
      onState: (distribution: string, state: RunnerState) => {
        leader.set({ distribution }, state === 'LEADING' ? 1 : 0);
        // A standby's past ticks say nothing about whether it could run the next one.
        if (state !== 'LEADING') this.#tickProblems.delete(distribution);
      },
      onTick: (distribution: string, _tick: Date, outcome: TickOutcome, durationMs: number) => {
        ticks.inc({ distribution, result: 'done' });
        tickDurations.observe({ distribution }, durationMs / 1000);
        lastTick.set({ distribution }, Date.now() / 1000);
        jobs.inc({ distribution, result: 'created' }, outcome.created);
        jobs.inc({ distribution, result: 'existing' }, outcome.existing);
        jobs.inc({ distribution, result: 'invalid' }, outcome.invalid);
        this.#tickProblems.delete(distribution);
      },
      onTickFailed: (distribution: string, _tick: Date, error: unknown, retrying: boolean) => {
        ticks.inc({ distribution, result: retrying ? 'retried' : 'abandoned' });
        this.#tickProblems.set(distribution, messageOf(error));
      },
    };
  }

  attach(source: DistributorSource): void {
    this.#source = source;
    this.#zookeeper.attach(source.zookeeper);
  }

  detach(): void {
    this.#zookeeper.detach();
  }

  readiness(): ReadinessChecks {
    if (this.#source === undefined) return { distributor: () => 'starting' };
    return {
      zookeeper: () => this.#zookeeper.readiness(),
      ticks: () => {
        const failing = [...this.#tickProblems].map(([name, problem]) => `${name}: latest tick failed (${problem})`);
        return failing.length === 0 ? undefined : failing.join('; ');
      },
    };
  }
}
