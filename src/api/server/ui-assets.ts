/**
 * The dashboard's built files (`npm run build` writes them to dist/ui), read once when the server
 * starts and kept in memory with their gzip form: a handful of files, tens of kB, so serving them
 * needs neither a static-file plugin nor a disk read per request.
 */
import { createHash } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { existsSync } from 'node:fs';

export interface UiAsset {
  readonly body: Buffer;
  readonly gzipped: Buffer;
  readonly contentType: string;
  readonly etag: string;
}

export type UiAssets =
  | { readonly built: true; readonly dir: string; readonly files: ReadonlyMap<string, UiAsset> }
  | { readonly built: false; readonly dir: string };

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};

/**
 * dist/ui of this package, found by walking up from this module to the package.json: the same from
 * a checkout run with tsx (src/api/server/) and from the built package (dist/src/api/server/).
 */
export function defaultUiDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return join(dir, 'dist', 'ui');
    const parent = dirname(dir);
    if (parent === dir) return join(dirname(fileURLToPath(import.meta.url)), 'ui');
    dir = parent;
  }
}

/** The files of `dir`; `built: false` when it has no index.html (the dashboard was not built). */
export async function loadUiAssets(dir: string = defaultUiDir()): Promise<UiAssets> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    // Missing: served as a page saying how to build it, not as a failed start.
    return { built: false, dir };
  }
  const files = new Map<string, UiAsset>();
  for (const name of names) {
    const contentType = CONTENT_TYPES[extname(name)];
    if (contentType === undefined) continue;
    const body = await readFile(join(dir, name));
    files.set(name, {
      body,
      gzipped: gzipSync(body, { level: 9 }),
      contentType,
      etag: `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`,
    });
  }
  return files.has('index.html') ? { built: true, dir, files } : { built: false, dir };
}
