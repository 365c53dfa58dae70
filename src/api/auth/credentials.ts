/**
 * API keys of the job API: roles and what they may do, key generation, and hashing of secrets.
 *
 * A key is public (it names the credential, as Nuvla's `credential/<uuid>` api-key ids do); the
 * secret is 32 random bytes shown once at creation. Only an scrypt hash of the secret is stored, with
 * its salt and cost parameters, so old hashes still verify after the defaults change.
 */
import { randomBytes, randomUUID, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';

/** Strongest first (rolesWith lists them weakest first). docs/operations.md describes each. */
export const ROLES = ['admin', 'operator', 'distributor', 'maintenance', 'executor', 'producer', 'viewer'] as const;
export type Role = (typeof ROLES)[number];

/**
 * read: get, search and follow jobs (those their acl shows it, job-acl.ts). read-all: every job, whatever
 * its acl. create: create jobs. cancel-own: cancel jobs the key created.
 * claim: claim queued jobs and edit jobs an executor owns (see job-access.ts for what "owns" means).
 * edit: edit, cancel and retry any job. delete-final: delete jobs in a final state. delete: delete any
 * job. publish: publish queue events (enqueued). admin: manage API keys.
 */
export const PERMISSIONS = [
  'read',
  'read-all',
  'create',
  'cancel-own',
  'claim',
  'edit',
  'delete-final',
  'delete',
  'publish',
  'admin',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

const VIEWER = ['read'] as const;
const EXECUTOR = ['read', 'read-all', 'claim', 'publish'] as const;
const OPERATOR = ['read', 'read-all', 'create', 'cancel-own', 'claim', 'edit', 'delete-final', 'delete', 'publish'] as const;

export const ROLE_PERMISSIONS: Readonly<Record<Role, readonly Permission[]>> = Object.freeze({
  viewer: Object.freeze([...VIEWER]),
  producer: Object.freeze(['read', 'create', 'cancel-own'] as const),
  executor: Object.freeze([...EXECUTOR]),
  // An executor that also runs the bundled cleanup_jobs, which deletes final jobs.
  maintenance: Object.freeze([...EXECUTOR, 'delete-final'] as const),
  // job-distributor: creates its ticks' jobs, publishes their enqueueing, and its queue reconciler
  // puts the jobs of dead executors back to QUEUED (an edit of an owned job).
  distributor: Object.freeze(['read', 'read-all', 'create', 'cancel-own', 'claim', 'publish'] as const),
  operator: Object.freeze([...OPERATOR]),
  admin: Object.freeze([...OPERATOR, 'admin'] as const),
});

export function can(role: Role, permission: Permission): boolean {
  return ROLE_PERMISSIONS[role].includes(permission);
}

/** The roles that hold `permission`, weakest first, for "that needs ..." messages. */
export function rolesWith(permission: Permission): Role[] {
  return [...ROLES].reverse().filter((role) => can(role, permission));
}

export function isRole(value: unknown): value is Role {
  return typeof value === 'string' && (ROLES as readonly string[]).includes(value);
}

/** Who a request acts for: the credential it authenticated with, and that credential's role. */
export interface Principal {
  readonly credentialId: string;
  readonly role: Role;
  /** The only actions the key may create jobs of; absent: any. */
  readonly actions?: readonly string[];
}

export const KEY_PREFIX = 'credential/';
const KEY_PATTERN = /^credential\/[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const SECRET_BYTES = 32;

export function isApiKey(value: string): boolean {
  return KEY_PATTERN.test(value);
}

export function generateApiKey(): { key: string; secret: string } {
  return { key: `${KEY_PREFIX}${randomUUID()}`, secret: randomBytes(SECRET_BYTES).toString('base64url') };
}

export interface ScryptParams {
  /** CPU/memory cost, a power of two. */
  readonly N: number;
  readonly r: number;
  readonly p: number;
}

/**
 * 2^14 costs ~16 MiB and tens of milliseconds per hash: slow enough to make an offline guess at a
 * stolen hash expensive, fast enough that verifying does not cap login rates (verifications are
 * cached besides, see credential-store-core.ts). Secrets are 256 random bits, so the hash protects
 * against nothing a weaker cost would expose; it is there so a leaked table is worthless.
 */
export const DEFAULT_SCRYPT_PARAMS: ScryptParams = Object.freeze({ N: 2 ** 14, r: 8, p: 1 });

const SALT_BYTES = 16;
const HASH_BYTES = 32;
// A stored hash is data: these bounds keep a corrupted or planted row from making one verify
// allocate gigabytes or spin for minutes.
const MAX_N = 2 ** 20;
const MAX_R = 32;
const MAX_P = 16;
const MAX_MEMORY_BYTES = 256 * 1024 * 1024;

export interface SecretHash {
  readonly params: ScryptParams;
  readonly salt: Buffer;
  readonly hash: Buffer;
}

/** `scrypt$N$r$p$<salt>$<hash>`, salt and hash base64url. */
export async function hashSecret(secret: string, params: ScryptParams = DEFAULT_SCRYPT_PARAMS): Promise<string> {
  checkParams(params);
  const salt = randomBytes(SALT_BYTES);
  const hash = await derive(secret, salt, params, HASH_BYTES);
  const { N, r, p } = params;
  return ['scrypt', N, r, p, salt.toString('base64url'), hash.toString('base64url')].join('$');
}

/**
 * Whether `secret` matches the stored hash, compared in constant time. A hash that cannot be parsed
 * throws: it means the store is corrupt, which a "wrong secret" answer would hide.
 */
export async function verifySecret(secret: string, stored: string): Promise<boolean> {
  const { params, salt, hash } = parseSecretHash(stored);
  const candidate = await derive(secret, salt, params, hash.length);
  return timingSafeEqual(candidate, hash);
}

export function parseSecretHash(stored: string): SecretHash {
  const parts = stored.split('$');
  const [scheme, n, r, p, salt, hash] = parts;
  if (parts.length !== 6 || scheme !== 'scrypt' || salt === undefined || hash === undefined) {
    // The stored value itself stays out of the message: it ends up in logs.
    throw new Error(`not a stored secret hash: expected scrypt$N$r$p$salt$hash, got ${parts.length} fields starting ${describe(scheme)}`);
  }
  const params: ScryptParams = { N: integer(n, 'N'), r: integer(r, 'r'), p: integer(p, 'p') };
  checkParams(params);
  const saltBytes = base64url(salt, 'salt');
  const hashBytes = base64url(hash, 'hash');
  if (saltBytes.length < SALT_BYTES) throw new Error(`stored secret hash: salt of ${saltBytes.length} bytes is too short`);
  if (hashBytes.length < 16 || hashBytes.length > 64) {
    throw new Error(`stored secret hash: hash of ${hashBytes.length} bytes, expected 16 to 64`);
  }
  return { params, salt: saltBytes, hash: hashBytes };
}

function checkParams({ N, r, p }: ScryptParams): void {
  const powerOfTwo = Number.isSafeInteger(N) && N >= 2 && (N & (N - 1)) === 0;
  if (!powerOfTwo || N > MAX_N) throw new Error(`scrypt N must be a power of two from 2 to ${MAX_N}, got ${N}`);
  if (!Number.isSafeInteger(r) || r < 1 || r > MAX_R) throw new Error(`scrypt r must be 1 to ${MAX_R}, got ${r}`);
  if (!Number.isSafeInteger(p) || p < 1 || p > MAX_P) throw new Error(`scrypt p must be 1 to ${MAX_P}, got ${p}`);
  if (memoryOf({ N, r, p }) > MAX_MEMORY_BYTES) throw new Error(`scrypt N=${N} r=${r} needs more than ${MAX_MEMORY_BYTES} bytes`);
}

function memoryOf({ N, r, p }: ScryptParams): number {
  return 128 * r * (N + p + 2);
}

function derive(secret: string, salt: Buffer, params: ScryptParams, length: number): Promise<Buffer> {
  // Node refuses parameters whose memory exceeds maxmem (32 MiB by default); ours are bounded above.
  const options: ScryptOptions = { ...params, maxmem: memoryOf(params) + 1024 * 1024 };
  return new Promise((resolve, reject) => {
    scrypt(secret, salt, length, options, (error, key) => {
      if (error === null) resolve(key);
      else reject(error);
    });
  });
}

function integer(text: string | undefined, name: string): number {
  if (text === undefined || !/^[1-9][0-9]{0,9}$/.test(text)) {
    throw new Error(`stored secret hash: ${name} must be a positive integer, got ${describe(text)}`);
  }
  return Number(text);
}

function base64url(text: string, name: string): Buffer {
  if (!/^[A-Za-z0-9_-]+$/.test(text)) throw new Error(`stored secret hash: ${name} is not base64url`);
  return Buffer.from(text, 'base64url');
}

function describe(value: string | undefined): string {
  if (value === undefined) return 'nothing';
  return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
}
