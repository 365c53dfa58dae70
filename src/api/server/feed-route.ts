/**
 * `POST /api/job/feed` `{"queue": "<name>", "limit": N}`: the engine's addition for the queue feeder.
 * The first `limit` jobs parked for that queue (waiting in the job API for room in its window), best
 * priority first, then oldest, are unparked in one transaction and returned, for the feeder to
 * enqueue. Unparking first means two feeders (a deposed leader and the new one) never take the same
 * job; a feeder that dies before enqueueing leaves QUEUED jobs without an entry, which the queue
 * reconciler enqueues after its grace: nothing is lost, nothing is fed twice.
 */
import type { FastifyInstance } from 'fastify';
import { badRequest } from '../errors.js';
import { parseFilter } from '../cimi/parser.js';
import { applyEdit } from '../job/lifecycle.js';
import type { JobStore } from '../store/job-store.js';
import { QUEUE_NAME_RULE, isQueueName } from '../../recipes/queue-layout.js';
import { isRecord } from '../../util/is-record.js';
import { requireAnyPermission, type AccessControl } from './access.js';

import { FEED_PATH, type FedJob } from '../job/feed.js';

export interface FeedRouteOptions {
  readonly store: JobStore;
  readonly access: AccessControl;
  readonly now: () => Date;
  /** Most jobs one request may unpark. */
  readonly maxJobs: number;
}

function parseFeed(body: unknown, maxJobs: number): { queue: string; limit: number } {
  if (!isRecord(body)) throw badRequest('a feed needs a body like {"queue": "default", "limit": 1000}');
  const { queue, limit } = body;
  if (!isQueueName(queue)) throw badRequest(`"queue" must be a queue name (${QUEUE_NAME_RULE}), got ${JSON.stringify(queue)}`);
  if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < 1 || limit > maxJobs) {
    throw badRequest(`"limit" must be an integer from 1 to ${String(maxJobs)}, got ${JSON.stringify(limit)}`);
  }
  return { queue, limit };
}

export function registerFeedRoute(app: FastifyInstance, options: FeedRouteOptions): void {
  const { store, access, now } = options;
  const orderBy = [
    { attribute: ['priority'], direction: 'asc' as const },
    { attribute: ['created'], direction: 'asc' as const },
  ];
  app.post(FEED_PATH, async (request) => {
    await requireAnyPermission(access, request, ['claim', 'edit']);
    const { queue, limit } = parseFeed(request.body, options.maxJobs);
    // `queue` is kept with the default filled in (columns.ts): older jobs without the field match `default`.
    const filter = parseFilter(`state='QUEUED' and waiting='room' and queue='${queue}'`);
    const at = now();
    const fed = await store.updateFirst({ filter, orderBy }, limit, (current) => applyEdit(current, { immutable: {}, parked: false }, at));
    const jobs: FedJob[] = fed.map((job) => ({
      id: job.id,
      priority: job.priority,
      action: job.action,
      queue: job.queue ?? queue,
    }));
    return { status: 200, jobs };
  });
}
