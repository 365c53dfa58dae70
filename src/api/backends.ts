/**
 * Opens the job store and the credential store on one database: a SQLite file by default, or
 * PostgreSQL when given a postgres:// URL, so several API replicas can share it.
 */
import { mkdir } from 'node:fs/promises';
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

/** Opens both stores; if the second cannot be opened, the first is closed again before the error is rethrown. */
export async function openBackends(database: string): Promise<Backends> {
  const releasers = new Releasers();
  return startOrRelease(releasers, async () => {
    const postgres = isPostgresUrl(database);
    const location = postgres ? database : resolve(database);
    if (!postgres) await mkdir(dirname(location), { recursive: true });
    const jobs = await releasers.open(
      'job store',
      () => (postgres ? openPostgresStore(location) : openSqliteStore(location)),
      (store) => store.close(),
    );
    const credentials = await releasers.open(
      'credential store',
      () => (postgres ? openPostgresCredentialStore(location) : openSqliteCredentialStore(location)),
      (store) => store.close(),
    );
    // Both are closed even when one fails: a half-closed pool keeps the process alive.
    return { jobs, credentials, close: () => releasers.releaseAll() };
  });
}
