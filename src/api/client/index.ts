/** The job API client: what the rest of the engine imports. */
export { JobApiClient } from './job-api-client.js';
export { BULK_CREATE_CHUNK, BULK_CREATE_MAX_BYTES } from './bulk.js';
export type { ClaimResult } from './job-api-client.js';
export type { CreateOptions, EditOptions, FetchedJob, JobApi, SearchResult } from './job-api.js';
export type { JobOperationRequest, JobOperationResult } from './operations.js';
export type { JobChanges, NewJob, SearchQuery, SelectQuery } from './inputs.js';
export type { Created } from './responses.js';
export { ClientOptionsError, DEFAULT_RETRY, DEFAULT_TIMEOUT_MS } from './options.js';
export type { ApiCredentials, Compatibility, JobApiClientOptions, RetryPolicy, ServerFlavour } from './options.js';
export { isRetryable, mayHaveBeenApplied } from './errors.js';
export { parseJob, parseSelectedJob, NO_REVISION, type JobField, type ParseJobOptions } from './parse-job.js';
export { backoffDelayMs } from './retry.js';
export { ApiError, type ApiErrorCode } from '../errors.js';
