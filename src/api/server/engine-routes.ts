/**
 * `GET /api/engine/overview`: the engine as ZooKeeper shows it (queues, live executors, leaders),
 * read-only, for the dashboard and any other reader with the `read` permission. Without --zk-hosts
 * it answers 503 with a message saying how to turn it on, which the dashboard shows in place.
 *
 * A key bound by job acls (viewer, producer) sees the shape of the engine but not which jobs sit in
 * it: job ids and rejected entries' bytes are left out for it, as its searches leave out the jobs
 * whose acl does not list it.
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.js';
import type { EngineSnapshot, EngineViews } from '../zk-views/engine-views.js';
import { ZooKeeperUnreachableError } from '../zk-views/engine-views.js';
import { requirePermission, type AccessControl } from './access.js';
import { aclBound } from './job-acl.js';

export const ENGINE_VIEWS_OFF =
  'ZooKeeper views are off: start job-api serve with --zk-hosts H:P[,H:P][/chroot] ' +
  '(and the --queue-path and --election-path the daemons use) to see queues, executors and leaders here';

export function registerEngineRoutes(app: FastifyInstance, options: { access: AccessControl; views: EngineViews | undefined }): void {
  const { access, views } = options;
  app.get('/api/engine/overview', async (request) => {
    const principal = await requirePermission(access, request, 'read');
    if (views === undefined) throw new ApiError('unavailable', ENGINE_VIEWS_OFF, { details: { zookeeper: false } });
    let snapshot: EngineSnapshot;
    try {
      snapshot = await views.snapshot();
    } catch (error) {
      if (error instanceof ZooKeeperUnreachableError) {
        throw new ApiError('unavailable', error.message, { details: { zookeeper: true, retryable: true }, cause: error });
      }
      throw error;
    }
    return aclBound(access, principal) ? withoutJobs(snapshot) : snapshot;
  });
}

function withoutJobs(snapshot: EngineSnapshot): EngineSnapshot {
  return {
    ...snapshot,
    queues: snapshot.queues.map((queue) => ({
      ...queue,
      takenEntries: queue.takenEntries.map((entry) => ({ ...entry, jobId: null })),
      rejected: queue.rejected.map((entry) => ({ ...entry, text: null, hex: '' })),
    })),
  };
}
