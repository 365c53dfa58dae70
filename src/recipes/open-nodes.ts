/**
 * Nodes open to anyone although the engine runs with an identity. ACLs are per node and a node keeps
 * the ACL it was created with, so the parents a deployment made before turning --zk-auth-file on
 * (or that someone created first, to squat them) stay `world:anyone`: anyone may then create under
 * them, e.g. a contender that wins an election, or list and read them. The engine does not change
 * an ACL it finds (a shared tree may be meant that way); it names such nodes so an operator can.
 */
import { isZkError } from '../zk/errors.js';
import type { ZkClient } from '../zk/client.js';
import type { Logger } from '../util/logger.js';
import { queuePaths } from './queue-layout.js';

/** Those of `paths` whose ACL grants anything to `world`; missing nodes are skipped. */
export async function findOpenNodes(client: ZkClient, paths: readonly string[]): Promise<string[]> {
  const open: string[] = [];
  for (const path of paths) {
    try {
      const acl = await client.getAcl(path);
      if (acl.some((entry) => entry.scheme === 'world' && entry.perms !== 0)) open.push(path);
    } catch (error) {
      // NO_NODE: not made yet (it will be, with the ACL). NO_AUTH: closed, if to another identity.
      if (!isZkError(error, 'NO_NODE', 'NO_AUTH')) throw error;
    }
  }
  return open;
}

/** The warning's advice: how to close the nodes, as the engine's identity, with ZooKeeper's CLI. */
export function closeNodesAdvice(paths: readonly string[]): string {
  return `close them with zkCli.sh: addauth digest <user:password of --zk-auth-file>, then setAcl -R <path> auth::cdrwa for ${paths.join(', ')}`;
}

/** The queue's nodes whose ACL matters: its root, and the parents others create under. */
export function queueNodes(root: string): string[] {
  const paths = queuePaths(root);
  return [paths.root, paths.entries, paths.taken, paths.consumers, paths.rejected, `${paths.root}/executors`];
}

/**
 * Logs one warning naming the nodes of `paths` open to anyone; an audit that fails is logged and
 * ignored (it must not stop a daemon that works).
 */
export async function warnOpenNodes(client: ZkClient, paths: readonly string[], logger: Logger): Promise<void> {
  try {
    const open = await findOpenNodes(client, paths);
    if (open.length > 0)
      logger.warn(`ZooKeeper nodes open to anyone despite --zk-auth-file: ${open.join(', ')}; ${closeNodesAdvice(open)}`, { open });
  } catch (error) {
    logger.warn('could not check the ACLs of the engine ZooKeeper nodes', { error });
  }
}
