/**
 * Loads drop-in modules (actions for the executor, distributions for the distributor) from the bundled
 * folder and every extra directory (docs/contracts.md §6, docs/style.md habit 9). One bad module must not take the
 * others down with it, so each file is imported on its own and every failure is reported with the file's
 * path; only the caller's choice of directories (one that does not exist) is fatal, because that is a
 * configuration mistake rather than a broken module.
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from './logger.js';
import { toError } from './errors.js';
import { describeSyntaxLocation, locateSyntaxError } from './syntax-location.js';

/** What sets one kind of drop-in module apart: its name, its named export, and how a definition is checked. */
export interface DropInKind<T> {
  /** `action`, `distribution`: used in messages and log lines. */
  readonly noun: string;
  /** The named export a module may use instead of its default export. */
  readonly exportName: string;
  /** Shown when a module exports nothing usable. */
  readonly example: string;
  /** The problems that make `candidate` unusable, none if it is a definition. */
  readonly problemsOf: (candidate: unknown) => readonly string[];
  readonly nameOf: (definition: T) => string;
  /** Extra fields for the "loaded" log line. */
  readonly describe?: (definition: T) => Record<string, unknown>;
}

export interface LoadedDropIn<T> {
  readonly definition: T;
  /** Absolute path of the module that defined it. */
  readonly file: string;
}

export interface DropInLoadFailure {
  readonly file: string;
  readonly error: string;
}

export interface LoadedDropIns<T> {
  /** Keyed by name, in name order. */
  readonly definitions: ReadonlyMap<string, LoadedDropIn<T>>;
  /** In file-path order. */
  readonly failures: readonly DropInLoadFailure[];
}

export interface LoadDropInsOptions {
  /** A module whose top-level code never settles would otherwise stall the daemon's start forever. */
  readonly importTimeoutMs?: number;
}

export const DEFAULT_IMPORT_TIMEOUT_MS = 30_000;

export class DropInDirectoryError extends Error {
  override readonly name = 'DropInDirectoryError';
  readonly code = 'drop-in-directory';
}

// `.ts` is accepted so modules run under a TypeScript loader (tsx); without one, the import fails and the
// failure names the file. Declarations, tests, and `_`/`.`-prefixed helpers live alongside the modules.
const MODULE_FILE = /^[^._].*\.(?:m?js|ts)$/;
const NOT_A_MODULE = /(?:\.d\.ts|\.test\.[^.]+)$/;

export function isDropInModuleName(fileName: string): boolean {
  return MODULE_FILE.test(fileName) && !NOT_A_MODULE.test(fileName);
}

async function directoryOf(dir: string, noun: string): Promise<string> {
  try {
    const resolved = await realpath(path.resolve(dir));
    if (!(await stat(resolved)).isDirectory()) throw new Error('not a directory');
    return resolved;
  } catch (error) {
    throw new DropInDirectoryError(`${noun}s directory ${dir} is not usable: ${toError(error).message}`, { cause: error });
  }
}

async function moduleFilesIn(dir: string, noun: string, logger: Logger): Promise<string[]> {
  const files: string[] = [];
  const names = (await readdir(dir)).sort();
  for (const name of names) {
    const file = path.join(dir, name);
    if (!isDropInModuleName(name)) {
      logger.debug(`not ${articled(noun)} module, skipped`, { file });
      continue;
    }
    // stat, not the dirent, so a symlinked module counts and a directory named `x.js` does not.
    const isFile = await stat(file).then(
      (s) => s.isFile(),
      () => false,
    );
    if (isFile) files.push(file);
    else logger.debug('not a regular file, skipped', { file });
  }
  return files;
}

async function importWithin(file: string, timeoutMs: number): Promise<unknown> {
  // Not unref'd: a hung import holds no handle of its own, and the process must not exit with the start pending.
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`import did not finish within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  try {
    return (await Promise.race([import(pathToFileURL(file).href), timeout])) as unknown;
  } finally {
    clearTimeout(timer);
  }
}

/** The module's definition: its default export, or the kind's named export for modules that prefer names. */
function definitionExportOf<T>(namespace: unknown, kind: DropInKind<T>): T {
  const exports = (typeof namespace === 'object' && namespace !== null ? namespace : {}) as Record<string, unknown>;
  const byDefault = exports.default;
  const byName = exports[kind.exportName];
  if (byDefault !== undefined && byName !== undefined && byDefault !== byName) {
    throw new Error(`exports both a default and a named \`${kind.exportName}\`; export one ${kind.noun} per module`);
  }
  const candidate = byDefault ?? byName;
  if (candidate === undefined) {
    throw new Error(`has no default export (or export named \`${kind.exportName}\`); ${kind.example}`);
  }
  const problems = kind.problemsOf(candidate);
  if (problems.length > 0) throw new Error(`exported ${kind.noun} is invalid: ${problems.join('; ')}`);
  return candidate as T;
}

/** One module's definition (also how an executor's worker thread loads the action it is asked to run). */
export async function loadDropInModule<T>(file: string, kind: DropInKind<T>, timeoutMs: number = DEFAULT_IMPORT_TIMEOUT_MS): Promise<T> {
  let namespace: unknown;
  try {
    namespace = await importWithin(file, timeoutMs);
  } catch (error) {
    const failure = toError(error);
    // V8 names no line for a module's syntax error; a TypeScript loader's own message already does.
    const where = failure.name === 'SyntaxError' && /\.m?js$/.test(file) ? await locateSyntaxError(file) : undefined;
    const place = where === undefined ? '' : ` ${describeSyntaxLocation(where)}`;
    throw new Error(`import failed: ${failure.message}${place}`, { cause: error });
  }
  return definitionExportOf(namespace, kind);
}

/** The module files of `dirs`, in path order; a directory that is not usable is fatal (DropInDirectoryError). */
export async function listDropInFiles(dirs: readonly string[], noun: string, logger: Logger): Promise<string[]> {
  // The same directory given twice (or through a symlink) would otherwise make every module its own duplicate.
  const directories = [...new Set(await Promise.all(dirs.map((dir) => directoryOf(dir, noun))))];
  const files: string[] = [];
  for (const dir of directories) files.push(...(await moduleFilesIn(dir, noun, logger)));
  return files.sort();
}

/**
 * The definitions by name once modules were imported, however that was done: two modules defining
 * one name are both refused. Logs each definition loaded and each failure.
 */
export function collectDropIns<T>(
  loaded: readonly LoadedDropIn<T>[],
  importFailures: readonly DropInLoadFailure[],
  kind: Pick<DropInKind<T>, 'noun' | 'nameOf' | 'describe'>,
  logger: Logger,
): LoadedDropIns<T> {
  const failures = [...importFailures];
  const byName = new Map<string, LoadedDropIn<T>[]>();
  for (const one of loaded) {
    const name = kind.nameOf(one.definition);
    const same = byName.get(name) ?? [];
    same.push(one);
    byName.set(name, same);
  }

  const definitions = new Map<string, LoadedDropIn<T>>();
  for (const name of [...byName.keys()].sort()) {
    const found = byName.get(name) ?? [];
    const [only] = found;
    if (found.length === 1 && only !== undefined) {
      definitions.set(name, only);
      continue;
    }
    // Picking the first or last would make the running code depend on directory order; refuse both.
    const where = found.map((l) => l.file).join(' and ');
    for (const { file } of found) {
      failures.push({
        file,
        error: `${kind.noun} ${JSON.stringify(name)} is defined by more than one module (${where}); none of them was loaded`,
      });
    }
  }
  failures.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));

  for (const [name, { definition, file }] of definitions) {
    logger.info(`${kind.noun} loaded`, { [kind.noun]: name, ...kind.describe?.(definition), file });
  }
  for (const failure of failures) logger.error(`${kind.noun} module not loaded`, { ...failure });
  return { definitions, failures };
}

/** Imports every module of `dirs` in this thread: for modules trusted not to end the process (see action-discovery.ts). */
export async function loadDropIns<T>(
  dirs: readonly string[],
  kind: DropInKind<T>,
  logger: Logger,
  options: LoadDropInsOptions = {},
): Promise<LoadedDropIns<T>> {
  const timeoutMs = options.importTimeoutMs ?? DEFAULT_IMPORT_TIMEOUT_MS;
  const files = await listDropInFiles(dirs, kind.noun, logger);
  const failures: DropInLoadFailure[] = [];
  const loaded: LoadedDropIn<T>[] = [];
  // One at a time: modules' top-level side effects then happen in a fixed order, and errors are not interleaved.
  for (const file of files) {
    try {
      loaded.push({ definition: await loadDropInModule(file, kind, timeoutMs), file });
    } catch (error) {
      failures.push({ file, error: toError(error).message });
    }
  }
  return collectDropIns(loaded, failures, kind, logger);
}

function articled(noun: string): string {
  return /^[aeiou]/.test(noun) ? `an ${noun}` : `a ${noun}`;
}
