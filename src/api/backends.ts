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

export interface Backends {
  readonly jobs: JobStore;
  readonly credentials: CredentialStore;
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

export async function openBackends(database: string): Promise<Backends> {
  let jobs: JobStore;
  let credentials: CredentialStore;
  if (isPostgresUrl(database)) {
    jobs = await openPostgresStore(database);
    credentials = await openPostgresCredentialStore(database).catch(async (error: unknown) => {
      await jobs.close();
      throw error;
    });
  } else {
    const path = resolve(database);
    await mkdir(dirname(path), { recursive: true });
    jobs = await openSqliteStore(path);
    credentials = await openSqliteCredentialStore(path).catch(async (error: unknown) => {
      await jobs.close();
      throw error;
    });
  }
  return {
    jobs,
    credentials,
    // Both are closed even when the first fails: a half-closed pool keeps the process alive.
    close: async () => {
      const results = await Promise.allSettled([credentials.close(), jobs.close()]);
      const failed = results.find((result): result is PromiseRejectedResult => result.status === 'rejected');
      if (failed !== undefined) throw failed.reason;
    },
  };
}
