/** Response bodies in the shapes Nuvla's API server uses, so Nuvla's clients read ours. */
import type { JobDocument, JobState } from '../job/document.js';
import { JOB_STATES, isFinal, jobUuid } from '../job/document.js';

export interface Operation {
  readonly rel: string;
  readonly href: string;
}

/** Nuvla lists what may be done with a resource; clients look for `cancel` there. */
export function withOperations(job: JobDocument): Record<string, unknown> {
  const operations: Operation[] = [{ rel: 'delete', href: job.id }];
  if (!isFinal(job.state)) {
    operations.unshift({ rel: 'edit', href: job.id });
    operations.push({ rel: 'cancel', href: `${job.id}/cancel` });
  }
  if (job.state === 'QUEUED') operations.push({ rel: 'claim', href: `${job.id}/claim` });
  return { ...job, operations };
}

export function selectFields(job: JobDocument, select: readonly string[] | undefined): Record<string, unknown> {
  if (select === undefined) return withOperations(job);
  const chosen: Record<string, unknown> = { id: job.id };
  const source = job as unknown as Record<string, unknown>;
  for (const field of select) if (field in source) chosen[field] = source[field];
  return chosen;
}

/**
 * `enqueued`: the server wrote the job's queue entry before replying (only with --zk-hosts).
 * `not-before`: the job waits for that time, so its creator must not enqueue it (the scheduler will).
 * `parked`: the job waits for room in its queue, so its creator must not enqueue it (the queue feeder will).
 */
export function createdBody(job: JobDocument, created: boolean, enqueued = false): Record<string, unknown> {
  const notBefore = job['not-before'];
  return {
    status: created ? 201 : 200,
    message: created ? `${job.id} created` : `${job.id} already exists for idempotency key ${job['idempotency-key'] ?? ''}`,
    'resource-id': job.id,
    created,
    ...(enqueued ? { enqueued: true } : {}),
    ...(notBefore === undefined ? {} : { 'not-before': notBefore }),
    ...(job.parked === true ? { parked: true } : {}),
  };
}

export function operationBody(status: number, job: JobDocument, verb: string): Record<string, unknown> {
  return { status, message: `${job.id} ${verb}`, 'resource-id': job.id };
}

export function collectionBody(count: number, resources: readonly Record<string, unknown>[]): Record<string, unknown> {
  return {
    count,
    'resource-type': 'job-collection',
    id: 'job',
    resources,
    operations: [
      { rel: 'add', href: 'job' },
      { rel: 'bulk-delete', href: 'job' },
    ],
  };
}

/** Nuvla's aggregation result for `terms:state`. */
export function stateAggregation(counts: Record<JobState, number>): Record<string, unknown> {
  return {
    'terms:state': {
      buckets: JOB_STATES.map((state) => ({ key: state, doc_count: counts[state] })),
    },
  };
}

export function locationOf(job: JobDocument): string {
  return `/api/job/${jobUuid(job.id)}`;
}
