/**
 * A private Redis for the peer benchmark: Debian's `redis-server` on a free loopback port, nothing
 * persisted (no RDB snapshot, no append-only file), `noeviction` as BullMQ requires, stopped with
 * SIGTERM and awaited. It dies with this process (pdeathsig), like the benchmark's other daemons.
 */
import { existsSync } from 'node:fs';
import { ChildDaemon } from '../../src/harness/child-daemon.js';
import { freePort } from '../../src/harness/free-port.js';

const REDIS_SERVER = '/usr/bin/redis-server';
const READY_TIMEOUT_MS = 15_000;

export interface RedisServer {
  readonly host: string;
  readonly port: number;
  readonly pid: number;
  stop(): Promise<void>;
}

export async function startRedis(): Promise<RedisServer> {
  if (!existsSync(REDIS_SERVER))
    throw new Error(`${REDIS_SERVER} is missing: install Debian's redis-server (apt-get install -y redis-server)`);
  const port = await freePort();
  const daemon = ChildDaemon.spawn({
    name: 'redis-server',
    command: REDIS_SERVER,
    args: ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--maxmemory-policy', 'noeviction'],
    stdout: 'collect',
    stderr: 'collect',
    parentDeathSignal: 'SIGKILL',
  });
  try {
    await daemon.stdout.waitForLine(/Ready to accept connections/, READY_TIMEOUT_MS);
  } catch (error) {
    await daemon.stop();
    throw new Error(`redis-server did not start: ${daemon.stdout.tail(5).join(' | ')} ${daemon.stderr.tail(5).join(' | ')}`, {
      cause: error,
    });
  }
  return {
    host: '127.0.0.1',
    port,
    pid: daemon.pid,
    stop: async () => {
      await daemon.stop();
    },
  };
}
