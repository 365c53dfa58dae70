/**
 * Where API keys live: next to the jobs, in the same SQLite file or PostgreSQL database, so every API
 * replica sees the same keys and the same revoked sessions. The session signing secret is not there:
 * whoever holds a copy of the database must not be able to mint a cookie (session-secret.ts).
 *
 * Revocation and the verification cache: `verify` remembers a successful answer for `cacheTtlMs`
 * (60 s by default) so a request does not pay for scrypt each time, but trusts that the key was not
 * revoked for `keyCheckTtlMs` (5 s) only: then one row read (no scrypt) checks that it still exists.
 * `lookup` (how a session is re-checked) is such a row read, remembered as long. `revoke` forgets the
 * key at once in the store object that revoked it; every other store object (other API replicas,
 * `job-api revoke-key`, another process on the same file) refuses the key, and sessions issued for
 * it, at most `keyCheckTtlMs` after the revocation. While the database cannot be read, a verified key
 * stands until its `cacheTtlMs` runs out.
 *
 * Logout revokes one session the same way: at once in the store that revoked it, and in the others
 * once their "not revoked" answer for it is older than `sessionCheckTtlMs` (5 s by default).
 */
import type { Role } from './credentials.js';

export interface NewCredential {
  readonly key: string;
  /** The only time the secret exists in clear: it is not stored, and cannot be shown again. */
  readonly secret: string;
  readonly role: Role;
}

/** What a key may do: its role, and the actions it may create jobs of (absent: any). */
export interface Grant {
  readonly role: Role;
  readonly actions?: readonly string[];
}

export interface NewCredentialOptions {
  /** The only actions the key may create jobs of; absent: any its role allows. */
  readonly actions?: readonly string[];
}

export interface CredentialInfo {
  readonly key: string;
  readonly role: Role;
  readonly actions?: readonly string[];
  readonly description?: string;
  /** ISO-8601. */
  readonly created: string;
}

export interface VerifiedCredential extends Grant {
  readonly credentialId: string;
}

export interface CredentialStore {
  readonly kind: 'sqlite' | 'postgres';
  create(role: Role, description?: string, options?: NewCredentialOptions): Promise<NewCredential>;
  /** The credential when `secret` is its secret; undefined for an unknown key or a wrong secret alike. */
  verify(key: string, secret: string): Promise<VerifiedCredential | undefined>;
  /** The grant of a key that has not been revoked, without its secret: how a session is re-checked. */
  lookup(key: string): Promise<Grant | undefined>;
  /** Oldest first. */
  list(): Promise<CredentialInfo[]>;
  /** False when there was no such key. */
  revoke(key: string): Promise<boolean>;
  /** Keys in the store, or only those of `role`. */
  count(role?: Role): Promise<number>;
  /**
   * The key that signs session cookies, as the opener gave it (from a file: session-secret.ts), or a
   * random one for this process alone. Never stored in the database.
   */
  signingSecret(): Promise<Buffer>;
  /** Ends session `id` (valid until `expires`): at once for this store, within sessionCheckTtlMs for others. */
  revokeSession(id: string, expires: Date): Promise<void>;
  isSessionRevoked(id: string): Promise<boolean>;
  close(): Promise<void>;
}

export interface CredentialStoreOptions {
  /** How long a successful verify is remembered, i.e. how often scrypt runs for one key (default 60 s). */
  readonly cacheTtlMs?: number;
  /**
   * How long "this key was not revoked" is trusted without the database (default 5 s): the most
   * another replica may go on accepting a key, or its sessions, after it was revoked elsewhere.
   */
  readonly keyCheckTtlMs?: number;
  /** The session signing key; without it a random one, so no other process accepts this one's sessions. */
  readonly signingSecret?: Buffer;
  /**
   * How long "this session was not revoked" is trusted without the database (default 5 s): the most
   * another replica may go on accepting a session after a logout elsewhere.
   */
  readonly sessionCheckTtlMs?: number;
  /** Milliseconds since the epoch; tests move it to expire the cache. */
  readonly now?: () => number;
}

export { openSqliteCredentialStore } from './credential-store-sqlite.js';
export { openPostgresCredentialStore } from './credential-store-postgres.js';
