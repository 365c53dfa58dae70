/**
 * Who is calling, and may they: every request to the job API goes through `authenticate` (there is no
 * anonymous access) and then `authorize` for what it does. 401 means "we do not know who you are"
 * and says what was missing or wrong; 403 means "we know, and your role may not do this".
 *
 * A request authenticates with one of:
 *  - `Authorization: Bearer <key>:<secret>` (scripts, executors),
 *  - `Authorization: Basic base64(<key>:<secret>)` (curl -u, HTTP libraries),
 *  - Nuvla's session cookie, obtained by `login` (POST /api/session).
 * An Authorization header wins over a cookie: it is what the caller chose for this request.
 */
import { ApiError, badRequest } from '../errors.js';
import type { CredentialStore, Grant } from './credential-store.js';
import { can, rolesWith, type Permission, type Principal } from './credentials.js';
import {
  DEFAULT_SESSION_TTL_MS,
  checkSession,
  clearedSessionCookie,
  issueSession,
  sessionCookie,
  sessionTokenOf,
  type CookieOptions,
} from './sessions.js';

export type { Principal } from './credentials.js';

export interface AuthHeaders {
  readonly cookie?: string | undefined;
  readonly authorization?: string | undefined;
}

/** What the server knows of the request beyond its headers. */
export interface RequestContext {
  /** The request came over HTTPS (directly, or through a trusted proxy that says so). */
  readonly secure?: boolean;
}

export interface AuthenticatorOptions extends CookieOptions {
  /** Lifetime of a login session (default 24 h). */
  readonly sessionTtlMs?: number;
}

export interface Login {
  readonly principal: Principal;
  /** The whole Set-Cookie header value. */
  readonly cookie: string;
  readonly expires: Date;
}

export const API_KEY_TEMPLATE = 'session-template/api-key';

const NO_CREDENTIALS = 'no credentials: log in with POST /api/session or send Authorization';
const BAD_KEY = 'unknown key or wrong secret';
const HEADER_FORMS = 'expected "Bearer <key>:<secret>" or "Basic base64(<key>:<secret>)"';
const LOGIN_SHAPE = `{"template": {"href": "${API_KEY_TEMPLATE}", "key": "...", "secret": "..."}}`;
const LOG_IN_AGAIN = 'log in again with POST /api/session';

/** What each permission lets a role do, in words for 403 messages. */
const DOES: Readonly<Record<Permission, string>> = {
  read: 'read jobs',
  'read-all': 'read jobs whatever their acl',
  create: 'create jobs',
  'cancel-own': 'cancel the jobs it created',
  claim: 'claim jobs or edit the jobs an executor owns',
  edit: 'edit jobs',
  'delete-final': 'delete final jobs',
  delete: 'delete jobs',
  publish: 'publish job events',
  admin: 'manage API keys',
};

export class Authenticator {
  private readonly sessionTtlMs: number;
  private readonly cookieOptions: CookieOptions;

  constructor(
    private readonly store: CredentialStore,
    private readonly now: () => Date = () => new Date(),
    options: AuthenticatorOptions = {},
  ) {
    this.sessionTtlMs = options.sessionTtlMs ?? DEFAULT_SESSION_TTL_MS;
    this.cookieOptions = options.secure === undefined ? {} : { secure: options.secure };
  }

  async authenticate(headers: AuthHeaders): Promise<Principal> {
    const authorization = headers.authorization?.trim();
    if (authorization !== undefined && authorization !== '') {
      const { key, secret } = keyAndSecretOf(authorization);
      return this.verify(key, secret);
    }
    const token = sessionTokenOf(headers.cookie);
    if (token !== undefined) return this.fromSession(token);
    throw unauthorized(NO_CREDENTIALS);
  }

  allows(principal: Principal, permission: Permission): boolean {
    return can(principal.role, permission);
  }

  authorize(principal: Principal, permission: Permission): void {
    if (can(principal.role, permission)) return;
    throw new ApiError(
      'forbidden',
      `role ${principal.role} may not ${DOES[permission]} (that needs role ${rolesWith(permission).join(' or ')})`,
      { details: { role: principal.role, permission } },
    );
  }

  /**
   * Nuvla's api-key login: checks the key and secret and hands back a session cookie, `Secure` when
   * the request came over HTTPS (`context.secure`) or the authenticator was told to always set it.
   */
  async login(body: unknown, context: RequestContext = {}): Promise<Login> {
    const { key, secret } = parseLoginBody(body);
    const principal = await this.verify(key, secret);
    const now = this.now();
    const token = issueSession(principal, await this.store.signingSecret(), now, this.sessionTtlMs);
    return {
      principal,
      cookie: sessionCookie(token, this.sessionTtlMs, this.cookieOptionsFor(context)),
      expires: new Date(now.getTime() + this.sessionTtlMs),
    };
  }

  /** The Set-Cookie header value for logout. */
  logoutCookie(context: RequestContext = {}): string {
    return clearedSessionCookie(this.cookieOptionsFor(context));
  }

  private cookieOptionsFor(context: RequestContext): CookieOptions {
    return this.cookieOptions.secure === true || context.secure === true ? { secure: true } : this.cookieOptions;
  }

  /**
   * Ends the session of the cookie in `headers`, if it carries a valid one: refused at once by this
   * replica, and by the others within the credential store's session check TTL. The cookie alone
   * decides, so a logout needs no other credentials, and one without a session is still a success.
   */
  async logout(headers: AuthHeaders, context: RequestContext = {}): Promise<string> {
    const token = sessionTokenOf(headers.cookie);
    if (token !== undefined) {
      const check = checkSession(token, await this.store.signingSecret(), this.now());
      if (check.valid) await this.store.revokeSession(check.sessionId, check.expires);
    }
    return this.logoutCookie(context);
  }

  private async verify(key: string, secret: string): Promise<Principal> {
    const verified = await this.store.verify(key, secret);
    if (verified === undefined) throw unauthorized(BAD_KEY);
    return principalOf(verified.credentialId, verified);
  }

  private async fromSession(token: string): Promise<Principal> {
    const check = checkSession(token, await this.store.signingSecret(), this.now());
    if (!check.valid) {
      throw unauthorized(check.reason === 'expired' ? `session expired: ${LOG_IN_AGAIN}` : `invalid session cookie: ${LOG_IN_AGAIN}`);
    }
    if (await this.store.isSessionRevoked(check.sessionId)) throw unauthorized(`this session was logged out: ${LOG_IN_AGAIN}`);
    // The token is signed but stateless: this is what makes revoking a key end its sessions.
    const grant = await this.store.lookup(check.principal.credentialId);
    if (grant === undefined) throw unauthorized(`the API key of this session was revoked: ${LOG_IN_AGAIN}`);
    return principalOf(check.principal.credentialId, grant);
  }
}

function principalOf(credentialId: string, grant: Grant): Principal {
  return grant.actions === undefined ? { credentialId, role: grant.role } : { credentialId, role: grant.role, actions: grant.actions };
}

function keyAndSecretOf(authorization: string): { key: string; secret: string } {
  const space = authorization.indexOf(' ');
  const scheme = (space < 0 ? authorization : authorization.slice(0, space)).toLowerCase();
  const value = space < 0 ? '' : authorization.slice(space + 1).trim();
  if (scheme === 'bearer') return splitPair(value, 'Bearer');
  if (scheme === 'basic') {
    if (!/^[A-Za-z0-9+/]+={0,2}$/.test(value)) throw unauthorized(`malformed Basic credentials: not base64; ${HEADER_FORMS}`);
    return splitPair(Buffer.from(value, 'base64').toString('utf8'), 'Basic');
  }
  // The scheme is the caller's own text, not a secret; shortened so a pasted token is not echoed.
  throw unauthorized(`unsupported Authorization scheme "${scheme.slice(0, 20)}": ${HEADER_FORMS}`);
}

function splitPair(pair: string, scheme: string): { key: string; secret: string } {
  // Keys contain no colon; secrets are base64url and contain none either.
  const colon = pair.indexOf(':');
  if (colon <= 0 || colon === pair.length - 1) {
    throw unauthorized(`malformed ${scheme} credentials: ${HEADER_FORMS}`);
  }
  return { key: pair.slice(0, colon), secret: pair.slice(colon + 1) };
}

function parseLoginBody(body: unknown): { key: string; secret: string } {
  if (!isObject(body)) throw badRequest(`a login body must be a JSON object like ${LOGIN_SHAPE}`);
  const { template } = body;
  if (!isObject(template)) throw badRequest(`a login body needs a "template" object: ${LOGIN_SHAPE}`);
  const { href, key, secret } = template;
  if (href !== API_KEY_TEMPLATE) {
    throw badRequest(`only "${API_KEY_TEMPLATE}" logins are supported; "template.href" is ${describe(href)}`);
  }
  if (typeof key !== 'string' || key === '') throw badRequest(`"template.key" must be a non-empty string, got ${describe(key)}`);
  // Never echo the secret, even a malformed one.
  if (typeof secret !== 'string' || secret === '') throw badRequest('"template.secret" must be a non-empty string');
  return { key, secret };
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function describe(value: unknown): string {
  if (value === undefined) return 'missing';
  if (typeof value === 'string') return JSON.stringify(value.length > 60 ? `${value.slice(0, 60)}...` : value);
  return value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
}

function unauthorized(message: string): ApiError {
  return new ApiError('unauthorized', message);
}
