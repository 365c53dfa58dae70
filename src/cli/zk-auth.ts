/**
 * `--zk-auth-file`: the ZooKeeper digest identity (`user:password`) every process of one engine
 * shares. Given it, a process authenticates its sessions and every znode it creates carries a digest
 * ACL naming that identity alone (ZkClient's 'creator-all'), so whoever reaches ZooKeeper without it
 * can neither read, change, delete nor create under the engine's nodes. Read here once, for every
 * daemon, jobctl and anything else that opens a ZkClient from options (`zkConnection`).
 */
import { readFile, stat } from 'node:fs/promises';
import type { DigestAuth } from '../zk/types.js';
import { toError } from '../util/errors.js';
import { fail, readString, readZkHosts, type OptionArgs } from './option-readers.js';

/** What a ZkClient needs from the command line: spread into `ZkClient.connect({...})`. */
export interface ZkConnection {
  readonly connectionString: string;
  /** Undefined: no credentials, and the nodes stay open to anyone (ZooKeeper's and kazoo's default). */
  readonly auth?: DigestAuth;
}

// The digest scheme splits at the first colon; whitespace inside would be a copy-paste accident.
const CREDENTIALS = /^[^:\s]+:\S+$/;

/** The credentials of `--<key>` (default `zk-auth-file`), or undefined when it is not given. */
export async function readZkAuth(args: OptionArgs, key = 'zk-auth-file'): Promise<DigestAuth | undefined> {
  const file = readString(args, key);
  if (file === undefined) return undefined;
  const info = await stat(file).catch((error: unknown) => fail(`--${key} ${file} cannot be read: ${toError(error).message}`));
  if (!info.isFile()) fail(`--${key} ${file} is not a regular file`);
  // Like ssh with a private key: a secret others can read is refused rather than used.
  const mode = info.mode & 0o777;
  if ((mode & 0o077) !== 0)
    fail(`--${key} ${file} is open to other users (mode 0${mode.toString(8)}): it holds a secret; run chmod 600 ${file}`);
  const text = await readFile(file, 'utf8').catch((error: unknown) => fail(`--${key} ${file} cannot be read: ${toError(error).message}`));
  const credentials = text.trim();
  if (!CREDENTIALS.test(credentials)) fail(`--${key} ${file} must hold one line user:password (ZooKeeper's digest scheme)`);
  return Object.freeze({ scheme: 'digest', credentials });
}

/** `--zk-hosts` and `--zk-auth-file` together. */
export async function readZkConnection(args: OptionArgs): Promise<ZkConnection> {
  const connectionString = readZkHosts(args);
  const auth = await readZkAuth(args);
  return Object.freeze(auth === undefined ? { connectionString } : { connectionString, auth });
}
