/**
 * `queue_reconciler`: every 30 s, finds jobs the queue has lost track of (QUEUED with no entry, RUNNING
 * on a dead executor with no entry) and puts them back in the queue (src/distributor/queue-reconciler.ts).
 * A stranded job waits at most one interval plus the 5 s grace given to creators between persisting
 * and enqueueing. Leader-elected like every distribution, so one pass runs at a time.
 */
import { defineDistribution, reconcileQueue } from 'zk-job-engine';

export default defineDistribution({
  name: 'queue_reconciler',
  description: 'puts stranded QUEUED and RUNNING jobs back in the queue',
  schedule: { everySeconds: 30 },
  catchUpSeconds: 30,
  async run({ api, queue, log, signal }) {
    const report = await reconcileQueue(api, queue, log, { graceMs: 5000, signal });
    log.debug('queue reconciled', { ...report, enqueued: report.enqueued.length, requeued: report.requeued.length });
  },
});
