/**
 * The package's `zk-job-engine/action` entry: what an action module needs, and nothing else. An action
 * module is imported in every executor thread that runs it, and the full entry (`zk-job-engine`) also
 * brings the HTTP client (JobApiClient, with axios) and the schedule checks (node-cron): a live thread
 * that loaded them measured 16.6 MB instead of 8.5 MB (Node 20, 16 threads, the built engine). The
 * bundled actions import from here for that reason; the names are the same as the full entry's.
 */
export {
  defineAction,
  type ActionContext,
  type ActionDefinition,
  type ActionOutcome,
  type ActionResult,
  type ActionSpec,
  type ProgramPolicy,
  type StagePolicy,
} from './action.js';
export { ActionPayloadError } from './action-payload.js';
export { describeValue } from './describe-value.js';
export type { JobApi } from '../api/client/job-api.js';
export { ApiError, type ApiErrorCode } from '../api/errors.js';
export type { JobDocument, JobState, ResourceLink } from '../api/job/document.js';
export type { Logger } from '../util/logger.js';
export { toError } from '../util/errors.js';
export { whenAborted } from '../util/when-aborted.js';
