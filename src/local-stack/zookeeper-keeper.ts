/**
 * The ZooKeeper keeper: a small process of the local stack that runs the harness's ZooKeeper server
 * and reports on it. It exists because the harness starts its JVM in the starting process's own
 * process group, where a terminal's Ctrl-C would stop ZooKeeper at once, before the executor had
 * handed back its jobs; the keeper runs in a group of its own, like the other daemons, and the JVM
 * dies with it.
 */
import { startZooKeeper, type ZooKeeperServer } from '../harness/zookeeper-server.js';
import { messageOf } from '../util/errors.js';

// How often the keeper checks that its JVM still runs: the harness has no exit event to offer.
const LIVENESS_POLL_MS = 1000;

export type KeeperReport =
  | { readonly type: 'ready'; readonly pid: number; readonly connectionString: string; readonly logFile: string }
  | { readonly type: 'failed'; readonly message: string };

export function parseKeeperReport(message: Record<string, unknown>): KeeperReport | undefined {
  if (
    message.type === 'ready' &&
    typeof message.pid === 'number' &&
    typeof message.connectionString === 'string' &&
    typeof message.logFile === 'string'
  ) {
    return { type: 'ready', pid: message.pid, connectionString: message.connectionString, logFile: message.logFile };
  }
  if (message.type === 'failed' && typeof message.message === 'string') return { type: 'failed', message: message.message };
  return undefined;
}

export interface KeeperOptions {
  readonly dataDir: string;
  readonly port: number;
  /** Aborted: stop ZooKeeper and return. */
  readonly signal: AbortSignal;
  readonly report: (report: KeeperReport) => void;
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Runs ZooKeeper until the signal aborts (0) or it fails to start or dies (1). */
export async function keepZooKeeper(options: KeeperOptions): Promise<number> {
  let server: ZooKeeperServer;
  try {
    // Synced writes, unlike the harness's default for tests: this data is kept from run to run.
    server = await startZooKeeper({ dataDir: options.dataDir, port: options.port, forceSync: true });
  } catch (error) {
    options.report({ type: 'failed', message: messageOf(error) });
    return 1;
  }
  options.report({ type: 'ready', pid: server.pid, connectionString: server.connectionString, logFile: server.logFile });

  const outcome = await new Promise<'stop' | 'died'>((resolve) => {
    const poll = setInterval(() => {
      if (isAlive(server.pid)) return;
      finish('died');
    }, LIVENESS_POLL_MS);
    const onAbort = (): void => {
      finish('stop');
    };
    function finish(how: 'stop' | 'died'): void {
      clearInterval(poll);
      options.signal.removeEventListener('abort', onAbort);
      resolve(how);
    }
    if (options.signal.aborted) finish('stop');
    else options.signal.addEventListener('abort', onAbort, { once: true });
  });
  if (outcome === 'died') {
    options.report({ type: 'failed', message: `ZooKeeper (pid ${server.pid}) exited; see ${server.logFile}` });
    await server.stop();
    return 1;
  }
  await server.stop();
  return 0;
}
