/**
 * The first admin key: with no anonymous access, a fresh installation has no way in until someone
 * with access to the database creates one. `job-api create-admin-key` calls this.
 */
import type { CredentialStore, NewCredential } from './credential-store.js';

export class AdminKeyExistsError extends Error {
  override readonly name = 'AdminKeyExistsError';
}

export interface CreateAdminKeyOptions {
  /** Create another admin key although one exists (e.g. the only admin secret was lost). */
  readonly force?: boolean;
  readonly description?: string;
}

/**
 * Creates an admin key and prints its key and secret, the only time the secret is ever shown.
 * Refuses when an admin key exists, unless forced: a second admin key is rarely what was meant, and
 * the existing admin can create one through the API.
 */
export async function createAdminKey(
  store: CredentialStore,
  out: (line: string) => void,
  options: CreateAdminKeyOptions = {},
): Promise<Omit<NewCredential, 'secret'>> {
  const { force = false, description = 'admin key created from the command line' } = options;
  if (!force) {
    const admins = (await store.list()).filter((credential) => credential.role === 'admin');
    if (admins.length > 0) {
      throw new AdminKeyExistsError(
        `an admin key already exists (${admins.map((admin) => admin.key).join(', ')}); ` +
          'use it to create more keys, or pass --force to create another admin key anyway',
      );
    }
  }
  const { key, secret, role } = await store.create('admin', description);
  out('Created an admin API key:');
  out(`  key:    ${key}`);
  out(`  secret: ${secret}`);
  out('Save the secret now: only its hash is stored, and it cannot be shown again.');
  out(`Use it as "Authorization: Bearer ${key}:<secret>", or log in with POST /api/session.`);
  return { key, role };
}
