/**
 * What code outside the engine imports: the contracts for authors of drop-in actions and distributions
 * (src/sdk/), the job API client they receive, and the engine's own maintenance routines that work
 * through those contracts alone. Daemons are started through their commands, not from here.
 */
export * from './sdk/index.js';
export { RETURN_CODES } from './executor/disposition.js';
export { JobApiClient } from './api/client/index.js';
export { reconcileQueue, type ReconcileOptions, type ReconcileReport } from './distributor/queue-reconciler.js';
export { runScheduler, type SchedulerOptions } from './distributor/job-scheduler.js';
export { feedQueues, type FeedOptions, type FeedReport } from './distributor/queue-feeder.js';
export { feedBatches, type BatchFeedOptions, type BatchFeedReport } from './distributor/batch-feeder.js';
