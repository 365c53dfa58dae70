/**
 * The engine's version, for every command's `--version`: read from the package's own package.json,
 * found by walking up from this module, so it is right from a checkout (src/cli/) and when installed
 * (dist/src/cli/) alike. yargs' own lookup starts from the entry point and was turned off where it
 * could pick another package's manifest.
 */
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { isRecord } from '../util/is-record.js';

const PACKAGE_NAME = 'zk-job-engine';

export function packageVersion(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    const version = versionIn(join(dir, 'package.json'));
    if (version !== undefined) return version;
    const parent = dirname(dir);
    if (parent === dir) return 'unknown';
    dir = parent;
  }
}

function versionIn(file: string): string | undefined {
  let manifest: unknown;
  try {
    manifest = JSON.parse(readFileSync(file, 'utf8'));
  } catch {
    // Missing or not JSON: not ours, look further up.
    return undefined;
  }
  return isRecord(manifest) && manifest.name === PACKAGE_NAME && typeof manifest.version === 'string' ? manifest.version : undefined;
}
