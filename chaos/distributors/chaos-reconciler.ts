import { defineDistribution, reconcileQueue } from 'zk-job-engine';

/**
 * The queue reconciler at a chaos pace: every 5 s with a 3 s grace, so that jobs stranded by faults
 * (persisted but never enqueued, or RUNNING on a dead executor) come back within the run.
 */
export default defineDistribution({
  name: 'chaos_reconciler',
  schedule: { everySeconds: 5 },
  catchUpSeconds: 5,
  async run({ api, queue, log, signal }) {
    const report = await reconcileQueue(api, queue, log, { graceMs: 3000, signal });
    if (report.enqueued.length > 0 || report.requeued.length > 0)
      log.info('queue reconciled', { enqueued: report.enqueued.length, requeued: report.requeued.length });
  },
});
