/**
 * The client's options as callers give them (possibly from a config file, so every field is checked
 * at run time too) and as the client uses them: validated, defaults filled in.
 */
import type { Logger } from '../../util/logger.js';
import { silentLogger } from '../../util/logger.js';
import { isRecord } from '../../util/is-record.js';

export type Compatibility = 'auto' | 'engine' | 'nuvla';
export type ServerFlavour = Exclude<Compatibility, 'auto'>;

export interface RetryPolicy {
  /** Further attempts after the first one (0: never retry). */
  readonly retries: number;
  /** Back-off ceiling of the first retry; it doubles with every further one. */
  readonly baseDelayMs: number;
  /** Back-off ceiling, whatever the attempt. */
  readonly maxDelayMs: number;
}

export interface ApiCredentials {
  readonly key: string;
  readonly secret: string;
}

export interface JobApiClientOptions {
  /**
   * The server's root, e.g. `http://127.0.0.1:8200` (the client adds `/api/...`); or the roots of
   * several replicas of one job API (one database), which calls are spread over and fail over between.
   */
  readonly baseUrl: string | readonly string[];
  /** An API key to log in with (POST /api/session); without it requests carry no credentials. */
  readonly credentials?: ApiCredentials;
  /** Per attempt, from sending to the whole response being read (default 10 s). */
  readonly timeoutMs?: number;
  readonly retry?: Partial<RetryPolicy>;
  /**
   * 'engine' uses this engine's additions (bulk create, If-Match, idempotency keys); 'nuvla' uses
   * only what Nuvla's API server offers; 'auto' (default) finds out from the server once.
   */
  readonly compatibility?: Compatibility;
  /** Most connections kept open to the server (default 256: one per concurrent executor slot). */
  readonly maxSockets?: number;
  /**
   * PEM certificates to trust for an https:// baseUrl instead of the system's (a private CA or the
   * server's self-signed certificate).
   */
  readonly ca?: string;
  readonly logger?: Logger;
}

export interface ResolvedOptions {
  /** Origin plus any path prefix, without a trailing slash: the first replica's. */
  readonly baseUrl: string;
  /** Every replica's, in the order given, without duplicates. */
  readonly baseUrls: readonly string[];
  readonly credentials: ApiCredentials | undefined;
  readonly timeoutMs: number;
  readonly retry: RetryPolicy;
  readonly compatibility: Compatibility;
  readonly maxSockets: number;
  readonly ca: string | undefined;
  readonly logger: Logger;
}

export const DEFAULT_TIMEOUT_MS = 10_000;
export const DEFAULT_RETRY: RetryPolicy = { retries: 5, baseDelayMs: 200, maxDelayMs: 10_000 };
export const DEFAULT_MAX_SOCKETS = 256;
const COMPATIBILITIES: readonly Compatibility[] = ['auto', 'engine', 'nuvla'];

export class ClientOptionsError extends TypeError {
  override readonly name = 'ClientOptionsError';
}

export function resolveOptions(options: unknown): ResolvedOptions {
  if (!isRecord(options)) throw new ClientOptionsError(`JobApiClient options must be an object, got ${describe(options)}`);
  const known = new Set(['baseUrl', 'credentials', 'timeoutMs', 'retry', 'compatibility', 'maxSockets', 'ca', 'logger']);
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new ClientOptionsError(`unknown JobApiClient option "${key}"; expected ${[...known].join(', ')}`);
  }
  const retry = options.retry ?? {};
  if (!isRecord(retry)) throw new ClientOptionsError(`"retry" must be an object, got ${describe(retry)}`);
  const resolvedRetry: RetryPolicy = {
    retries: integer(retry.retries, 'retry.retries', 0, 100) ?? DEFAULT_RETRY.retries,
    baseDelayMs: integer(retry.baseDelayMs, 'retry.baseDelayMs', 0, 3_600_000) ?? DEFAULT_RETRY.baseDelayMs,
    maxDelayMs: integer(retry.maxDelayMs, 'retry.maxDelayMs', 0, 3_600_000) ?? DEFAULT_RETRY.maxDelayMs,
  };
  if (resolvedRetry.maxDelayMs < resolvedRetry.baseDelayMs) {
    throw new ClientOptionsError(
      `"retry.maxDelayMs" (${resolvedRetry.maxDelayMs}) is below "retry.baseDelayMs" (${resolvedRetry.baseDelayMs})`,
    );
  }
  const compatibility = options.compatibility ?? 'auto';
  if (typeof compatibility !== 'string' || !(COMPATIBILITIES as readonly string[]).includes(compatibility)) {
    throw new ClientOptionsError(`"compatibility" must be one of ${COMPATIBILITIES.join(', ')}, got ${describe(compatibility)}`);
  }
  const baseUrls = baseUrlsOf(options.baseUrl);
  return {
    baseUrl: baseUrls[0] ?? '',
    baseUrls,
    credentials: credentialsOf(options.credentials),
    timeoutMs: integer(options.timeoutMs, 'timeoutMs', 1, 3_600_000) ?? DEFAULT_TIMEOUT_MS,
    retry: resolvedRetry,
    compatibility: compatibility as Compatibility,
    maxSockets: integer(options.maxSockets, 'maxSockets', 1, 65_536) ?? DEFAULT_MAX_SOCKETS,
    ca: caOf(options.ca),
    logger: loggerOf(options.logger),
  };
}

function caOf(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !value.includes('-----BEGIN CERTIFICATE-----')) {
    throw new ClientOptionsError(
      `"ca" must be PEM text with at least one certificate (-----BEGIN CERTIFICATE-----), got ${describe(value)}`,
    );
  }
  return value;
}

function baseUrlsOf(value: unknown): string[] {
  if (!Array.isArray(value)) return [baseUrlOf(value, '"baseUrl"')];
  if (value.length === 0) throw new ClientOptionsError('"baseUrl" must name at least one URL, got an empty list');
  const urls = value.map((item: unknown, index) => baseUrlOf(item, `"baseUrl[${String(index)}]"`));
  return [...new Set(urls)];
}

function baseUrlOf(value: unknown, name: string): string {
  if (typeof value !== 'string' || value.trim() === '') {
    throw new ClientOptionsError(`${name} must be a URL such as http://127.0.0.1:8200, got ${describe(value)}`);
  }
  let url: URL;
  try {
    url = new URL(value.trim());
  } catch {
    throw new ClientOptionsError(`${name} is not a valid URL: ${JSON.stringify(value)} (expected e.g. http://127.0.0.1:8200)`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ClientOptionsError(`${name} must be http: or https:, got ${url.protocol} in ${JSON.stringify(value)}`);
  }
  if (url.username !== '' || url.password !== '') {
    throw new ClientOptionsError(`${name} must not carry credentials; pass them as "credentials: { key, secret }"`);
  }
  if (url.search !== '' || url.hash !== '') {
    throw new ClientOptionsError(`${name} must not have a query or fragment: ${JSON.stringify(value)}`);
  }
  const path = url.pathname.replace(/\/+$/, '');
  // The client adds /api/job itself; a base ending in /api would ask for /api/api/job.
  if (/\/api$/.test(path)) {
    throw new ClientOptionsError(`${name} is the server root, without /api: use ${JSON.stringify(`${url.origin}${path.slice(0, -4)}`)}`);
  }
  return `${url.origin}${path}`;
}

function credentialsOf(value: unknown): ApiCredentials | undefined {
  if (value === undefined) return undefined;
  if (!isRecord(value)) throw new ClientOptionsError(`"credentials" must be { key, secret }, got ${describe(value)}`);
  const { key, secret } = value;
  if (typeof key !== 'string' || key === '')
    throw new ClientOptionsError(`"credentials.key" must be a non-empty string, got ${describe(key)}`);
  // The secret is never echoed, even a malformed one.
  if (typeof secret !== 'string' || secret === '') throw new ClientOptionsError('"credentials.secret" must be a non-empty string');
  return { key, secret };
}

function loggerOf(value: unknown): Logger {
  if (value === undefined) return silentLogger;
  const methods = ['error', 'warn', 'info', 'debug'] as const;
  if (!isRecord(value) || !methods.every((method) => typeof value[method] === 'function')) {
    throw new ClientOptionsError('"logger" must have error, warn, info and debug methods');
  }
  return value as unknown as Logger;
}

function integer(value: unknown, name: string, min: number, max: number): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new ClientOptionsError(`"${name}" must be an integer from ${min} to ${max}, got ${describe(value)}`);
  }
  return value;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
  if (typeof value === 'number' || typeof value === 'boolean') return `${typeof value} ${String(value)}`;
  return `a ${typeof value}`;
}
