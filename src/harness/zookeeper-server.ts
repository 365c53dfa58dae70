/** A private standalone ZooKeeper server for tests, benchmarks and the local stack. */
import { resolve } from 'node:path';

import { freePort } from './free-port.js';
import { ensureZooKeeperInstalled } from './zookeeper-install.js';
import { createTempDir, ZooKeeperProcess, ZOOKEEPER_DEFAULTS, type ZooKeeperNode } from './zookeeper-process.js';

export type { ServerMode } from './four-letter-word.js';
export type { ZooKeeperNode } from './zookeeper-process.js';

export type ZooKeeperServer = ZooKeeperNode;

export interface StartZooKeeperOptions {
  /** Default 500 ms, so the minimum session timeout is 1 s. */
  readonly tickTimeMs?: number;
  /** Kept on `stop()`. Without it a temporary directory is used and removed on `stop()`. */
  readonly dataDir?: string;
  /** Default false (`forceSync=no`): ~3x faster writes, and durability across power loss is not tested. */
  readonly forceSync?: boolean;
  readonly port?: number;
  readonly minSessionTimeoutMs?: number;
  readonly maxSessionTimeoutMs?: number;
  /** Deadline for the server to become ready; default 30 s. */
  readonly startTimeoutMs?: number;
}

export async function startZooKeeper(options: StartZooKeeperOptions = {}): Promise<ZooKeeperServer> {
  await ensureZooKeeperInstalled();
  const port = options.port ?? (await freePort());
  const dir = options.dataDir === undefined ? await createTempDir() : resolve(options.dataDir);
  const server = new ZooKeeperProcess({
    dir,
    clientPort: port,
    tickTimeMs: options.tickTimeMs ?? ZOOKEEPER_DEFAULTS.tickTimeMs,
    initLimit: ZOOKEEPER_DEFAULTS.initLimit,
    syncLimit: ZOOKEEPER_DEFAULTS.syncLimit,
    forceSync: options.forceSync ?? false,
    minSessionTimeoutMs: options.minSessionTimeoutMs,
    maxSessionTimeoutMs: options.maxSessionTimeoutMs,
    readyModes: ['standalone'],
    startTimeoutMs: options.startTimeoutMs ?? ZOOKEEPER_DEFAULTS.startTimeoutMs,
    removeDirOnStop: options.dataDir === undefined,
  });
  try {
    await server.start();
  } catch (error) {
    await server.stop();
    throw error;
  }
  return server;
}
