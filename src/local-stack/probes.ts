/**
 * What the local stack checks before and while starting its daemons: that a port is free, that the
 * job API answers HTTP, that a daemon has registered itself in ZooKeeper.
 */
import { createServer } from 'node:net';
import { freePort } from '../harness/free-port.js';
import { waitFor } from '../harness/wait-for.js';
import { ZkClient } from '../zk/client.js';
import type { DigestAuth } from '../zk/types.js';

export const LOOPBACK = '127.0.0.1';

const PROBE_TIMEOUT_MS = 2000;
const PROBE_INTERVAL_MS = 100;

/** undefined when free; otherwise why not ("in use", "permission denied"). */
function portProblem(port: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => {
      resolve(
        error.code === 'EADDRINUSE'
          ? 'is in use'
          : error.code === 'EACCES'
            ? 'needs root (below 1024)'
            : `cannot be used (${error.message})`,
      );
    });
    server.listen({ host: LOOPBACK, port, exclusive: true }, () => {
      server.close(() => {
        resolve(undefined);
      });
    });
  });
}

export interface PortChoice {
  /** e.g. "--api-port": the option that would change it, named in the error. */
  readonly option: string;
  /** What listens there, for the error, e.g. "the job API". */
  readonly purpose: string;
}

/** `port`, checked free; 0 gives any free port. Throws one line naming the port and what to do. */
export async function requirePort(port: number, choice: PortChoice): Promise<number> {
  if (port === 0) return freePort();
  const problem = await portProblem(port);
  if (problem === undefined) return port;
  throw new Error(
    `port ${port} on ${LOOPBACK} for ${choice.purpose} ${problem}; pass ${choice.option} N for another port, or ${choice.option} 0 for any free port`,
  );
}

/** `preferred` when it is free, else any free port. */
export async function preferPort(preferred: number): Promise<number> {
  return (await portProblem(preferred)) === undefined ? preferred : freePort();
}

export interface ProbeOptions {
  readonly timeoutMs: number;
  /** The stack's ZooKeeper identity: its nodes are closed to a session without it. */
  readonly auth?: DigestAuth;
  /** Aborted when the daemon dies or the start is cancelled: stop waiting at once. */
  readonly signal: AbortSignal;
}

/** Until `url` answers HTTP at all: any status, 401 included, means the server is up. */
export async function waitForHttp(url: string, options: ProbeOptions): Promise<void> {
  await waitFor(
    async () => {
      const response = await fetch(url, { signal: AbortSignal.any([options.signal, AbortSignal.timeout(PROBE_TIMEOUT_MS)]) });
      await response.body?.cancel();
      return true;
    },
    { timeoutMs: options.timeoutMs, intervalMs: PROBE_INTERVAL_MS, signal: options.signal, message: `${url} to answer HTTP` },
  );
}

/** Until the znode `path` exists, seen through a session of its own that is closed afterwards. */
export async function waitForZNode(connectionString: string, path: string, options: ProbeOptions): Promise<void> {
  const client = await ZkClient.connect({
    connectionString,
    sessionTimeoutMs: 4000,
    connectTimeoutMs: options.timeoutMs,
    ...(options.auth === undefined ? {} : { auth: options.auth }),
  });
  try {
    await waitFor(async () => (await client.exists(path)) !== undefined, {
      timeoutMs: options.timeoutMs,
      intervalMs: PROBE_INTERVAL_MS,
      signal: options.signal,
      message: `the ZooKeeper node ${path}`,
    });
  } finally {
    await client.close();
  }
}

/** Until a contender identified as `identifier` stands in one of the elections under `root`. */
export async function waitForContender(connectionString: string, root: string, identifier: string, options: ProbeOptions): Promise<void> {
  const client = await ZkClient.connect({
    connectionString,
    sessionTimeoutMs: 4000,
    connectTimeoutMs: options.timeoutMs,
    ...(options.auth === undefined ? {} : { auth: options.auth }),
  });
  const standing = async (): Promise<boolean> => {
    for (const election of await client.getChildren(root)) {
      for (const contender of await client.getChildren(`${root}/${election}`)) {
        const { data } = await client.getData(`${root}/${election}/${contender}`);
        if (data.toString('utf8') === identifier) return true;
      }
    }
    return false;
  };
  try {
    await waitFor(standing, {
      timeoutMs: options.timeoutMs,
      intervalMs: PROBE_INTERVAL_MS,
      signal: options.signal,
      message: `${identifier} in an election under ${root}`,
    });
  } finally {
    await client.close();
  }
}
