/**
 * Debian packages the harness needs (zookeeper, postgresql): as root, installed on first use;
 * otherwise the error names the package and the command to run.
 */
import { execFile } from 'node:child_process';
import { access } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

const APT_ENV = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
const APT_MAX_BUFFER = 64 * 1024 * 1024;

export interface DebianPackageCheck {
  /** The Debian package, e.g. "postgresql". */
  readonly packageName: string;
  /** What the package provides, for messages, e.g. "PostgreSQL". */
  readonly product: string;
  /** Why the package counts as missing (e.g. "/usr/share/java/zookeeper.jar is missing"), or undefined when present. */
  readonly missing: () => Promise<string | undefined>;
}

// dpkg takes a lock: two apt-get runs at once (say zookeeper and postgresql for parallel test files
// in one process) would make the second fail, so installs queue up behind each other.
let aptQueue: Promise<unknown> = Promise.resolve();

export function installHint(packageName: string): string {
  return `sudo apt-get install -y ${packageName}`;
}

/** Resolves once the package's files are present, installing it first when running as root. */
export async function ensureDebianPackage(check: DebianPackageCheck): Promise<void> {
  const reason = await check.missing();
  if (reason === undefined) return;
  if (process.getuid?.() !== 0) {
    throw new Error(
      `${check.product} is not installed (${reason}). ` +
        `Install the Debian package "${check.packageName}": ${installHint(check.packageName)}`,
    );
  }
  const install = aptQueue.then(() => aptInstall(check));
  aptQueue = install.catch(() => undefined);
  await install;
  const stillMissing = await check.missing();
  if (stillMissing !== undefined) {
    throw new Error(`apt-get installed "${check.packageName}" but ${stillMissing}`);
  }
}

async function aptInstall(check: DebianPackageCheck): Promise<void> {
  // Queued behind another install, this one may have nothing left to do.
  if ((await check.missing()) === undefined) return;
  const install = ['install', '-y', check.packageName];
  try {
    await run('apt-get', install, { env: APT_ENV, maxBuffer: APT_MAX_BUFFER });
    return;
  } catch {
    // Usually stale package lists on a fresh machine: refresh them and try once more.
  }
  try {
    await run('apt-get', ['update'], { env: APT_ENV, maxBuffer: APT_MAX_BUFFER });
    await run('apt-get', install, { env: APT_ENV, maxBuffer: APT_MAX_BUFFER });
  } catch (error) {
    throw new Error(
      `Could not install ${check.product} with "apt-get install -y ${check.packageName}" ` +
        `(also after "apt-get update"): ${commandFailure(error)}`,
      { cause: error },
    );
  }
}

export async function pathExists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

/** execFile's message holds the command line and its stderr; apt's can be long, and its end explains it. */
export function commandFailure(error: unknown): string {
  const message = (error instanceof Error ? error.message : String(error)).trim();
  return message.length > 1500 ? `...${message.slice(-1500)}` : message;
}
