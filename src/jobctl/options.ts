/**
 * jobctl's options, compiled once (docs/style.md habit 1) from what yargs gathered out of flags, JOBCTL_*
 * variables and a --config file: checked with messages that name the flag, defaults filled in,
 * durations in milliseconds, frozen. Commands read this object, never process.env.
 */
import { access, readFile } from 'node:fs/promises';
import path from 'node:path';
import {
  DEFAULT_API_URL,
  DEFAULT_QUEUE_PATH,
  readApiOptions,
  readSeconds,
  readZkHosts,
  readZkPath,
  type ApiOptions,
  type OptionArgs,
} from '../cli/option-readers.js';
import { readZkAuth } from '../cli/zk-auth.js';
import type { DigestAuth } from '../zk/types.js';
import { usageError } from './errors.js';

export interface ZkOptions {
  /** Undefined when not given: only the commands that touch ZooKeeper need it (`requireZkHosts`). */
  readonly hosts: string | undefined;
  /** `--zk-auth-file`: the engine's ZooKeeper identity, needed wherever the engine runs with one. */
  readonly auth?: DigestAuth;
  readonly queuePath: string;
  readonly electionPath: string;
  readonly sessionTimeoutMs: number;
  readonly connectTimeoutMs: number;
}

export interface JobctlOptions {
  readonly api: ApiOptions;
  /** Where the credentials came from, for the error that says they were refused. */
  readonly credentialsFrom: 'options' | 'local-stack' | 'none';
  readonly zk: ZkOptions;
  readonly json: boolean;
}

export const JOBCTL_DEFAULTS = Object.freeze({
  apiUrl: DEFAULT_API_URL,
  apiTimeoutSeconds: 10,
  queuePath: DEFAULT_QUEUE_PATH,
  electionPath: '/election',
  connectTimeoutSeconds: 10,
  sessionTimeoutSeconds: 10,
  /** What `npm start` writes; used when no credentials are given and the file is there. */
  localStackKeyFile: path.join('.local-stack', 'admin.key'),
  /** What `npm start` writes: its run record (where its ZooKeeper is) and its ZooKeeper identity. */
  localStackRunFile: path.join('.local-stack', 'local-stack.json'),
  localStackZkAuthFile: path.join('.local-stack', 'zk.auth'),
});

export async function compileJobctlOptions(args: OptionArgs, cwd: string): Promise<JobctlOptions> {
  const given = ['api-key-file', 'api-key', 'api-secret'].some((key) => args[key] !== undefined);
  const localKey = path.resolve(cwd, JOBCTL_DEFAULTS.localStackKeyFile);
  const useLocalKey = !given && (await exists(localKey));
  const api = await readApiOptions(useLocalKey ? { ...args, 'api-key-file': localKey } : args, JOBCTL_DEFAULTS.apiTimeoutSeconds);
  const hosts = args['zk-hosts'] === undefined ? undefined : readZkHosts(args);
  const localAuth = hosts !== undefined && args['zk-auth-file'] === undefined ? await localStackZkAuth(cwd, hosts) : undefined;
  const auth = await readZkAuth(localAuth === undefined ? args : { ...args, 'zk-auth-file': localAuth });
  return Object.freeze({
    api,
    credentialsFrom: given ? 'options' : useLocalKey ? 'local-stack' : 'none',
    zk: Object.freeze({
      hosts,
      ...(auth === undefined ? {} : { auth }),
      queuePath: readZkPath(args, 'queue-path', JOBCTL_DEFAULTS.queuePath, true),
      electionPath: readZkPath(args, 'election-path', JOBCTL_DEFAULTS.electionPath),
      sessionTimeoutMs: JOBCTL_DEFAULTS.sessionTimeoutSeconds * 1000,
      connectTimeoutMs: readSeconds(args, 'connect-timeout', JOBCTL_DEFAULTS.connectTimeoutSeconds, 0.1, 3600),
    }),
    json: args.json === true,
  });
}

/** The connection string, or the usage error that says which command needs it and why. */
export function requireZkHosts(options: JobctlOptions, why: string): string {
  if (options.zk.hosts !== undefined) return options.zk.hosts;
  throw usageError(`--zk-hosts is required to ${why} (e.g. --zk-hosts 127.0.0.1:2181, or JOBCTL_ZK_HOSTS)`);
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** `job/<uuid>` or a bare `<uuid>` -> `job/<uuid>`; anything else is a usage error. */
export function parseJobId(text: unknown): string {
  const value = typeof text === 'string' ? text.trim() : '';
  const uuid = value.startsWith('job/') ? value.slice(4) : value;
  if (!UUID.test(uuid))
    throw usageError(`${JSON.stringify(typeof text === 'string' ? text : String(text))} is not a job id: expected job/<uuid> or <uuid>`);
  return `job/${uuid.toLowerCase()}`;
}

/**
 * `.local-stack/zk.auth` when `hosts` is the ZooKeeper of the local stack that runs from `cwd`, so
 * `jobctl queue --zk-hosts <what npm start printed>` works without naming it. Only then: another
 * ZooKeeper's engine has its own identity, and nodes created under this one would be closed to it.
 */
async function localStackZkAuth(cwd: string, hosts: string): Promise<string | undefined> {
  let record: unknown;
  try {
    record = JSON.parse(await readFile(path.resolve(cwd, JOBCTL_DEFAULTS.localStackRunFile), 'utf8'));
  } catch {
    return undefined; // no local stack here, or a run file being written: nothing to default to
  }
  if (typeof record !== 'object' || record === null || Reflect.get(record, 'zkHosts') !== hosts) return undefined;
  const file = path.resolve(cwd, JOBCTL_DEFAULTS.localStackZkAuthFile);
  return (await exists(file)) ? file : undefined;
}

async function exists(file: string): Promise<boolean> {
  try {
    await access(file);
    return true;
  } catch {
    return false;
  }
}
