/**
 * What code outside the engine imports: the action contract for authors of drop-in actions, and the
 * job API client their actions receive. Daemons are started through their commands, not from here.
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
export { RETURN_CODES } from './executor/disposition.js';
export { JobApiClient, type JobApi } from './api/client/index.js';
export type { JobDocument, JobState, ResourceLink } from './api/job/document.js';
export type { Logger } from './util/logger.js';
export { whenAborted } from './util/when-aborted.js';
