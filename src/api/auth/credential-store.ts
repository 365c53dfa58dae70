/**
 * Where API keys live: next to the jobs, in the same SQLite file or PostgreSQL database, so every API
 * replica sees the same keys and the same session signing secret.
 *
 * Revocation and the verification cache: `verify` and `lookup` remember a successful answer for
 * `cacheTtlMs` (60 s by default) so a request does not pay for scrypt each time. `revoke` forgets the
 * key at once in the store object that revoked it; every other store object (other API replicas, or
 * another process on the same file) may still accept the revoked key, and sessions issued for it,
 * until its cached answer expires: at most `cacheTtlMs` after the revocation.
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
   * A random 32-byte secret created by the first store to ask and kept in the database, so that every
   * API replica signs and checks session cookies alike.
   */
  signingSecret(): Promise<Buffer>;
  close(): Promise<void>;
}

export interface CredentialStoreOptions {
  /** How long a successful verify or lookup is trusted without the database (default 60 s). */
  readonly cacheTtlMs?: number;
  /** Milliseconds since the epoch; tests move it to expire the cache. */
  readonly now?: () => number;
}

export { openSqliteCredentialStore } from './credential-store-sqlite.js';
export { openPostgresCredentialStore } from './credential-store-postgres.js';
