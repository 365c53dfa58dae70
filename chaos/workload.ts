/**
 * The users of a chaos run: a producer creating jobs of the chaos action as `jobctl create` does
 * (persist, then enqueue), some left un-enqueued for the reconciler, with a mix of outcomes (most
 * succeed, some fail, some time out cooperatively, a few hang without ever yielding) and durations
 * (mostly 0.1-0.8 s, 5 % of 4-9 s); and an operator cancelling some jobs and retrying some final
 * ones. Errors while the API or ZooKeeper are away are counted and the work goes on.
 */
import pLimit from 'p-limit';
import type { JobApiClient } from '../src/api/client/index.js';
import type { NewJob } from '../src/api/client/inputs.js';
import type { JobEnqueuer } from '../src/enqueue/job-enqueuer.js';
import type { JobSubmitter } from '../src/enqueue/job-submitter.js';
import type { WorkloadRecord } from './checker.js';
import { pause } from './pause.js';
import type { Random } from './random.js';

export interface WorkloadOptions {
  readonly api: JobApiClient;
  readonly submitter: JobSubmitter;
  readonly enqueuer: JobEnqueuer;
  readonly random: Random;
  /** Jobs per second, on average. */
  readonly rate: number;
  /** Makes the idempotency keys of this run's jobs its own. */
  readonly runId: string;
}

export interface WorkloadFigures {
  readonly submitted: number;
  readonly leftForReconciler: number;
  readonly cancelRequests: number;
  readonly retries: number;
  readonly errors: number;
}

const CHAOS_ACTION = 'chaos_work';
const SHORT_TIMEOUT_SECONDS = 2;
/** Submits in flight at once; beyond twice that, batches are dropped (the backlog would only grow). */
const PRODUCERS = 8;

export class Workload implements WorkloadRecord {
  readonly cancelled = new Set<string>();
  readonly retried = new Set<string>();
  readonly #options: WorkloadOptions;
  readonly #pendingCancels: { readonly id: string; readonly at: number }[] = [];
  #next = 0;
  #submitted = 0;
  #leftForReconciler = 0;
  #errors = 0;

  constructor(options: WorkloadOptions) {
    this.#options = options;
  }

  get figures(): WorkloadFigures {
    return {
      submitted: this.#submitted,
      leftForReconciler: this.#leftForReconciler,
      cancelRequests: this.cancelled.size,
      retries: this.retried.size,
      errors: this.#errors,
    };
  }

  /** Until `signal` aborts. */
  async run(signal: AbortSignal): Promise<void> {
    await Promise.all([this.#produce(signal), this.#operate(signal)]);
  }

  async #produce(signal: AbortSignal): Promise<void> {
    const { random, rate } = this.#options;
    // Producers do not wait for each other: a slow create (the API or ZooKeeper away) must not hold
    // the rate down, as it would not in a fleet.
    const limit = pLimit(PRODUCERS);
    const submits: Promise<void>[] = [];
    // Batches of 1-3 jobs (2 on average), so a batch every 2/rate s on average.
    while (await pause(random.between(0, 4000 / rate), signal)) {
      const jobs = Array.from({ length: random.integer(1, 3) }, () => this.#newJob());
      const leftForReconciler = random.chance(0.1);
      const cancelDraws = jobs.map(() => (random.chance(0.04) ? random.between(200, 6000) : undefined));
      if (limit.pendingCount > PRODUCERS) continue;
      submits.push(limit(() => this.#submit(jobs, leftForReconciler, cancelDraws, signal)));
    }
    await Promise.all(submits);
  }

  async #submit(
    jobs: readonly NewJob[],
    leftForReconciler: boolean,
    cancelDraws: readonly (number | undefined)[],
    signal: AbortSignal,
  ): Promise<void> {
    try {
      const created = leftForReconciler ? await this.#createOnly(jobs) : await this.#options.submitter.submit(jobs, signal);
      this.#submitted += created.length;
      created.forEach(({ id }, index) => {
        const after = cancelDraws[index];
        if (after !== undefined) this.#pendingCancels.push({ id, at: Date.now() + after });
      });
    } catch {
      this.#errors++;
    }
  }

  /** Persisted and never enqueued by us, as after a producer crash: the reconciler must find them. */
  async #createOnly(jobs: readonly NewJob[]): Promise<readonly { readonly id: string }[]> {
    const created = await this.#options.api.createMany(jobs);
    this.#leftForReconciler += created.length;
    return created;
  }

  #newJob(): NewJob {
    const { random, runId } = this.#options;
    const n = this.#next++;
    const outcome = random.weighted([
      { value: 'succeed', weight: 90 },
      { value: 'fail', weight: 5 },
      { value: 'timeout', weight: 4 },
      { value: 'hang', weight: 1 },
    ]);
    const long = random.chance(0.05);
    const ms =
      outcome === 'timeout' || outcome === 'hang'
        ? random.between(3000, 6000)
        : Math.round(long ? random.between(4000, 9000) : random.between(100, 800));
    return {
      action: CHAOS_ACTION,
      payload: JSON.stringify({ n, outcome, ms: Math.round(ms) }),
      'idempotency-key': `chaos/${runId}/${String(n)}`,
      ...(outcome === 'timeout' || outcome === 'hang' ? { timeout: SHORT_TIMEOUT_SECONDS } : {}),
    };
  }

  /** The operator: due cancels, and now and then a retry of a failed or cancelled job. */
  async #operate(signal: AbortSignal): Promise<void> {
    const { api, random } = this.#options;
    while (await pause(500, signal)) {
      const now = Date.now();
      for (let index = this.#pendingCancels.length - 1; index >= 0; index--) {
        const pending = this.#pendingCancels[index];
        if (pending === undefined || pending.at > now) continue;
        this.#pendingCancels.splice(index, 1);
        this.cancelled.add(pending.id);
        // Refused when the job is already final: that is part of the game.
        await api.cancel(pending.id).catch(() => undefined);
      }
      if (random.chance(0.15)) await this.#retryOne().catch(() => this.#errors++);
    }
  }

  async #retryOne(): Promise<void> {
    const { api, enqueuer, random } = this.#options;
    const { jobs } = await api.search({
      filter: `action='${CHAOS_ACTION}' and (state='CANCELED' or (state='FAILED' and return-code=3))`,
      select: ['state', 'priority', 'action'],
      last: 50,
    });
    const candidates = jobs.filter((job) => !this.retried.has(job.id));
    if (candidates.length === 0) return;
    const chosen = random.pick(candidates);
    this.retried.add(chosen.id);
    const job = await api.retry(chosen.id);
    await enqueuer.enqueue([{ id: job.id, priority: job.priority, action: job.action }]);
  }
}
