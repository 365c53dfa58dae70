/**
 * Errors of the job API with their HTTP status and a stable code. The server turns them into
 * `{ status, message, code, ... }` bodies (Nuvla's error shape plus `code`); the client turns those
 * bodies back into the same classes, so callers branch on `error.code` on either side of the wire.
 */

export const API_ERROR_STATUS = {
  'bad-request': 400,
  unauthorized: 401,
  forbidden: 403,
  'not-found': 404,
  conflict: 409,
  'precondition-failed': 412,
  'payload-too-large': 413,
  'unsupported-media-type': 415,
  'too-many-requests': 429,
  unavailable: 503,
  internal: 500,
} as const;

export type ApiErrorCode = keyof typeof API_ERROR_STATUS;

export class ApiError extends Error {
  override readonly name = 'ApiError';
  readonly code: ApiErrorCode;
  readonly status: number;
  /** Extra facts for the caller, e.g. the position of a filter syntax error. */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ApiErrorCode, message: string, options: { details?: Record<string, unknown>; cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.status = API_ERROR_STATUS[code];
    this.details = options.details;
  }
}

export const badRequest = (message: string, details?: Record<string, unknown>): ApiError =>
  new ApiError('bad-request', message, details === undefined ? {} : { details });
export const notFound = (message: string): ApiError => new ApiError('not-found', message);
export const conflict = (message: string, details?: Record<string, unknown>): ApiError =>
  new ApiError('conflict', message, details === undefined ? {} : { details });
export const preconditionFailed = (message: string, details?: Record<string, unknown>): ApiError =>
  new ApiError('precondition-failed', message, details === undefined ? {} : { details });
