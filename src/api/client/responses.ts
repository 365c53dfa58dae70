/** Answers of the job API other than job documents, from `unknown` JSON, for Nuvla's and our server alike. */
import { ApiError } from '../errors.js';
import { JOB_STATES, type JobState } from '../job/document.js';
import { isRecord } from '../../util/is-record.js';
import type { HttpResponse } from './http.js';

export interface Created {
  readonly id: string;
  /** False when a job with the same idempotency key existed and was returned instead. */
  readonly created: boolean;
  /** True when the API server itself wrote the job's queue entry (`job-api serve --zk-hosts`). */
  readonly enqueuedByApi?: boolean;
  /** The time the job waits for: its creator leaves it to the scheduler instead of enqueueing it. */
  readonly notBefore?: string;
  /** The job waits in the API for room in its queue: the queue feeder enqueues it, not its creator. */
  readonly parked?: boolean;
}

/** `{status, message, resource-id[, created]}` of POST /api/job (Nuvla's has no `created`: 201 is). */
export function parseCreated(response: HttpResponse, what: string): Created {
  return createdOf(response.body, response.status === 201, what);
}

/** `{status: 201, resources: [created bodies]}` of a bulk create, in input order. */
export function parseBulkCreated(response: HttpResponse, expected: number): Created[] {
  const body = response.body;
  const resources = isRecord(body) ? body.resources : undefined;
  if (!Array.isArray(resources) || resources.length !== expected) {
    throw malformed(`a bulk create of ${expected} jobs answered without a list of ${expected} results`, body);
  }
  return resources.map((item: unknown, index) => createdOf(item, undefined, `bulk create result ${index}`));
}

function createdOf(body: unknown, createdByStatus: boolean | undefined, what: string): Created {
  if (!isRecord(body)) throw malformed(`${what} answered without a JSON object`, body);
  const id = body['resource-id'];
  if (typeof id !== 'string' || !id.startsWith('job/')) throw malformed(`${what} answered without a "resource-id" job/<uuid>`, body);
  const created =
    typeof body.created === 'boolean' ? body.created : typeof body.status === 'number' ? body.status === 201 : createdByStatus;
  if (created === undefined) throw malformed(`${what} answered without saying whether the job was created`, body);
  const waits = {
    ...(typeof body['not-before'] === 'string' ? { notBefore: body['not-before'] } : {}),
    ...(body.parked === true ? { parked: true } : {}),
  };
  return body.enqueued === true ? { id, created, enqueuedByApi: true, ...waits } : { id, created, ...waits };
}

/** A collection's `count` and its `resources` (still unparsed). */
export function parseCollection(response: HttpResponse): { count: number; resources: unknown[] } {
  const body = response.body;
  if (!isRecord(body)) throw malformed('a job search answered without a JSON object', body);
  const { count, resources = [] } = body;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) throw malformed('a job search answered without a "count"', body);
  if (!Array.isArray(resources)) throw malformed('a job search answered with "resources" that is not a list', body);
  return { count, resources };
}

/** `aggregations["terms:state"].buckets` as counts for every state (absent buckets are zero). */
export function parseStateCounts(response: HttpResponse): Record<JobState, number> {
  const body = response.body;
  const aggregations = isRecord(body) ? body.aggregations : undefined;
  const terms = isRecord(aggregations) ? aggregations['terms:state'] : undefined;
  const buckets = isRecord(terms) ? terms.buckets : undefined;
  if (!Array.isArray(buckets)) throw malformed('a count by state answered without aggregations["terms:state"].buckets', body);
  const counts = Object.fromEntries(JOB_STATES.map((state) => [state, 0])) as Record<JobState, number>;
  for (const bucket of buckets) {
    if (!isRecord(bucket) || typeof bucket.key !== 'string' || typeof bucket.doc_count !== 'number') {
      throw malformed('a count by state answered with a bucket that is not {key, doc_count}', body);
    }
    // A state this client does not know (a newer server) is not one it can report.
    if ((JOB_STATES as readonly string[]).includes(bucket.key)) counts[bucket.key as JobState] += bucket.doc_count;
  }
  return counts;
}

/** Ours says `count`; Nuvla passes Elasticsearch's delete-by-query answer, which says `deleted`. */
export function parseDeletedCount(response: HttpResponse): number {
  const body = response.body;
  const count = isRecord(body) ? (body.count ?? body.deleted) : undefined;
  if (typeof count !== 'number' || !Number.isInteger(count) || count < 0) {
    throw malformed('a bulk delete answered without the number of deleted jobs ("count" or "deleted")', body);
  }
  return count;
}

function malformed(message: string, body: unknown): ApiError {
  const shown = body === undefined ? 'empty body' : (typeof body === 'string' ? body : JSON.stringify(body)).slice(0, 200);
  return new ApiError('internal', `${message}: ${shown}`, { details: { retryable: false } });
}
