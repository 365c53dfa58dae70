/**
 * What code outside the engine imports: the contracts for authors of drop-in actions and distributions,
 * and the job API client they receive. Daemons are started through their commands, not from here.
 */
export {
  ActionPayloadError,
  defineAction,
  describeValue,
  type ActionContext,
  type ActionDefinition,
  type ActionOutcome,
  type ActionResult,
  type ActionSpec,
} from './executor/action.js';
export {
  defineDistribution,
  type DistributionContext,
  type DistributionDefinition,
  type DistributionSpec,
  type JobSpec,
  type JobSpecs,
  type QueueAccess,
} from './distributor/distribution.js';
export type { ScheduleSpec } from './distributor/schedule.js';
export { RETURN_CODES } from './executor/disposition.js';
export { JobApiClient, type JobApi } from './api/client/index.js';
export type { JobDocument, JobState, ResourceLink } from './api/job/document.js';
export type { Logger } from './util/logger.js';
export { whenAborted } from './util/when-aborted.js';
