/**
 * The local stack's API keys: an admin key for the user, and one operator-role key shared by the
 * executor (which runs `cleanup_jobs`, deleting final jobs) and the distributor (which creates jobs):
 * no narrower role does both. Made on the first run,
 * written to key files only this user can read, and reused while the database still knows them.
 */
import { randomUUID } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import type { ApiCredentials } from '../api/client/options.js';
import type { CredentialStore } from '../api/auth/credential-store.js';
import { openSqliteCredentialStore } from '../api/auth/credential-store-sqlite.js';
import type { Role } from '../api/auth/credentials.js';
import { parseCredentialsFile } from '../cli/option-readers.js';

export interface KeyFileSpec {
  readonly file: string;
  readonly role: Role;
  readonly description: string;
}

export type KeyOutcome = 'reused' | 'created' | 'replaced';

export interface KeyFileResult {
  readonly file: string;
  readonly credentials: ApiCredentials;
  /** `replaced`: the file held a key the database does not know (e.g. the database was deleted). */
  readonly outcome: KeyOutcome;
}

/** The format `job-api create-key` prints, which every daemon's `--api-key-file` reads. */
export function renderKeyFile(credentials: ApiCredentials): string {
  return `key: ${credentials.key}\nsecret: ${credentials.secret}\n`;
}

async function readKeyFile(file: string): Promise<{ readonly exists: boolean; readonly credentials: ApiCredentials | undefined }> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if (error instanceof Error && 'code' in error && error.code === 'ENOENT') return { exists: false, credentials: undefined };
    throw new Error(`the API key file ${file} cannot be read: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  try {
    return { exists: true, credentials: parseCredentialsFile(text, file) };
  } catch {
    // A damaged file is replaced with a new key, like one the database has forgotten.
    return { exists: true, credentials: undefined };
  }
}

/** Written aside then renamed, so a crash never leaves half a key; created 0600 because it holds a secret. */
async function writeKeyFile(file: string, credentials: ApiCredentials): Promise<void> {
  const temporary = `${file}.${randomUUID()}.tmp`;
  try {
    await writeFile(temporary, renderKeyFile(credentials), { mode: 0o600, flag: 'wx' });
    await rename(temporary, file);
  } catch (error) {
    await rm(temporary, { force: true });
    throw error;
  }
}

async function ensureKey(store: CredentialStore, spec: KeyFileSpec): Promise<KeyFileResult> {
  const existing = await readKeyFile(spec.file);
  if (existing.credentials !== undefined) {
    const verified = await store.verify(existing.credentials.key, existing.credentials.secret);
    if (verified?.role === spec.role) return { file: spec.file, credentials: existing.credentials, outcome: 'reused' };
  }
  const created = await store.create(spec.role, spec.description);
  const credentials = { key: created.key, secret: created.secret };
  await writeKeyFile(spec.file, credentials);
  return { file: spec.file, credentials, outcome: existing.exists ? 'replaced' : 'created' };
}

/** One result per spec, in order. The job API need not run: the keys are written to its database file. */
export async function ensureKeyFiles(database: string, specs: readonly KeyFileSpec[]): Promise<KeyFileResult[]> {
  const store = await openSqliteCredentialStore(database).catch((error: unknown) => {
    throw new Error(`the database ${database} cannot be opened: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  });
  try {
    const results: KeyFileResult[] = [];
    for (const spec of specs) results.push(await ensureKey(store, spec));
    return results;
  } finally {
    await store.close();
  }
}
