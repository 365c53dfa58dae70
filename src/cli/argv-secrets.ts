/**
 * Secrets given as flags: any user of the machine reads another process's command line (`ps`,
 * /proc/<pid>/cmdline), and shell history keeps it. The flags still work (scripts rely on them), but
 * the process says so, once per flag, pointing at the file and environment options instead.
 */

/** The secret flags `--api-key`/`--api-secret` that every daemon and jobctl take. */
export const API_SECRET_FLAGS = ['api-key', 'api-secret'] as const;

/**
 * Which of `flags` (without dashes) appear in `argv` (the arguments after the script), in any form
 * yargs reads: `--flag value`, `--flag=value`, and the camel-case `--flagName`. Stops at `--`.
 */
export function secretFlagsOnArgv(argv: readonly string[], flags: readonly string[]): string[] {
  const end = argv.indexOf('--');
  const given = end === -1 ? argv : argv.slice(0, end);
  return flags.filter((flag) => {
    const spellings = [`--${flag}`, `--${flag.replace(/-([a-z])/g, (_, letter: string) => letter.toUpperCase())}`];
    return given.some((arg) => spellings.some((spelling) => arg === spelling || arg.startsWith(`${spelling}=`)));
  });
}

/** The warning for one flag, naming the safer ways for this program (`envPrefix`: JOB_EXECUTOR, JOBCTL, ...). */
export function argvSecretWarning(flag: string, envPrefix: string): string {
  const variable = `${envPrefix}_${flag.replaceAll('-', '_').toUpperCase()}`;
  return (
    `--${flag} on the command line is visible to every user of this machine (ps); ` +
    `give the key with --api-key-file (mode 0600) or ${variable} instead`
  );
}

/** Whether a `--database` value is a URL that carries a password (`postgres://user:password@host/db`). */
export function urlHasPassword(value: unknown): boolean {
  if (typeof value !== 'string') return false;
  try {
    return new URL(value).password !== '';
  } catch {
    return false; // a SQLite file name
  }
}

/** The warning for a database URL with a password given as `--database`. */
export const DATABASE_URL_WARNING =
  '--database on the command line holds a password, visible to every user of this machine (ps); ' +
  'put the URL in a file of mode 0600 and give --database-file (or JOB_API_DATABASE_FILE) instead';
