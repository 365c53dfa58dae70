/**
 * `job_scheduler`: enqueues delayed jobs (`not-before`) when due, within about a second, and ends
 * CANCELED those whose `expiry` came first (src/distributor/job-scheduler.ts). Its leader's task lasts
 * as long as its leadership: a tick every 10 s with a 10 s catch-up means a new leader starts it at
 * once, and while it runs the following ticks are not started (they would find it still running).
 */
import { defineDistribution, runScheduler } from 'zk-job-engine';

export default defineDistribution({
  name: 'job_scheduler',
  description: 'enqueues delayed jobs when their not-before comes; cancels those that expired first',
  schedule: { everySeconds: 10 },
  catchUpSeconds: 10,
  async run({ api, queue, log, signal }) {
    await runScheduler(api, queue, log, { signal });
  },
});
