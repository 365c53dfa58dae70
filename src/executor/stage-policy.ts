/**
 * `job-executor --command-stage-dir DIR --command-fetch-from ORIGIN`: what a job's stage-in may read and
 * its stage-out may write on the executor's host, and which servers it may make the executor fetch from.
 * A job is written by whoever holds a job-creating key, so without these lists a `command` job could copy
 * the executor's own files (its key file, /etc/shadow when run as root) into its outputs, write over them,
 * or reach services only the executor's network sees. Nothing is allowed unless the operator listed it.
 *
 * Paths are compared by real path (symlinks resolved) at each check, like program-allowlist.ts: a link
 * inside an allowed directory that points out of it is refused.
 */
import { realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import type { StagePolicy } from '../sdk/action.js';
import { toError } from '../util/errors.js';

export interface StageSettings {
  readonly workRoot: string;
  readonly dirs: readonly string[];
  readonly fetchFrom: readonly string[];
  readonly maxInputBytes: number;
  readonly fetchTimeoutMs: number;
}

/** Whether `candidate` is `dir` or lies below it (both real, absolute paths). */
export function isInside(candidate: string, dir: string): boolean {
  const relative = path.relative(dir, candidate);
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative));
}

async function realOrReason(file: string): Promise<{ real: string } | { reason: string }> {
  try {
    return { real: await realpath(file) };
  } catch (error) {
    return { reason: (toError(error) as NodeJS.ErrnoException).code ?? toError(error).message };
  }
}

/** The origin as URL prints it (`https://host[:port]`), so `http://H:80` and `http://H` compare equal. */
export function originOf(text: string): string {
  return new URL(text).origin;
}

export function stagePolicy(settings: StageSettings): StagePolicy {
  const origins = new Set(settings.fetchFrom.map(originOf));
  const listedDirs = (): Promise<(string | undefined)[]> => Promise.all(settings.dirs.map((dir) => realpath(dir).catch(() => undefined)));

  async function inside(file: string, what: string): Promise<string> {
    const named = JSON.stringify(file);
    if (!path.isAbsolute(file)) throw new Error(`${what} ${named} is not an absolute path`);
    if (settings.dirs.length === 0) {
      throw new Error(`${what} ${named} is not allowed: this executor has no --command-stage-dir, so jobs may not stage files of its host`);
    }
    const found = await realOrReason(file);
    if ('reason' in found) throw new Error(`${what} ${named} cannot be resolved (${found.reason})`);
    const dirs = await listedDirs();
    if (!dirs.some((dir) => dir !== undefined && isInside(found.real, dir))) {
      throw new Error(`${what} ${named} is not allowed: it is not inside a --command-stage-dir of this executor`);
    }
    return found.real;
  }

  return Object.freeze({
    workRoot: settings.workRoot,
    maxInputBytes: settings.maxInputBytes,
    fetchTimeoutMs: settings.fetchTimeoutMs,
    async readableFile(file: string): Promise<string> {
      const real = await inside(file, 'input file');
      if (!(await stat(real)).isFile()) throw new Error(`input file ${JSON.stringify(file)} is not a regular file`);
      return real;
    },
    async writableDirectory(directory: string): Promise<string> {
      const real = await inside(directory, 'output directory');
      if (!(await stat(real)).isDirectory()) throw new Error(`output directory ${JSON.stringify(directory)} is not a directory`);
      return real;
    },
    checkFetch(url: URL): void {
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error(`input URL ${url.href} is not http(s)`);
      if (!origins.has(url.origin)) {
        const none = origins.size === 0 ? ': this executor has none, so jobs may not fetch inputs' : '';
        throw new Error(
          `input URL ${url.href} is not allowed: its origin ${url.origin} is not a --command-fetch-from of this executor${none}`,
        );
      }
    },
  });
}
