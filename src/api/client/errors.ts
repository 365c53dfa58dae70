/**
 * Failures of client calls as the ApiError the server threw (same codes on both sides of the wire),
 * with what a caller needs to decide what to do next in `details`:
 *  - `retryable`: a transient failure (network, timeout, 502/503/504, 429): the same call may
 *    succeed later;
 *  - `maybeApplied`: the server may have carried the call out although no answer came back (a reply
 *    lost to a timeout or a reset connection, a gateway error), so a blind replay of a
 *    non-idempotent call could do it twice;
 *  - `httpStatus`, `method`, `path`, `attempts`.
 */
import { axios } from './axios.js';
import { API_ERROR_STATUS, ApiError, type ApiErrorCode } from '../errors.js';
import { isRecord } from '../../util/is-record.js';

export interface CallContext {
  readonly method: string;
  readonly path: string;
  readonly attempts?: number;
}

/** True when trying the same call again later may succeed (network trouble, an overloaded or restarting server). */
export function isRetryable(error: unknown): boolean {
  if (!(error instanceof ApiError)) return false;
  const flag = error.details?.retryable;
  return typeof flag === 'boolean' ? flag : error.code === 'unavailable';
}

/** True when the call failed without an answer after the request may have reached the server. */
export function mayHaveBeenApplied(error: unknown): boolean {
  return error instanceof ApiError && error.details?.maybeApplied === true;
}

const STATUS_CODES: ReadonlyMap<number, ApiErrorCode> = new Map([
  [400, 'bad-request'],
  [401, 'unauthorized'],
  [403, 'forbidden'],
  [404, 'not-found'],
  [409, 'conflict'],
  [412, 'precondition-failed'],
  [413, 'payload-too-large'],
  [429, 'unavailable'],
  [500, 'internal'],
  [502, 'unavailable'],
  [503, 'unavailable'],
  [504, 'unavailable'],
]);

/** Statuses a retry may cure: an overloaded, restarting or unreachable upstream. */
export const TRANSIENT_STATUSES: ReadonlySet<number> = new Set([429, 502, 503, 504]);
/** A gateway may have forwarded the request before failing; a 500 may have half-happened on a server without transactions. */
const MAYBE_APPLIED_STATUSES: ReadonlySet<number> = new Set([500, 502, 504]);

/** The ApiError for a non-2xx answer, keeping the server's code (when it is one of ours) and message. */
export function errorFromResponse(status: number, body: unknown, context: CallContext): ApiError {
  const fields = isRecord(body) ? body : {};
  const serverCode = fields.code;
  const code: ApiErrorCode =
    typeof serverCode === 'string' && serverCode in API_ERROR_STATUS
      ? (serverCode as ApiErrorCode)
      : (STATUS_CODES.get(status) ?? (status >= 500 ? 'internal' : 'bad-request'));
  const { status: _status, code: _code, message: _message, ...serverDetails } = fields;
  return new ApiError(code, messageOf(status, body, context), {
    details: {
      ...serverDetails,
      httpStatus: status,
      method: context.method,
      path: context.path,
      retryable: TRANSIENT_STATUSES.has(status),
      maybeApplied: MAYBE_APPLIED_STATUSES.has(status),
      ...(context.attempts === undefined ? {} : { attempts: context.attempts }),
    },
  });
}

/** Connection codes that mean the request never left this host or never reached a server. */
const NOT_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'EADDRNOTAVAIL']);

/** A failure without an HTTP answer (connection refused or reset, timeout, DNS) as ApiError 'unavailable'. */
export function errorFromNetwork(error: unknown, context: CallContext, options: { timeoutMs: number; closed: boolean }): ApiError {
  const code = networkCodeOf(error);
  const where = `${context.method} ${context.path}`;
  if (options.closed) {
    return new ApiError('unavailable', `${where}: the job API client was closed`, {
      cause: error,
      details: { method: context.method, path: context.path, retryable: false, maybeApplied: true, networkCode: code ?? 'closed' },
    });
  }
  const timedOut = code === 'ETIMEDOUT' || code === 'ECONNABORTED';
  const reason = timedOut ? `no complete answer within ${options.timeoutMs} ms` : error instanceof Error ? error.message : String(error);
  return new ApiError('unavailable', `${where}: the job API did not answer: ${reason}`, {
    cause: error,
    details: {
      method: context.method,
      path: context.path,
      retryable: true,
      maybeApplied: code === undefined || !NOT_SENT.has(code),
      ...(code === undefined ? {} : { networkCode: code }),
      ...(context.attempts === undefined ? {} : { attempts: context.attempts }),
    },
  });
}

/** The same error with the number of attempts made, for the caller's log. */
export function withAttempts(error: ApiError, attempts: number): ApiError {
  return new ApiError(error.code, error.message, { cause: error.cause, details: { ...error.details, attempts } });
}

function networkCodeOf(error: unknown): string | undefined {
  if (axios.isAxiosError(error)) {
    if (typeof error.code === 'string' && error.code !== 'ERR_NETWORK') return error.code;
    const cause: unknown = error.cause;
    if (isRecord(cause) && typeof cause.code === 'string') return cause.code;
    return error.code;
  }
  return isRecord(error) && typeof error.code === 'string' ? error.code : undefined;
}

function messageOf(status: number, body: unknown, context: CallContext): string {
  if (isRecord(body)) {
    if (typeof body.message === 'string' && body.message !== '') return body.message;
    // Elasticsearch-style errors, which some Nuvla versions pass through.
    const error = body.error;
    if (isRecord(error) && typeof error.reason === 'string') return error.reason;
  }
  if (typeof body === 'string' && body.trim() !== '') {
    const text = body.trim();
    return `HTTP ${status} from ${context.method} ${context.path}: ${text.length > 300 ? `${text.slice(0, 300)}...` : text}`;
  }
  return `HTTP ${status} from ${context.method} ${context.path}`;
}
