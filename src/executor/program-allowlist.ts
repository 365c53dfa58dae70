/**
 * `job-executor --command-allow PATH`: the only programs actions may start on this executor (the
 * bundled `command` asks before it spawns). A program is compared by its real path, with every
 * symlink resolved on both sides, so neither a link to an allowed program nor a link named like one
 * gets around the list; and it must be named by absolute path, since a PATH lookup would decide by
 * the environment which file runs. Paths are resolved at each check, not at start: a listed link
 * that an upgrade points elsewhere (`/usr/bin/python3`) follows the upgrade.
 */
import { realpath } from 'node:fs/promises';
import path from 'node:path';
import type { ProgramPolicy } from '../sdk/action.js';
import { toError } from '../util/errors.js';

/** No list: any program, as the job names it (a name without a slash is looked up in PATH). */
export const ANY_PROGRAM: ProgramPolicy = Object.freeze({ allowed: (program: string) => Promise.resolve(program) });

export function programAllowlist(listed: readonly string[]): ProgramPolicy {
  if (listed.length === 0) return ANY_PROGRAM;
  return Object.freeze({
    async allowed(program: string): Promise<string> {
      const named = JSON.stringify(program);
      if (!path.isAbsolute(program)) {
        throw new Error(
          `program ${named} is not an absolute path: this executor runs only the programs of its --command-allow list, named by absolute path (no PATH lookup)`,
        );
      }
      let real: string;
      try {
        real = await realpath(program);
      } catch (error) {
        const reason = (toError(error) as NodeJS.ErrnoException).code ?? toError(error).message;
        throw new Error(
          `program ${named} is not allowed on this executor: it cannot be resolved (${reason}) against its --command-allow list`,
          { cause: error },
        );
      }
      const allowed = await Promise.all(listed.map((entry) => realpath(entry).catch(() => undefined)));
      if (!allowed.includes(real))
        throw new Error(`program ${named} is not allowed on this executor: it is not on its --command-allow list`);
      return real;
    },
  });
}
