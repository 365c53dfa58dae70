/**
 * Loads drop-in action modules from `actions/` and every `--actions-dir` (design.md §7, style.md habit 9).
 * One bad module must not take the executor's other actions down with it, so each file is imported on its
 * own and every failure is reported with the file's path; only the caller's choice of directories (one
 * that does not exist) is fatal, because that is a configuration mistake rather than a broken module.
 */
import { readdir, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Logger } from '../util/logger.js';
import { toError } from '../util/errors.js';
import { actionDefinitionProblems, isActionDefinition, type ActionDefinition } from './action.js';

export interface LoadedAction {
  readonly definition: ActionDefinition;
  /** Absolute path of the module that defined it. */
  readonly file: string;
}

export interface ActionLoadFailure {
  readonly file: string;
  readonly error: string;
}

export interface LoadedActions {
  /** Keyed by action name, in name order. */
  readonly actions: ReadonlyMap<string, LoadedAction>;
  /** In file-path order. */
  readonly failures: readonly ActionLoadFailure[];
}

export interface LoadActionsOptions {
  /** A module whose top-level code never settles would otherwise stall the executor's start forever. */
  readonly importTimeoutMs?: number;
}

export const DEFAULT_IMPORT_TIMEOUT_MS = 30_000;

export class ActionDirectoryError extends Error {
  override readonly name = 'ActionDirectoryError';
  readonly code = 'action-directory';
}

// `.ts` is accepted so actions run under a TypeScript loader (tsx); without one, the import fails and the
// failure names the file. Declarations, tests, and `_`/`.`-prefixed helpers live alongside actions.
const MODULE_FILE = /^[^._].*\.(?:m?js|ts)$/;
const NOT_AN_ACTION = /(?:\.d\.ts|\.test\.[^.]+)$/;

export function isActionModuleName(fileName: string): boolean {
  return MODULE_FILE.test(fileName) && !NOT_AN_ACTION.test(fileName);
}

async function directoryOf(dir: string): Promise<string> {
  try {
    const resolved = await realpath(path.resolve(dir));
    if (!(await stat(resolved)).isDirectory()) throw new Error('not a directory');
    return resolved;
  } catch (error) {
    throw new ActionDirectoryError(`actions directory ${dir} is not usable: ${toError(error).message}`, { cause: error });
  }
}

async function moduleFilesIn(dir: string, logger: Logger): Promise<string[]> {
  const files: string[] = [];
  const names = (await readdir(dir)).sort();
  for (const name of names) {
    const file = path.join(dir, name);
    if (!isActionModuleName(name)) {
      logger.debug('not an action module, skipped', { file });
      continue;
    }
    // stat, not the dirent, so a symlinked action module counts and a directory named `x.js` does not.
    const isFile = await stat(file).then((s) => s.isFile(), () => false);
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

/** The module's action: its default export, or a named export `action` for modules that prefer names. */
function actionExportOf(namespace: unknown): ActionDefinition {
  const exports = (typeof namespace === 'object' && namespace !== null ? namespace : {}) as Record<string, unknown>;
  const { default: byDefault, action: byName } = exports;
  if (byDefault !== undefined && byName !== undefined && byDefault !== byName) {
    throw new Error('exports both a default and a named `action`; export one action per module');
  }
  const candidate = byDefault ?? byName;
  if (candidate === undefined) {
    throw new Error('has no default export (or export named `action`); export default defineAction({...})');
  }
  if (!isActionDefinition(candidate)) {
    throw new Error(`exported action is invalid: ${actionDefinitionProblems(candidate).join('; ')}`);
  }
  return candidate;
}

/** One action module's definition; also how a worker thread loads the action it is asked to run. */
export async function loadActionModule(file: string, timeoutMs: number = DEFAULT_IMPORT_TIMEOUT_MS): Promise<ActionDefinition> {
  let namespace: unknown;
  try {
    namespace = await importWithin(file, timeoutMs);
  } catch (error) {
    throw new Error(`import failed: ${toError(error).message}`, { cause: error });
  }
  return actionExportOf(namespace);
}

export async function loadActions(
  dirs: readonly string[],
  logger: Logger,
  options: LoadActionsOptions = {},
): Promise<LoadedActions> {
  const timeoutMs = options.importTimeoutMs ?? DEFAULT_IMPORT_TIMEOUT_MS;
  // The same directory given twice (or through a symlink) would otherwise make every action its own duplicate.
  const directories = [...new Set(await Promise.all(dirs.map(directoryOf)))];
  const files: string[] = [];
  for (const dir of directories) files.push(...(await moduleFilesIn(dir, logger)));
  files.sort();

  const failures: ActionLoadFailure[] = [];
  const byName = new Map<string, LoadedAction[]>();
  // One at a time: modules' top-level side effects then happen in a fixed order, and errors are not interleaved.
  for (const file of files) {
    try {
      const definition = await loadActionModule(file, timeoutMs);
      const same = byName.get(definition.name) ?? [];
      same.push({ definition, file });
      byName.set(definition.name, same);
    } catch (error) {
      failures.push({ file, error: toError(error).message });
    }
  }

  const actions = new Map<string, LoadedAction>();
  for (const name of [...byName.keys()].sort()) {
    const loaded = byName.get(name) ?? [];
    const [only] = loaded;
    if (loaded.length === 1 && only !== undefined) {
      actions.set(name, only);
      continue;
    }
    // Picking the first or last would make the running code depend on directory order; refuse both.
    const where = loaded.map((l) => l.file).join(' and ');
    for (const { file } of loaded) {
      failures.push({ file, error: `action ${JSON.stringify(name)} is defined by more than one module (${where}); none of them was loaded` });
    }
  }
  failures.sort((a, b) => (a.file < b.file ? -1 : a.file > b.file ? 1 : 0));

  for (const { definition, file } of actions.values()) {
    logger.info('action loaded', { action: definition.name, timeoutSeconds: definition.timeoutSeconds, file });
  }
  for (const failure of failures) logger.error('action module not loaded', { ...failure });
  return { actions, failures };
}
