/** Finds Debian's PostgreSQL server binaries, installing the package first when running as root. */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';

import { ensureDebianPackage, pathExists } from './debian-package.js';

export const POSTGRES_PACKAGE = 'postgresql';
/** Debian installs each major version side by side: /usr/lib/postgresql/<major>/bin. */
export const POSTGRES_LIB_DIR = '/usr/lib/postgresql';

// Shared so that parallel starts look (and install) once; cleared on failure to allow a retry.
let check: Promise<string> | undefined;

/** The bin directory of the highest PostgreSQL major version installed (installing it if need be). */
export function ensurePostgresInstalled(): Promise<string> {
  check ??= locate().catch((error: unknown) => {
    check = undefined;
    throw error;
  });
  return check;
}

async function locate(): Promise<string> {
  await ensureDebianPackage({
    packageName: POSTGRES_PACKAGE,
    product: 'PostgreSQL',
    missing: async () => ((await findPostgresBinDir()) === undefined ? `no ${POSTGRES_LIB_DIR}/<major>/bin/postgres` : undefined),
  });
  const binDir = await findPostgresBinDir();
  if (binDir === undefined) throw new Error(`PostgreSQL vanished from ${POSTGRES_LIB_DIR} right after it was found`);
  return binDir;
}

export async function findPostgresBinDir(): Promise<string | undefined> {
  let entries: string[];
  try {
    entries = await readdir(POSTGRES_LIB_DIR);
  } catch {
    return undefined;
  }
  const majors = entries.filter((name) => /^\d+$/.test(name)).sort((a, b) => Number(b) - Number(a));
  for (const major of majors) {
    const binDir = join(POSTGRES_LIB_DIR, major, 'bin');
    // Only the client package (postgresql-client-N) may be there: it has no server binaries.
    if ((await pathExists(join(binDir, 'postgres'))) && (await pathExists(join(binDir, 'initdb')))) return binDir;
  }
  return undefined;
}
