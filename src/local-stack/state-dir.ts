/**
 * The local stack's state directory: where each file lives, making it ready (writable, one stack at
 * a time), and the run file that says which stack runs there and where to reach it.
 */
import { constants } from 'node:fs';
import { access, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { isRecord } from '../util/is-record.js';
import { toError } from '../util/errors.js';

export interface StatePaths {
  readonly dir: string;
  readonly database: string;
  readonly zookeeperData: string;
  readonly adminKey: string;
  readonly executorKey: string;
  /** The ZooKeeper digest identity (`user:password`, mode 0600) every daemon of the stack uses. */
  readonly zkAuth: string;
  readonly logs: string;
  /** Present while a stack runs: its PID and where everything is (for tools, and as the lock). */
  readonly runFile: string;
}

export function statePaths(dir: string): StatePaths {
  return Object.freeze({
    dir,
    database: path.join(dir, 'jobs.sqlite'),
    zookeeperData: path.join(dir, 'zookeeper'),
    adminKey: path.join(dir, 'admin.key'),
    executorKey: path.join(dir, 'executor.key'),
    zkAuth: path.join(dir, 'zk.auth'),
    logs: path.join(dir, 'logs'),
    runFile: path.join(dir, 'local-stack.json'),
  });
}

export function logFileOf(paths: StatePaths, daemon: string): string {
  return path.join(paths.logs, `${daemon}.log`);
}

export interface RunRecord {
  readonly pid: number;
  readonly started: string;
  readonly apiUrl: string;
  readonly zkHosts: string;
  readonly adminKeyFile: string;
  readonly zkAuthFile: string;
  readonly pids: Readonly<Record<string, number>>;
}

const ERRNO_HINTS: Readonly<Record<string, string>> = {
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'the file system is read-only',
  ENOTDIR: 'a part of the path is a file, not a directory',
  ENOSPC: 'the disk is full',
};

function describeFsError(error: unknown): string {
  const failure = toError(error);
  const code = 'code' in failure && typeof failure.code === 'string' ? failure.code : undefined;
  return (code === undefined ? undefined : ERRNO_HINTS[code]) ?? failure.message;
}

/** Creates the directory and its folders, and checks that files can be written there. */
export async function prepareStateDir(paths: StatePaths): Promise<void> {
  try {
    await mkdir(paths.logs, { recursive: true });
    await mkdir(paths.zookeeperData, { recursive: true });
    await access(paths.dir, constants.W_OK);
    // The directory holds API secrets: kept out of version control when it sits inside a checkout.
    await writeFile(path.join(paths.dir, '.gitignore'), '# Made by the local stack: its state, API secrets included.\n*\n', {
      flag: 'wx',
    }).catch((error: unknown) => {
      if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
    });
  } catch (error) {
    throw new Error(`the state directory ${paths.dir} cannot be written (${describeFsError(error)}); choose another with --dir`, {
      cause: error,
    });
  }
}

function parseRunRecord(text: string): RunRecord | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (!isRecord(parsed) || typeof parsed.pid !== 'number') return undefined;
  return parsed as unknown as RunRecord;
}

/** Whether `pid` is a live local stack, not a process that was given a dead stack's PID. */
async function isLocalStack(pid: number): Promise<boolean> {
  try {
    const commandLine = await readFile(`/proc/${pid}/cmdline`, 'utf8');
    return commandLine.includes('local-stack');
  } catch {
    return false;
  }
}

/**
 * Claims the directory for this process. Two stacks on one directory would share one SQLite file and
 * one ZooKeeper data directory; a run file left by a stack that died is taken over.
 */
export async function claimStateDir(paths: StatePaths): Promise<void> {
  const claim: RunRecord = {
    pid: process.pid,
    started: new Date().toISOString(),
    apiUrl: '',
    zkHosts: '',
    adminKeyFile: paths.adminKey,
    zkAuthFile: paths.zkAuth,
    pids: {},
  };
  for (let attempt = 0; ; attempt += 1) {
    try {
      // Exclusive create: of two stacks started at once on one directory, exactly one gets it.
      await writeFile(paths.runFile, `${JSON.stringify(claim, null, 2)}\n`, { flag: 'wx' });
      return;
    } catch (error) {
      if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST') || attempt > 0) throw error;
    }
    const previous = await readFile(paths.runFile, 'utf8').then(parseRunRecord, () => undefined);
    if (previous !== undefined && previous.pid !== process.pid && (await isLocalStack(previous.pid))) {
      throw new Error(`another local stack (pid ${previous.pid}) runs on ${paths.dir}; stop it first, or use another --dir`);
    }
    await rm(paths.runFile, { force: true });
  }
}

export async function writeRunRecord(paths: StatePaths, record: RunRecord): Promise<void> {
  await writeFile(paths.runFile, `${JSON.stringify(record, null, 2)}\n`);
}

export async function releaseStateDir(paths: StatePaths): Promise<void> {
  await rm(paths.runFile, { force: true });
}
