/**
 * `queue_feeder`: enqueues the jobs parked in the job API (they found their queue's window full) as
 * room comes back, best priority first, then oldest (src/distributor/queue-feeder.ts). Each tick feeds
 * until just before the next, so a new leader takes over within a session timeout and a tick.
 */
import { defineDistribution, feedQueues } from 'zk-job-engine';

const TICK_SECONDS = 5;
/** Returned this long before the next tick is due, so that tick starts on time. */
const MARGIN_MS = 250;

export default defineDistribution({
  name: 'queue_feeder',
  description: 'enqueues parked jobs as their queues have room',
  schedule: { everySeconds: TICK_SECONDS },
  catchUpSeconds: TICK_SECONDS,
  async run({ tick, queue, log, signal }) {
    const until = new Date(tick.getTime() + TICK_SECONDS * 1000 - MARGIN_MS);
    const report = await feedQueues(queue, log, { signal, until });
    const total = Object.values(report.fed).reduce((sum, count) => sum + count, 0);
    if (total > 0) log.info('parked jobs enqueued', { jobs: total, byQueue: report.fed });
  },
});
