/**
 * Limits on guessing credentials, with @fastify/rate-limit's counters: every 401 of a request that
 * presented a key and secret (a login, an Authorization header) counts against the client (its
 * address, as --trust-proxy says to read it) and against the key it named. Once either has used up
 * its failures for the window, every such request of that client, or naming that key, gets 429 with
 * Retry-After before its credentials are checked: a guess made meanwhile is not even tried, so its
 * answer cannot tell whether it was right. Requests that authenticate count nothing, so legitimate
 * traffic is not limited however busy. Session cookies are neither counted nor blocked: they cannot
 * be guessed (HMAC-signed), and a restart that invalidates many at once must not lock out the
 * clients re-logging in. Logins are also limited per client, failed or not.
 */
import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.js';

export interface CredentialLimits {
  /** Failed credential checks one client may make per window. */
  readonly failuresPerClient: number;
  /** Failed credential checks naming one key per window, from all clients together. */
  readonly failuresPerKey: number;
  /** Logins one client may make per window, successful or not. */
  readonly loginsPerClient: number;
  readonly windowMs: number;
}

export const DEFAULT_CREDENTIAL_LIMITS: CredentialLimits = Object.freeze({
  failuresPerClient: 20,
  failuresPerKey: 50,
  // High: a host of executors re-logs in together after a restart; wrong secrets are limited above.
  loginsPerClient: 300,
  windowMs: 60_000,
});

/** Counters kept: clients and keys in recent use; an attacker cycling through more only evicts his own. */
const COUNTERS = 20_000;
// Longer "keys" are not keys; they are cut so one request cannot make the counter map large.
const MAX_KEY_LENGTH = 128;

/**
 * Registers the plugin and its hooks on `app`; before the routes, so that the login route's own
 * limit (`loginRouteConfig`) is seen.
 */
export async function registerCredentialLimits(app: FastifyInstance, limits: CredentialLimits): Promise<void> {
  await app.register(rateLimit, {
    global: false,
    cache: COUNTERS,
    timeWindow: limits.windowMs,
    errorResponseBuilder: (_request, context) => tooMany(`too many logins from this client: retry after ${context.after}`),
  });
  const perClient = app.createRateLimit({
    max: limits.failuresPerClient,
    timeWindow: limits.windowMs,
    keyGenerator: (request) => `client ${request.ip}`,
  });
  const perKey = app.createRateLimit({
    max: limits.failuresPerKey,
    timeWindow: limits.windowMs,
    keyGenerator: (request) => `key ${presentedKey(request) ?? ''}`,
  });

  // preHandler: the login body, which names the key, is parsed by then.
  app.addHook('preHandler', async (request, reply) => {
    if (!presentsKey(request)) return;
    const checks: [typeof perClient, string][] = [[perClient, 'failed credential checks from this client']];
    if (presentedKey(request) !== undefined) checks.push([perKey, 'failed credential checks for this key']);
    for (const [limiter, what] of checks) {
      const state = await limiter(request, { increment: false });
      if (!state.isAllowed && state.remaining === 0 && state.ttlInSeconds > 0) {
        void reply.header('retry-after', String(state.ttlInSeconds));
        throw tooMany(`too many ${what}: retry after ${String(state.ttlInSeconds)} s`);
      }
    }
  });

  app.addHook('onResponse', async (request, reply) => {
    if (reply.statusCode !== 401 || !presentsKey(request)) return;
    await perClient(request);
    if (presentedKey(request) !== undefined) await perKey(request);
  });
}

/** The route config of POST /api/session: every login counts against its client. */
export function loginRouteConfig(limits: CredentialLimits): {
  rateLimit: { max: number; timeWindow: number; keyGenerator: (request: FastifyRequest) => string };
} {
  return { rateLimit: { max: limits.loginsPerClient, timeWindow: limits.windowMs, keyGenerator: (request) => `login ${request.ip}` } };
}

function tooMany(message: string): ApiError {
  return new ApiError('too-many-requests', message);
}

/** A login, or an Authorization header: a request trying a key and secret (or something malformed). */
function presentsKey(request: FastifyRequest): boolean {
  const authorization = request.headers.authorization;
  return (authorization !== undefined && authorization.trim() !== '') || isLogin(request);
}

function isLogin(request: FastifyRequest): boolean {
  return request.method === 'POST' && request.url.split('?')[0] === '/api/session';
}

/** The key a request names: in its Authorization header (Bearer or Basic) or its login body. */
function presentedKey(request: FastifyRequest): string | undefined {
  const authorization = request.headers.authorization?.trim();
  let pair: string | undefined;
  if (authorization !== undefined && authorization !== '') {
    const space = authorization.indexOf(' ');
    const scheme = authorization.slice(0, Math.max(space, 0)).toLowerCase();
    const value = authorization.slice(space + 1).trim();
    if (scheme === 'bearer') pair = value;
    else if (scheme === 'basic') pair = Buffer.from(value, 'base64').toString('utf8');
  } else if (isLogin(request)) {
    const template: unknown = isObject(request.body) ? request.body.template : undefined;
    const key = isObject(template) ? template.key : undefined;
    return typeof key === 'string' && key !== '' ? key.slice(0, MAX_KEY_LENGTH) : undefined;
  }
  if (pair === undefined) return undefined;
  const colon = pair.indexOf(':');
  return colon > 0 ? pair.slice(0, Math.min(colon, MAX_KEY_LENGTH)) : undefined;
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
