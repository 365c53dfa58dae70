/**
 * Opens the job store and the credential store on one database: a SQLite file by default, or
 * PostgreSQL when given a postgres:// URL, so several API replicas can share it.
 */
import { chmod, mkdir, open } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { JobStore } from './store/job-store.js';
import { openSqliteStore } from './store/sqlite-store.js';
import { openPostgresStore } from './store/postgres-store.js';
import { openPostgresCredentialStore, openSqliteCredentialStore, type CredentialStore } from './auth/credential-store.js';
import { Releasers, startOrRelease } from '../util/releasers.js';

export interface Backends {
  readonly jobs: JobStore;
  readonly credentials: CredentialStore;
  /** Closes the credential store, then the job store, both even when one fails. Idempotent. */
  close(): Promise<void>;
}

export function isPostgresUrl(database: string): boolean {
  return /^postgres(ql)?:\/\//.test(database);
}

/** A database location as the user should see it: a PostgreSQL URL without its password. */
export function describeDatabase(database: string): string {
  if (!isPostgresUrl(database)) return resolve(database);
  try {
    const url = new URL(database);
    if (url.password !== '') url.password = '***';
    return url.toString();
  } catch {
    return 'postgres://(unparseable URL)';
  }
}

export interface BackendOptions {
  /** The session signing key (see session-secret.ts); without it, a random one for this process. */
  readonly signingSecret?: Buffer;
}

/** SQLite writes these next to the database, with the database file's own mode. */
const SQLITE_COMPANIONS = ['', '-wal', '-shm', '-journal'];

/**
 * The database holds hashed keys, revoked sessions and every job's payload: readable by its owner
 * only. Created 0600 before SQLite opens it (SQLite gives its -wal and -shm files the database's
 * mode), and an existing file made 0600 too, so an upgrade closes what an older version left open.
 */
async function restrictSqliteFiles(location: string): Promise<void> {
  await mkdir(dirname(location), { recursive: true, mode: 0o700 });
  await open(location, 'a', 0o600).then((handle) => handle.close());
  for (const suffix of SQLITE_COMPANIONS) {
    await chmod(`${location}${suffix}`, 0o600).catch((error: unknown) => {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    });
  }
}

/** Opens both stores; if the second cannot be opened, the first is closed again before the error is rethrown. */
export async function openBackends(database: string, options: BackendOptions = {}): Promise<Backends> {
  const releasers = new Releasers();
  return startOrRelease(releasers, async () => {
    const postgres = isPostgresUrl(database);
    const location = postgres ? database : resolve(database);
    if (!postgres) await restrictSqliteFiles(location);
    const jobs = await releasers.open(
      'job store',
      () => (postgres ? openPostgresStore(location) : openSqliteStore(location)),
      (store) => store.close(),
    );
    const credentials = await releasers.open(
      'credential store',
      () => {
        const storeOptions = options.signingSecret === undefined ? {} : { signingSecret: options.signingSecret };
        return postgres ? openPostgresCredentialStore(location, storeOptions) : openSqliteCredentialStore(location, storeOptions);
      },
      (store) => store.close(),
    );
    // Both are closed even when one fails: a half-closed pool keeps the process alive.
    return { jobs, credentials, close: () => releasers.releaseAll() };
  });
}
