/**
 * The key that signs session cookies, kept in a file of its own and never in the database: whoever
 * holds a copy of the database (a backup, a read-only replica, a leaked dump) must not be able to
 * mint a cookie. The file is created on first start (32 random bytes, base64url, mode 0600) unless it
 * exists; API replicas sharing a PostgreSQL database must be given the same file to accept each
 * other's cookies.
 */
import { randomBytes } from 'node:crypto';
import { link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { toError } from '../../util/errors.js';

export const SESSION_SECRET_BYTES = 32;

/** A key for this process alone: its sessions are accepted by no other process. */
export function ephemeralSessionSecret(): Buffer {
  return randomBytes(SESSION_SECRET_BYTES);
}

/**
 * The secret in `path`, created there first if absent. A file others may read is refused, as ssh
 * refuses such a private key: its secret may already be out.
 */
export async function loadSessionSecret(path: string): Promise<Buffer> {
  await createIfAbsent(path);
  const info = await stat(path);
  if ((info.mode & 0o077) !== 0) {
    throw new Error(
      `session secret file ${path} may be read by others (mode ${(info.mode & 0o777).toString(8)}): ` +
        `run chmod 600 ${path}, and replace the secret if others may have read it`,
    );
  }
  const text = (await readFile(path, 'utf8')).trim();
  const secret = Buffer.from(text, 'base64url');
  if (!/^[A-Za-z0-9_-]+$/.test(text) || secret.length < SESSION_SECRET_BYTES) {
    throw new Error(
      `session secret file ${path} must hold at least ${SESSION_SECRET_BYTES} bytes as base64url ` +
        `(e.g. from: openssl rand -base64 32 | tr '+/' '-_' | tr -d '='), got ${secret.length} bytes`,
    );
  }
  return secret;
}

async function createIfAbsent(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  // Written whole under a temporary name, then linked into place: link fails if the file exists, so
  // of two replicas starting at once one creates it and the other reads it, never half-written.
  const temporary = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(temporary, `${randomBytes(SESSION_SECRET_BYTES).toString('base64url')}\n`, { mode: 0o600, flag: 'wx' });
    await link(temporary, path);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new Error(`session secret file ${path} cannot be created: ${toError(error).message}`, { cause: error });
    }
  } finally {
    await unlink(temporary).catch(() => undefined);
  }
}
