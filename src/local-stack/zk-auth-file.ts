/**
 * The local stack's ZooKeeper identity: `zk.auth` in the state directory, one `engine:<random>` line,
 * mode 0600, made on the first run and kept. The stack's daemons (and jobctl run from the directory
 * above it) use it, so every znode they create is closed to clients without it, as in production.
 * An existing file is never replaced: ZooKeeper's data keeps nodes whose ACL names its identity, and
 * a new one would lock the stack out of them.
 */
import { randomBytes } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { readZkAuth } from '../cli/zk-auth.js';
import type { DigestAuth } from '../zk/types.js';

export interface ZkAuthFileResult {
  readonly auth: DigestAuth;
  readonly outcome: 'created' | 'reused';
}

export async function ensureZkAuthFile(file: string): Promise<ZkAuthFileResult> {
  const credentials = `engine:${randomBytes(24).toString('base64url')}`;
  try {
    // Exclusive create, private from the start: never a moment when others could read it.
    await writeFile(file, `${credentials}\n`, { mode: 0o600, flag: 'wx' });
    return { auth: { scheme: 'digest', credentials }, outcome: 'created' };
  } catch (error) {
    if (!(error instanceof Error && 'code' in error && error.code === 'EEXIST')) throw error;
  }
  const auth = await readZkAuth({ 'zk-auth-file': file }).catch((error: unknown) => {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(
      `${reason}. The local stack's ZooKeeper nodes name the identity in ${file}: repair the file, or delete it together with the zookeeper folder next to it to start afresh`,
      { cause: error },
    );
  });
  if (auth === undefined) throw new Error(`${file} holds no ZooKeeper identity`);
  return { auth, outcome: 'reused' };
}
