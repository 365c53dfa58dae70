/**
 * The one cookie a login hands out, kept by hand: Nuvla's (and our) session is a single cookie, and a
 * general cookie jar would be a dependency for nothing. A generation number tells concurrent calls
 * that saw a 401 whether someone already logged in again since they sent their request.
 */

/**
 * Log in again a little before the cookie's own expiry rather than be refused: 30 s, or a tenth of
 * a shorter lifetime (so a short-lived session is not renewed on every call).
 */
const EXPIRY_MARGIN_MS = 30_000;

export class SessionCookie {
  #pair: string | undefined;
  /** When to log in again: somewhat before the cookie expires. */
  #renewAt: number | undefined;
  #generation = 0;

  /** `name=value` for the Cookie header, or undefined before a login. */
  get header(): string | undefined {
    return this.#pair;
  }

  /** Bumped by every login, so a call can tell whether its cookie is still the current one. */
  get generation(): number {
    return this.#generation;
  }

  /** True when there is no cookie, or it is (about to be) past its Max-Age. */
  needsLogin(now: number): boolean {
    return this.#pair === undefined || (this.#renewAt !== undefined && now >= this.#renewAt);
  }

  /**
   * Keeps the first non-empty cookie among the Set-Cookie headers of a login answer; false when
   * there is none (then the server did not log us in, whatever its status said).
   */
  accept(setCookieHeaders: readonly string[], now: number): boolean {
    for (const header of setCookieHeaders) {
      const parsed = parseSetCookie(header, now);
      if (parsed === undefined) continue;
      this.#pair = parsed.pair;
      this.#renewAt =
        parsed.expiresAt === undefined ? undefined : parsed.expiresAt - Math.min(EXPIRY_MARGIN_MS, (parsed.expiresAt - now) / 10);
      this.#generation += 1;
      return true;
    }
    return false;
  }

  clear(): void {
    this.#pair = undefined;
    this.#renewAt = undefined;
    this.#generation += 1;
  }
}

function parseSetCookie(header: string, now: number): { pair: string; expiresAt: number | undefined } | undefined {
  const [first = '', ...attributes] = header.split(';');
  const equals = first.indexOf('=');
  if (equals <= 0) return undefined;
  const name = first.slice(0, equals).trim();
  const value = first.slice(equals + 1).trim();
  if (name === '' || value === '' || value === '""') return undefined;
  let expiresAt: number | undefined;
  for (const attribute of attributes) {
    const [key = '', raw = ''] = attribute.split('=', 2).map((part) => part.trim());
    const lower = key.toLowerCase();
    // Max-Age wins over Expires (RFC 6265 5.3), and is immune to clock differences with the server.
    if (lower === 'max-age' && /^-?\d+$/.test(raw)) {
      const seconds = Number(raw);
      if (seconds <= 0) return undefined;
      expiresAt = now + seconds * 1000;
    } else if (lower === 'expires' && expiresAt === undefined) {
      const date = Date.parse(raw);
      if (!Number.isNaN(date)) expiresAt = date;
    }
  }
  if (expiresAt !== undefined && expiresAt <= now) return undefined;
  return { pair: `${name}=${value}`, expiresAt };
}
