/**
 * Builds the dashboard (ui/) into dist/ui, which `job-api serve` serves under /ui/: one minified
 * ES module (Preact, uPlot and the pages), one stylesheet, and index.html naming both with a content
 * hash, so a browser revalidating them sees a new build at once. Run by `npm run build`; the
 * dashboard tests call buildUi() themselves, so a clean clone's `npm test` needs no build step first.
 */
import { createHash } from 'node:crypto';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { build } from 'esbuild';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
export const UI_OUT_DIR = join(ROOT, 'dist', 'ui');

export interface UiBuild {
  readonly dir: string;
  /** Bytes of each file written, before compression. */
  readonly sizes: Readonly<Record<string, number>>;
}

export async function buildUi(outDir: string = UI_OUT_DIR): Promise<UiBuild> {
  const result = await build({
    entryPoints: [join(ROOT, 'ui', 'src', 'main.tsx')],
    bundle: true,
    minify: true,
    format: 'esm',
    target: ['es2022', 'chrome109', 'firefox115', 'safari16'],
    jsx: 'automatic',
    jsxImportSource: 'preact',
    tsconfig: join(ROOT, 'ui', 'tsconfig.json'),
    outdir: outDir,
    entryNames: 'app',
    write: false,
    logLevel: 'silent',
    legalComments: 'none',
  });
  const js = result.outputFiles.find((file) => file.path.endsWith('.js'));
  const css = result.outputFiles.find((file) => file.path.endsWith('.css'));
  if (js === undefined || css === undefined) throw new Error('esbuild wrote no app.js or app.css');
  const hash = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex').slice(0, 12);
  const html = (await readFile(join(ROOT, 'ui', 'index.html'), 'utf8'))
    .replace('%JS_HASH%', hash(js.contents))
    .replace('%CSS_HASH%', hash(css.contents));
  // Written afresh: a file of an earlier build left behind would be served too.
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  await Promise.all([
    writeFile(join(outDir, 'app.js'), js.contents),
    writeFile(join(outDir, 'app.css'), css.contents),
    writeFile(join(outDir, 'index.html'), html),
  ]);
  return { dir: outDir, sizes: { 'app.js': js.contents.length, 'app.css': css.contents.length, 'index.html': Buffer.byteLength(html) } };
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const built = await buildUi();
  const sizes = Object.entries(built.sizes).map(([name, bytes]) => `${name} ${(bytes / 1024).toFixed(1)} kB`);
  process.stdout.write(`dashboard built in ${built.dir}: ${sizes.join(', ')}\n`);
}
