/**
 * The executor's metrics: what becomes of the jobs it takes (it is the runner's JobObserver), its
 * slots, the queue, its ZooKeeper session; and its readiness (ZooKeeper connected, the job API
 * reachable). Made in the entry point with the daemon's registry before the executor starts, so the
 * endpoint answers during the start, then attached to the running executor.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { ZkClient } from '../zk/client.js';
import type { QueuePaths } from '../recipes/queue-layout.js';
import { JOB_OUTCOMES, type JobObserver, type JobOutcome, type SkipReason } from '../executor/job-observer.js';
import type { Logger } from '../util/logger.js';
import type { ReadinessChecks } from './metrics-server.js';
import { registerQueueMetrics } from './queue-metrics.js';
import { METRIC_PREFIX } from './registry.js';
import { ZooKeeperMetrics } from './zk-metrics.js';

/** What the metrics read from a running executor (the Executor class has all of it). */
export interface ExecutorSource {
  readonly zookeeper: ZkClient;
  readonly queuePaths: QueuePaths;
  readonly busySlots: number;
  readonly apiReachable: boolean;
  readonly options: { readonly threads: number };
  /** Fleet-wide limits per action: the leases this executor holds, the entries it deferred. */
  readonly limits?: {
    leasesHeld(): ReadonlyMap<string, number>;
    deferredEntries(): ReadonlyMap<string, number>;
  };
}

/** From a no-op action's few milliseconds to actions that run for hours. */
const DURATION_BUCKETS = [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200];

export class ExecutorMetrics implements JobObserver {
  readonly registry: Registry;
  readonly #zookeeper: ZooKeeperMetrics;
  readonly #taken: Counter<'action'>;
  readonly #ended: Counter<'action' | 'outcome'>;
  readonly #durations: Histogram<'action' | 'outcome'>;
  readonly #skipped: Counter<'reason'>;
  readonly #rejected: Counter;
  readonly #deferred: Counter<'action' | 'reason'>;
  #source: ExecutorSource | undefined;

  constructor(registry: Registry, logger: Logger) {
    this.registry = registry;
    const registers = [registry];
    this.#taken = new Counter({
      name: `${METRIC_PREFIX}executor_jobs_taken_total`,
      help: 'Jobs this executor took on: claimed to run, or failed at once for an action no module here defines (action "_unknown")',
      labelNames: ['action'],
      registers,
    });
    this.#ended = new Counter({
      name: `${METRIC_PREFIX}executor_jobs_ended_total`,
      help: `How the jobs this executor took on ended, by outcome: ${JOB_OUTCOMES.join(', ')}`,
      labelNames: ['action', 'outcome'],
      registers,
    });
    this.#durations = new Histogram({
      name: `${METRIC_PREFIX}executor_job_duration_seconds`,
      help: "From taking a job on to its outcome: the action's run and the result's write",
      labelNames: ['action', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.#skipped = new Counter({
      name: `${METRIC_PREFIX}executor_entries_skipped_total`,
      help: 'Queue entries consumed or released without running their job, by reason',
      labelNames: ['reason'],
      registers,
    });
    this.#rejected = new Counter({
      name: `${METRIC_PREFIX}executor_entries_rejected_total`,
      help: "Queue entries whose data is not a job id, moved under the queue's rejected/ node (jobctl queue lists them)",
      registers,
    });
    const slots = new Gauge({
      name: `${METRIC_PREFIX}executor_slots`,
      help: "The executor's --threads slots: busy (holding a queue entry) or free",
      labelNames: ['state'],
      registers,
      collect: () => {
        const source = this.#source;
        if (source === undefined) return;
        slots.set({ state: 'busy' }, source.busySlots);
        slots.set({ state: 'free' }, source.options.threads - source.busySlots);
      },
    });
    const api = new Gauge({
      name: `${METRIC_PREFIX}executor_api_reachable`,
      help: '1 while the job API answers, 0 while the executor waits for it (and takes no job)',
      registers,
      collect: () => {
        if (this.#source !== undefined) api.set(this.#source.apiReachable ? 1 : 0);
      },
    });
    this.#deferred = new Counter({
      name: `${METRIC_PREFIX}executor_limit_waits_total`,
      help: 'Jobs deferred because their action was at its fleet-wide limit: reason concurrency (no lease of its semaphore) or rate (no token of its bucket)',
      labelNames: ['action', 'reason'],
      registers,
    });
    const leases = new Gauge({
      name: `${METRIC_PREFIX}executor_limit_leases_held`,
      help: "Leases of actions' semaphores (maxConcurrent) this executor holds now",
      labelNames: ['action'],
      registers,
      collect: () => {
        leases.reset();
        for (const [action, held] of this.#source?.limits?.leasesHeld() ?? []) leases.set({ action }, held);
      },
    });
    const parked = new Gauge({
      name: `${METRIC_PREFIX}executor_limit_deferred_entries`,
      help: 'Queue entries this executor set aside because their action is at its limit, waiting for a lease or a token',
      labelNames: ['action'],
      registers,
      collect: () => {
        parked.reset();
        for (const [action, count] of this.#source?.limits?.deferredEntries() ?? []) parked.set({ action }, count);
      },
    });
    registerQueueMetrics(registry, () => this.#source, logger);
    this.#zookeeper = new ZooKeeperMetrics(registry);
  }

  attach(source: ExecutorSource): void {
    this.#source = source;
    this.#zookeeper.attach(source.zookeeper);
  }

  detach(): void {
    this.#zookeeper.detach();
  }

  readiness(): ReadinessChecks {
    const source = this.#source;
    if (source === undefined) return { executor: () => 'starting' };
    return {
      zookeeper: () => this.#zookeeper.readiness(),
      api: () => (source.apiReachable ? undefined : 'job API unreachable: taking no jobs until it answers'),
    };
  }

  taken(action: string): void {
    this.#taken.inc({ action });
  }

  ended(action: string, outcome: JobOutcome, seconds: number): void {
    this.#ended.inc({ action, outcome });
    this.#durations.observe({ action, outcome }, seconds);
  }

  deferred(action: string, reason: 'concurrency' | 'rate'): void {
    this.#deferred.inc({ action, reason });
  }

  skipped(reason: SkipReason): void {
    this.#skipped.inc({ reason });
    // Its own series too: an alert on garbage in the queue should not depend on a label value.
    if (reason === 'not_a_job_id') this.#rejected.inc();
  }
}
