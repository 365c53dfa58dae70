/**
 * Where a client of the job API (executor, distributor, CLI) finds its key and secret: the
 * environment or files, never the command line, where every user of the machine can read them in
 * the process list.
 */
import { readFile } from 'node:fs/promises';

export interface ApiKeyPair {
  readonly key: string;
  readonly secret: string;
}

/**
 * `<PREFIX>_KEY` and `<PREFIX>_SECRET`, or `<PREFIX>_KEY_FILE` and `<PREFIX>_SECRET_FILE` naming files
 * that hold them (a mounted Kubernetes or Docker secret). Undefined when no key is configured at all;
 * an error for a half or doubly configured one, which is a mistake the caller should hear about.
 */
export async function readApiKey(
  env: Readonly<Record<string, string | undefined>> = process.env,
  prefix = 'JOB_API',
): Promise<ApiKeyPair | undefined> {
  const key = await readSetting(env, `${prefix}_KEY`);
  const secret = await readSetting(env, `${prefix}_SECRET`);
  if (key === undefined && secret === undefined) return undefined;
  if (key === undefined) throw new Error(`${prefix}_SECRET is set but no ${prefix}_KEY (or ${prefix}_KEY_FILE)`);
  if (secret === undefined) throw new Error(`${prefix}_KEY is set but no ${prefix}_SECRET (or ${prefix}_SECRET_FILE)`);
  return { key, secret };
}

async function readSetting(env: Readonly<Record<string, string | undefined>>, name: string): Promise<string | undefined> {
  const direct = nonEmpty(env[name]);
  const file = nonEmpty(env[`${name}_FILE`]);
  if (direct !== undefined && file !== undefined) throw new Error(`set ${name} or ${name}_FILE, not both`);
  if (file === undefined) return direct;
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    throw new Error(`cannot read ${name}_FILE ${file}: ${error instanceof Error ? error.message : String(error)}`, { cause: error });
  }
  // Files written by editors and `echo` end with a newline that is not part of the value.
  const value = nonEmpty(text.trim());
  if (value === undefined) throw new Error(`${name}_FILE ${file} is empty`);
  return value;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value.trim();
}
