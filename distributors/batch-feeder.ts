/**
 * `batch_feeder`: feeds every live batch its tasks, in groups of its batch-size at its tasks-per-second,
 * keeping at most its max-in-flight queued or running (src/distributor/batch-feeder.ts, docs/batches.md).
 * Each tick feeds until just before the next, so a new leader takes over within a session timeout and
 * a tick, and resumes every batch from its recorded marker.
 */
import { defineDistribution, feedBatches } from 'zk-job-engine';

const TICK_SECONDS = 5;
/** Returned this long before the next tick is due, so that tick starts on time. */
const MARGIN_MS = 250;

export default defineDistribution({
  name: 'batch_feeder',
  description: 'creates and enqueues the tasks of live batches',
  schedule: { everySeconds: TICK_SECONDS },
  catchUpSeconds: TICK_SECONDS,
  async run({ tick, api, queue, log, signal, batchesDirs }) {
    const until = new Date(tick.getTime() + TICK_SECONDS * 1000 - MARGIN_MS);
    const report = await feedBatches(api, queue, log, { signal, until, batchesDirs });
    const total = Object.values(report.fed).reduce((sum, count) => sum + count, 0);
    if (total > 0) log.info('batch tasks fed', { tasks: total, byBatch: report.fed });
  },
});
