/**
 * Session tokens for Nuvla's cookie login: stateless, so any API replica can check a cookie another
 * issued, with the signing secret they share through a file (session-secret.ts; never the database).
 * A token is `<payload>.<signature>`: base64url of `{"credentialId","role","expires","sid"}` and of its
 * HMAC-SHA256. `sid` names the session, so that logout can revoke it.
 *
 * A token says nothing about revocation by itself; the authenticator re-checks that its key still
 * exists and that its session was not logged out (see Authenticator.authenticate).
 */
import { createHmac, randomUUID, timingSafeEqual } from 'node:crypto';
import { isRole, type Principal } from './credentials.js';

/** Nuvla's cookie name, so Nuvla's clients keep and send it unchanged. */
export const SESSION_COOKIE = 'com.sixsq.nuvla.cookie';
export const DEFAULT_SESSION_TTL_MS = 24 * 60 * 60 * 1000;
const MIN_SECRET_BYTES = 32;
// Far above a real token (~150 characters); a longer cookie is refused before any work is done.
const MAX_TOKEN_LENGTH = 1024;

export type SessionCheck =
  | { readonly valid: true; readonly principal: Principal; readonly expires: Date; readonly sessionId: string }
  | { readonly valid: false; readonly reason: 'malformed' | 'bad-signature' | 'expired' };

export function issueSession(principal: Principal, signingSecret: Buffer, now: Date, ttlMs: number = DEFAULT_SESSION_TTL_MS): string {
  checkSecret(signingSecret);
  if (!Number.isSafeInteger(ttlMs) || ttlMs <= 0) throw new Error(`a session lifetime must be a positive integer of ms, got ${ttlMs}`);
  const payload = Buffer.from(
    JSON.stringify({ credentialId: principal.credentialId, role: principal.role, expires: now.getTime() + ttlMs, sid: randomUUID() }),
  ).toString('base64url');
  return `${payload}.${sign(payload, signingSecret)}`;
}

export function verifySession(token: string, signingSecret: Buffer, now: Date): Principal | undefined {
  const check = checkSession(token, signingSecret, now);
  return check.valid ? check.principal : undefined;
}

/** As verifySession, but says why a token is refused, so a client can be told its session expired. */
export function checkSession(token: string, signingSecret: Buffer, now: Date): SessionCheck {
  checkSecret(signingSecret);
  const dot = token.indexOf('.');
  if (token.length > MAX_TOKEN_LENGTH || dot < 0) return { valid: false, reason: 'malformed' };
  const payload = token.slice(0, dot);
  const given = Buffer.from(token.slice(dot + 1));
  const expected = Buffer.from(sign(payload, signingSecret));
  // Compared as text, not decoded: base64url decoding ignores stray characters, which would let
  // many spellings of one signature pass.
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return { valid: false, reason: 'bad-signature' };
  const claims = parseClaims(payload);
  if (claims === undefined) return { valid: false, reason: 'malformed' };
  if (claims.expires <= now.getTime()) return { valid: false, reason: 'expired' };
  return {
    valid: true,
    principal: { credentialId: claims.credentialId, role: claims.role },
    expires: new Date(claims.expires),
    sessionId: claims.sid,
  };
}

export interface CookieOptions {
  /** Add `Secure`: only when the API is served over HTTPS, or browsers drop the cookie. */
  readonly secure?: boolean;
}

/** A Set-Cookie header value carrying `token` for `ttlMs`. */
export function sessionCookie(token: string, ttlMs: number = DEFAULT_SESSION_TTL_MS, options: CookieOptions = {}): string {
  return cookie(token, Math.floor(ttlMs / 1000), options);
}

/** A Set-Cookie header value that makes the browser drop the session cookie (logout). */
export function clearedSessionCookie(options: CookieOptions = {}): string {
  return cookie('', 0, options);
}

function cookie(value: string, maxAgeSeconds: number, { secure = false }: CookieOptions): string {
  const attributes = [`${SESSION_COOKIE}=${value}`, 'Path=/', `Max-Age=${maxAgeSeconds}`, 'HttpOnly', 'SameSite=Strict'];
  if (secure) attributes.push('Secure');
  return attributes.join('; ');
}

/** The session token in a Cookie request header, if there is one. */
export function sessionTokenOf(cookieHeader: string | undefined): string | undefined {
  if (cookieHeader === undefined) return undefined;
  for (const pair of cookieHeader.split(';')) {
    const equals = pair.indexOf('=');
    if (equals < 0 || pair.slice(0, equals).trim() !== SESSION_COOKIE) continue;
    const value = pair.slice(equals + 1).trim();
    // Some clients quote cookie values (RFC 6265 allows it).
    const unquoted = value.length >= 2 && value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
    if (unquoted !== '') return unquoted;
  }
  return undefined;
}

function sign(payload: string, signingSecret: Buffer): string {
  return createHmac('sha256', signingSecret).update(payload).digest('base64url');
}

function checkSecret(signingSecret: Buffer): void {
  if (signingSecret.length < MIN_SECRET_BYTES) {
    throw new Error(`a session signing secret must have at least ${MIN_SECRET_BYTES} bytes, got ${signingSecret.length}`);
  }
}

interface Claims {
  readonly credentialId: string;
  readonly role: Principal['role'];
  readonly expires: number;
  readonly sid: string;
}

/** Only reached for a payload we signed; still checked, as a signing secret can outlive a format. */
function parseClaims(payload: string): Claims | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof parsed !== 'object' || parsed === null) return undefined;
  const { credentialId, role, expires, sid } = parsed as Record<string, unknown>;
  if (typeof credentialId !== 'string' || !isRole(role) || typeof expires !== 'number' || !Number.isSafeInteger(expires)) {
    return undefined;
  }
  // A token without a session id could not be logged out: refused.
  if (typeof sid !== 'string' || sid === '' || sid.length > 64) return undefined;
  return { credentialId, role, expires, sid };
}
