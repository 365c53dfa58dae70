/**
 * One tick of one distribution: ask the module for its jobs (or run its leader-only task), check each
 * job spec, and submit them (persist, then enqueue). Each job carries an idempotency key made of the
 * distribution, the tick and the target, so a tick run twice (two processes that both believe they
 * lead, a retry after the API failed, a new leader making up a missed tick) creates each job once.
 */
import { createHash } from 'node:crypto';
import { toJobRetryField } from '../api/job/retry-policy.js';
import type { JobApi } from '../api/client/job-api.js';
import type { FedJob } from '../api/job/feed.js';
import type { NewJob } from '../api/client/inputs.js';
import type { JobEnqueuer } from '../enqueue/job-enqueuer.js';
import type { JobSubmitter } from '../enqueue/job-submitter.js';
import type { Logger } from '../util/logger.js';
import { withFields } from '../util/logger.js';
import { whenAborted } from '../util/when-aborted.js';
import type { DistributionDefinition, QueueAccess } from '../sdk/distribution.js';
import { jobSpecProblems, type JobSpec } from '../sdk/job-spec.js';

const MAX_KEY_LENGTH = 512;

/** What the distributor reads of the queue for a leader-only task (the queue reconciler). */
export type QueueReading = Pick<QueueAccess, 'jobIds' | 'isExecutorAlive' | 'names' | 'room'>;

export interface TickServices {
  readonly api: JobApi;
  readonly queue: QueueReading;
  /** How a leader-only task enqueues (the one enqueue path, also under `submitter`). */
  readonly enqueuer: JobEnqueuer;
  readonly submitter: JobSubmitter;
  /** Unparks the first jobs parked for a queue, best first (the job API's feed), for a leader-only task to enqueue. */
  readonly unpark: (queue: string, limit: number) => Promise<readonly FedJob[]>;
  /** Where batch generators are loaded from (`batch_feeder`). */
  readonly batchesDirs: readonly string[];
  /** False with Nuvla's job API, which has no idempotency keys: then only the election prevents duplicates. */
  readonly useIdempotencyKeys: () => Promise<boolean>;
}

export interface TickOutcome {
  /** Jobs this tick created. */
  readonly created: number;
  /** Jobs the tick asked for that already existed (the same tick run before, here or by another leader). */
  readonly existing: number;
  /** Job specs refused (each logged with its problems). */
  readonly invalid: number;
}

/** `distribution/<name>/<tick ISO time>/<target or ->`; a long target is replaced by its hash. */
export function idempotencyKeyOf(distribution: string, tick: Date, target: string | undefined): string {
  const key = `distribution/${distribution}/${tick.toISOString()}/${target ?? '-'}`;
  if (key.length <= MAX_KEY_LENGTH || target === undefined) return key;
  return `distribution/${distribution}/${tick.toISOString()}/sha256:${createHash('sha256').update(target).digest('hex')}`;
}

export function newJobOf(spec: JobSpec, key: string | undefined): NewJob {
  return {
    action: spec.action,
    ...(spec.target === undefined ? {} : { 'target-resource': { href: spec.target } }),
    ...(spec.priority === undefined ? {} : { priority: spec.priority }),
    ...(spec.payload === undefined ? {} : { payload: JSON.stringify(spec.payload) }),
    ...(spec.timeoutSeconds === undefined ? {} : { timeout: spec.timeoutSeconds }),
    ...(spec.queue === undefined ? {} : { queue: spec.queue }),
    ...(spec.tags === undefined ? {} : { tags: [...spec.tags] }),
    ...(spec.retry === undefined ? {} : { retry: toJobRetryField(spec.retry) }),
    ...(key === undefined ? {} : { 'idempotency-key': key }),
  };
}

/** Settles with `work`, or rejects with the signal's reason the moment it aborts (the work is abandoned). */
export async function untilAborted<T>(work: Promise<T>, signal: AbortSignal): Promise<T> {
  const aborted = whenAborted(signal);
  try {
    const result = await Promise.race([work, aborted.promise]);
    if (signal.aborted) throw signal.reason instanceof Error ? signal.reason : new Error('aborted');
    return result as T;
  } finally {
    aborted.dispose();
    // An abandoned call may still fail later; its failure is of no interest any more.
    work.catch(() => undefined);
  }
}

/** The queue as this tick's task sees it: its enqueues stop retrying when the tick is abandoned. */
function queueAccessOf(services: TickServices, signal: AbortSignal): QueueAccess {
  return {
    jobIds: () => services.queue.jobIds(),
    isExecutorAlive: (owner) => services.queue.isExecutorAlive(owner),
    enqueue: async (jobs) => {
      await services.enqueuer.enqueue(jobs, signal);
    },
    names: () => services.queue.names(),
    room: (name) => services.queue.room(name),
    feedParked: async (name, limit) => {
      const jobs = await services.unpark(name, limit);
      await services.enqueuer.enqueue(jobs, signal);
      return jobs.length;
    },
  };
}

export async function runTick(
  definition: DistributionDefinition,
  tick: Date,
  signal: AbortSignal,
  services: TickServices,
  logger: Logger,
): Promise<TickOutcome> {
  const log = withFields(logger, { distribution: definition.name, tick: tick.toISOString() });
  const context = { tick, signal, log, api: services.api, queue: queueAccessOf(services, signal), batchesDirs: services.batchesDirs };
  if (definition.run !== undefined) {
    await untilAborted(Promise.resolve(definition.run(context)), signal);
    return { created: 0, existing: 0, invalid: 0 };
  }
  if (definition.jobs === undefined) throw new Error(`distribution ${definition.name} has neither jobs nor run`);
  const specs = await untilAborted(Promise.resolve(definition.jobs(context)), signal);
  const keyed = await untilAborted(services.useIdempotencyKeys(), signal);

  const jobs = new Map<string, NewJob>();
  let invalid = 0;
  let index = 0;
  for await (const item of specs) {
    signal.throwIfAborted();
    // Typed for the author, unchecked at run time: a plain-JS module may yield anything.
    const spec: unknown = item;
    const problems = jobSpecProblems(spec);
    if (problems.length > 0) {
      invalid += 1;
      log.error('job spec refused', { index, problems });
    } else {
      const valid = spec as JobSpec;
      const key = idempotencyKeyOf(definition.name, tick, valid.target);
      // One job per target per tick (docs/contracts.md, invariant 4), even if the module yields a target twice.
      if (jobs.has(key)) log.warn('target given twice in one tick; one job is created', { index, target: valid.target ?? null });
      else jobs.set(key, newJobOf(valid, keyed ? key : undefined));
    }
    index += 1;
  }
  const submitted = await untilAborted(services.submitter.submit([...jobs.values()], signal), signal);
  const created = submitted.filter((job) => job.created);
  for (const job of created) log.info('job created', { job: job.id });
  return { created: created.length, existing: submitted.length - created.length, invalid };
}
