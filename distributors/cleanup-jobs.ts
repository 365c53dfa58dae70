/**
 * `cleanup_jobs`: once a day, the job that deletes final jobs older than 7 days (the action of the same
 * name), as Nuvla's and SlipStream's distributors do (docs/contracts.md §6). One job per day: its idempotency
 * key is the day's tick, so any number of distributors create it once.
 */
import { defineDistribution } from 'zk-job-engine';

export default defineDistribution({
  name: 'cleanup_jobs',
  description: 'daily job deleting final jobs older than 7 days',
  schedule: { cron: '0 3 * * *', timezone: 'UTC' },
  // A cleanup missed by a whole morning is still worth doing the same day.
  catchUpSeconds: 12 * 3600,
  jobs: () => [{ action: 'cleanup_jobs', priority: 900 }],
});
