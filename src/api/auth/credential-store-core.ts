/**
 * What the SQLite and PostgreSQL credential stores do alike: generating and hashing keys, the
 * verification cache, session revocation. Each database supplies only a `CredentialBackend` of plain
 * row operations.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type {
  CredentialInfo,
  CredentialStore,
  CredentialStoreOptions,
  Grant,
  NewCredential,
  NewCredentialOptions,
  VerifiedCredential,
} from './credential-store.js';
import { ROLES, generateApiKey, hashSecret, isApiKey, isRole, verifySecret, type Role } from './credentials.js';
import { SESSION_SECRET_BYTES, ephemeralSessionSecret } from './session-secret.js';

export interface StoredCredential {
  readonly key: string;
  readonly role: Role;
  readonly secretHash: string;
  readonly description: string | undefined;
  readonly created: string;
  /** JSON list of action names, or undefined for any. */
  readonly actions: string | undefined;
}

export interface CredentialBackend {
  insert(row: StoredCredential): Promise<void>;
  find(key: string): Promise<{ role: Role; secretHash: string; actions: readonly string[] | undefined } | undefined>;
  list(): Promise<CredentialInfo[]>;
  delete(key: string): Promise<boolean>;
  count(role: Role | undefined): Promise<number>;
  /** Records that session `id` (valid until `expiresMs`) has ended; forgets records of expired sessions. */
  revokeSession(id: string, expiresMs: number, nowMs: number): Promise<void>;
  isSessionRevoked(id: string): Promise<boolean>;
  close(): Promise<void>;
}

export const DEFAULT_CACHE_TTL_MS = 60_000;
export const DEFAULT_SESSION_CHECK_TTL_MS = 5_000;
export const DEFAULT_KEY_CHECK_TTL_MS = 5_000;
/**
 * Where earlier versions kept the signing secret, in clear: removed on open (see session-secret.ts),
 * which also ends the sessions signed with it.
 */
export const LEGACY_SIGNING_SECRET_SETTING = 'session-signing-secret';
// A revoked session stays refused in memory this long at least; the database answers after that.
const REVOKED_MEMORY_MS = 24 * 60 * 60 * 1000;
// Real secrets are 43 characters; a longer one is not ours, and need not be hashed to say so.
const MAX_SECRET_LENGTH = 1024;
// Past this many cached keys, expired entries are swept on insert so the maps stay bounded by the
// keys in recent use.
const SWEEP_ABOVE = 1024;

interface Cached<T> {
  readonly value: T;
  readonly expiresAt: number;
}

interface CachedVerification extends Cached<VerifiedCredential> {
  readonly digest: Buffer;
  /** Until when the key is trusted not to be revoked; after it, one row read (no scrypt) checks it again. */
  readonly checkedUntil: number;
}

/**
 * A key unknown to the store still costs one scrypt, so a wrong key and a wrong secret take the same
 * time and the answer says nothing about which was wrong.
 */
let decoyHash: Promise<string> | undefined;
function decoy(): Promise<string> {
  decoyHash ??= hashSecret(randomBytes(32).toString('base64url'));
  return decoyHash;
}

export function credentialStoreOver(
  kind: CredentialStore['kind'],
  backend: CredentialBackend,
  options: CredentialStoreOptions = {},
): CredentialStore {
  return new CachingCredentialStore(kind, backend, options);
}

class CachingCredentialStore implements CredentialStore {
  private readonly ttlMs: number;
  private readonly now: () => number;
  // The cache holds an HMAC of the secret under a per-process key, never the secret itself.
  private readonly digestKey = randomBytes(32);
  private readonly verified = new Map<string, CachedVerification>();
  private readonly roles = new Map<string, Cached<Grant>>();
  /** One scrypt for concurrent requests with the same key and secret. */
  private readonly inFlight = new Map<string, Promise<VerifiedCredential | undefined>>();
  /** One row read for concurrent requests whose cached verification is due for a revocation check. */
  private readonly rechecks = new Map<string, Promise<VerifiedCredential | undefined>>();
  private readonly keyCheckTtlMs: number;
  /**
   * Bumped by every revoke: an answer computed from a row read before a revocation must not be
   * cached after it.
   */
  private revocations = 0;
  private readonly signing: Buffer;
  private readonly sessionCheckTtlMs: number;
  /** Session ids and whether they were revoked: "no" is trusted for sessionCheckTtlMs, "yes" for good. */
  private readonly sessions = new Map<string, Cached<boolean>>();

  constructor(
    readonly kind: CredentialStore['kind'],
    private readonly backend: CredentialBackend,
    options: CredentialStoreOptions,
  ) {
    this.ttlMs = options.cacheTtlMs ?? DEFAULT_CACHE_TTL_MS;
    this.sessionCheckTtlMs = options.sessionCheckTtlMs ?? DEFAULT_SESSION_CHECK_TTL_MS;
    this.keyCheckTtlMs = options.keyCheckTtlMs ?? DEFAULT_KEY_CHECK_TTL_MS;
    if (!Number.isFinite(this.keyCheckTtlMs) || this.keyCheckTtlMs < 0)
      throw new Error(`keyCheckTtlMs must be >= 0, got ${this.keyCheckTtlMs}`);
    this.now = options.now ?? Date.now;
    if (!Number.isFinite(this.ttlMs) || this.ttlMs < 0) throw new Error(`cacheTtlMs must be >= 0, got ${this.ttlMs}`);
    if (!Number.isFinite(this.sessionCheckTtlMs) || this.sessionCheckTtlMs < 0) {
      throw new Error(`sessionCheckTtlMs must be >= 0, got ${this.sessionCheckTtlMs}`);
    }
    this.signing = options.signingSecret ?? ephemeralSessionSecret();
    if (this.signing.length < SESSION_SECRET_BYTES) {
      throw new Error(`a session signing secret must have at least ${SESSION_SECRET_BYTES} bytes, got ${this.signing.length}`);
    }
  }

  async create(role: Role, description?: string, options: NewCredentialOptions = {}): Promise<NewCredential> {
    if (!isRole(role)) throw new Error(`unknown role ${JSON.stringify(role)}: expected one of ${ROLES.join(', ')}`);
    const { key, secret } = generateApiKey();
    const secretHash = await hashSecret(secret);
    const created = new Date(this.now()).toISOString();
    const actions = options.actions === undefined ? undefined : JSON.stringify(checkActions(options.actions));
    await this.backend.insert({ key, role, secretHash, description, created, actions });
    return { key, secret, role };
  }

  verify(key: string, secret: string): Promise<VerifiedCredential | undefined> {
    if (!isApiKey(key) || secret.length > MAX_SECRET_LENGTH) return Promise.resolve(undefined);
    const digest = createHmac('sha256', this.digestKey).update(secret).digest();
    const cached = this.verified.get(key);
    if (cached !== undefined && cached.expiresAt > this.now() && timingSafeEqual(cached.digest, digest)) {
      return cached.checkedUntil > this.now() ? Promise.resolve(cached.value) : this.recheck(key, cached);
    }
    const flightKey = `${key} ${digest.toString('base64url')}`;
    let flight = this.inFlight.get(flightKey);
    if (flight === undefined) {
      flight = this.verifyUncached(key, secret, digest).finally(() => this.inFlight.delete(flightKey));
      this.inFlight.set(flightKey, flight);
    }
    return flight;
  }

  /**
   * Whether a key verified earlier still exists: a row read instead of a scrypt, so that a key revoked
   * by another process (another replica, `job-api revoke-key`) is refused within keyCheckTtlMs.
   */
  private recheck(key: string, cached: CachedVerification): Promise<VerifiedCredential | undefined> {
    let flight = this.rechecks.get(key);
    if (flight === undefined) {
      flight = this.recheckUncached(key, cached).finally(() => this.rechecks.delete(key));
      this.rechecks.set(key, flight);
    }
    return flight;
  }

  private async recheckUncached(key: string, cached: CachedVerification): Promise<VerifiedCredential | undefined> {
    const revocations = this.revocations;
    let row: Awaited<ReturnType<CredentialBackend['find']>>;
    try {
      row = await this.backend.find(key);
    } catch {
      // The database cannot say now: the verification stands until its own expiry (cacheTtlMs), as
      // before this check existed; the requests that need the database fail on their own anyway.
      return cached.value;
    }
    if (row === undefined) {
      this.verified.delete(key);
      this.roles.delete(key);
      return undefined;
    }
    if (revocations === this.revocations && this.verified.get(key) === cached) {
      this.verified.set(key, { ...cached, checkedUntil: this.now() + this.keyCheckTtlMs });
    }
    return cached.value;
  }

  private async verifyUncached(key: string, secret: string, digest: Buffer): Promise<VerifiedCredential | undefined> {
    const revocations = this.revocations;
    const row = await this.backend.find(key);
    if (row === undefined) {
      await verifySecret(secret, await decoy());
      return undefined;
    }
    if (!(await verifySecret(secret, row.secretHash))) return undefined;
    const value: VerifiedCredential = { credentialId: key, ...grantOf(row) };
    if (revocations === this.revocations) {
      const now = this.now();
      remember(this.verified, key, { value, digest, expiresAt: now + this.ttlMs, checkedUntil: now + this.keyCheckTtlMs }, now);
    }
    return value;
  }

  async lookup(key: string): Promise<Grant | undefined> {
    if (!isApiKey(key)) return undefined;
    const cached = this.roles.get(key);
    if (cached !== undefined && cached.expiresAt > this.now()) return cached.value;
    const revocations = this.revocations;
    const row = await this.backend.find(key);
    if (row === undefined) return undefined;
    const grant = grantOf(row);
    if (revocations === this.revocations) {
      // A row read, not a scrypt: trusted only as long as a key is trusted not to be revoked.
      remember(this.roles, key, { value: grant, expiresAt: this.now() + Math.min(this.ttlMs, this.keyCheckTtlMs) }, this.now());
    }
    return grant;
  }

  list(): Promise<CredentialInfo[]> {
    return this.backend.list();
  }

  async revoke(key: string): Promise<boolean> {
    const deleted = await this.backend.delete(key);
    // After the delete, and in the same synchronous step as the forgetting: a verify that read the
    // row earlier either cached before this point (and is forgotten here) or sees the new count.
    this.revocations += 1;
    this.verified.delete(key);
    this.roles.delete(key);
    return deleted;
  }

  count(role?: Role): Promise<number> {
    return this.backend.count(role);
  }

  signingSecret(): Promise<Buffer> {
    return Promise.resolve(this.signing);
  }

  async revokeSession(id: string, expires: Date): Promise<void> {
    // Refused here before the database is written, so this replica never accepts it again.
    remember(this.sessions, id, { value: true, expiresAt: this.now() + REVOKED_MEMORY_MS }, this.now());
    await this.backend.revokeSession(id, expires.getTime(), this.now());
  }

  async isSessionRevoked(id: string): Promise<boolean> {
    const cached = this.sessions.get(id);
    if (cached !== undefined && cached.expiresAt > this.now()) return cached.value;
    const revoked = await this.backend.isSessionRevoked(id);
    const entry = this.sessions.get(id);
    // A revocation made by this store while the database answered wins over that answer.
    if (entry?.value !== true || entry.expiresAt <= this.now()) {
      const trustedMs = revoked ? REVOKED_MEMORY_MS : this.sessionCheckTtlMs;
      remember(this.sessions, id, { value: revoked, expiresAt: this.now() + trustedMs }, this.now());
    }
    return revoked || this.sessions.get(id)?.value === true;
  }

  close(): Promise<void> {
    return this.backend.close();
  }
}

function remember<T extends Cached<unknown>>(map: Map<string, T>, key: string, entry: T, now: number): void {
  if (map.size >= SWEEP_ABOVE) {
    for (const [cachedKey, cached] of map) if (cached.expiresAt <= now) map.delete(cachedKey);
  }
  map.set(key, entry);
}

/** Database rows arrive untyped; these read one column or say which and what was there. */
export function column(row: unknown, name: string): unknown {
  if (typeof row !== 'object' || row === null || !(name in row)) {
    throw new Error(`expected a credentials row with column "${name}"`);
  }
  return (row as Record<string, unknown>)[name];
}

export function textColumn(row: unknown, name: string): string {
  const value = column(row, name);
  if (typeof value !== 'string') throw new Error(`credentials column "${name}" holds ${typeof value}, expected text`);
  return value;
}

export function optionalTextColumn(row: unknown, name: string): string | undefined {
  return column(row, name) === null ? undefined : textColumn(row, name);
}

export function roleColumn(row: unknown): Role {
  const role = column(row, 'role');
  if (!isRole(role)) throw new Error(`the credentials table holds an unknown role ${JSON.stringify(role)}`);
  return role;
}

/** SQLite gives counts as numbers; PostgreSQL's bigint arrives as a string. */
export function countColumn(row: unknown, name: string): number {
  const value = column(row, name);
  const count = typeof value === 'string' ? Number(value) : value;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
    throw new Error(`expected a count in column "${name}", got ${JSON.stringify(value)}`);
  }
  return count;
}

export function infoOfRow(row: unknown, created: string): CredentialInfo {
  const description = optionalTextColumn(row, 'description');
  const actions = actionsColumn(row);
  const info = { key: textColumn(row, 'key'), role: roleColumn(row), created, ...(actions === undefined ? {} : { actions }) };
  return description === undefined ? info : { ...info, description };
}

function grantOf(row: { readonly role: Role; readonly actions: readonly string[] | undefined }): Grant {
  return row.actions === undefined ? { role: row.role } : { role: row.role, actions: row.actions };
}

/** Action names as the API accepts them (parse.ts ACTION_NAME), at least one, no duplicates. */
const ACTION_NAME = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$/;
export function checkActions(actions: readonly string[]): string[] {
  if (actions.length === 0) throw new Error('an action allowlist names at least one action');
  for (const action of actions) {
    if (!ACTION_NAME.test(action)) throw new Error(`${JSON.stringify(action)} is not an action name (letters, digits, _ . : -)`);
  }
  return [...new Set(actions)];
}

/** The `actions` column: NULL for any action, else a JSON list of names. */
export function actionsColumn(row: unknown): readonly string[] | undefined {
  const text = optionalTextColumn(row, 'actions');
  if (text === undefined) return undefined;
  const parsed: unknown = JSON.parse(text);
  if (!Array.isArray(parsed) || !parsed.every((item): item is string => typeof item === 'string')) {
    throw new Error(`credentials column "actions" holds ${JSON.stringify(text)}, expected a JSON list of action names`);
  }
  return parsed;
}
