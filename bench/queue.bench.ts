/**
 * Queue benchmark: jobs/s of the put -> take -> consume cycle on a private ZooKeeper, for 1, 2 and 4
 * consumer processes of 16 slots, at a backlog of 100 and of 100,000, and kazoo's own LockingQueue
 * (one consumer) on the same server in the same run.
 *
 *   npm run bench:queue [-- --json] [-- --seconds N] [-- --only 1x100,4x100000] [-- --no-kazoo]
 *
 * A producer in this process keeps the queue at the backlog (entries, taken or not, counted by the
 * parent's numChildren) with putMany; consumers run in child processes and report what they consume.
 * Each run is measured over a fixed window after a short ramp-up.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { randomUUID } from 'node:crypto';
import { startZooKeeper, type ZooKeeperServer } from '../src/harness/zookeeper-server.js';
import { ZkClient } from '../src/zk/client.js';
import { LockingQueue } from '../src/recipes/locking-queue.js';
import { delay } from '../src/util/delay.js';
import { spawnConsumer, type ConsumerProcess } from '../test/fixtures/queue-consumer-process.js';
import { removeTree } from '../test/fixtures/zk-cleanup.js';
import { parseBenchArgs } from './bench-args.js';

interface RunResult {
  processes: number;
  slots: number;
  backlog: number;
  jobsPerSec: number;
}

const { json, seconds: measureSeconds, only, has } = parseBenchArgs(process.argv.slice(2), 6);
const withKazoo = !has('--no-kazoo');
const RAMP_UP_MS = 1000;
const SLOTS = 16;
const PUT_CHUNK = 500;
// How often the producer reads the depth; each read is a request the server also serves.
const PRODUCER_POLL_MS = 2;

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

async function fill(queue: LockingQueue, target: number): Promise<number> {
  const depth = await queue.length();
  const missing = target - depth;
  if (missing <= 0) return 0;
  let put = 0;
  while (put < missing) {
    const count = Math.min(PUT_CHUNK, missing - put);
    await queue.putMany(Array.from({ length: count }, () => ({ jobId: `job/${randomUUID()}` })));
    put += count;
  }
  return put;
}

/** Keeps the queue at `backlog` until `stop` aborts. */
async function produce(queue: LockingQueue, backlog: number, stop: AbortSignal): Promise<void> {
  while (!stop.aborted) {
    const put = await fill(queue, backlog);
    if (put === 0) await delay(PRODUCER_POLL_MS).catch(() => undefined);
  }
}

/** A group of consumers under measurement. */
interface Consumers {
  begin(): void;
  /** Consumed so far, for groups that report as they go. */
  consumed(): number;
  stop(): Promise<void>;
  /** For groups that measure their own window and report at the end (kazoo). */
  ownRate?(): number;
}

/** Jobs/s consumed over the window while the producer holds the queue at `backlog`. */
async function measure(client: ZkClient, backlog: number, start: (path: string) => Promise<Consumers>, seconds: number): Promise<number> {
  const path = `/bench-${randomUUID()}`;
  const queue = new LockingQueue(client, { path });
  await fill(queue, backlog);
  const consumers = await start(path);
  const stopProducer = new AbortController();
  const producer = produce(queue, backlog, stopProducer.signal);
  consumers.begin();
  await delay(RAMP_UP_MS);
  const before = consumers.consumed();
  const startedAt = performance.now();
  await delay(seconds * 1000);
  const rate = ((consumers.consumed() - before) * 1000) / (performance.now() - startedAt);
  stopProducer.abort();
  await producer;
  await consumers.stop();
  await queue.close();
  await removeTree(client, path);
  return Math.round(consumers.ownRate?.() ?? rate);
}

function ourConsumers(server: ZooKeeperServer, processes: number) {
  return async (path: string): Promise<Consumers> => {
    const children: ConsumerProcess[] = [];
    for (let i = 0; i < processes; i++) {
      children.push(spawnConsumer({ connectionString: server.connectionString, path, slots: SLOTS, waitForStart: true }));
    }
    await Promise.all(children.map((child) => child.ready));
    return {
      begin: () => {
        for (const child of children) child.start();
      },
      consumed: () => children.reduce((sum, child) => sum + child.consumed.length, 0),
      stop: async () => {
        await Promise.all(children.map((child) => child.stop()));
      },
    };
  };
}

/** kazoo's LockingQueue, one consumer; it times its own window (ramp-up excluded) and reports at the end. */
function kazooConsumer(server: ZooKeeperServer, seconds: number) {
  const script = fileURLToPath(new URL('./kazoo_queue_consumer.py', import.meta.url));
  return async (path: string): Promise<Consumers> => {
    const child = spawn('/usr/bin/python3', [script, server.connectionString, path, String(seconds + RAMP_UP_MS / 1000)], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const exited = new Promise<void>((resolve) =>
      child.once('exit', () => {
        resolve();
      }),
    );
    let result: { consumed: number; seconds: number } | undefined;
    let ready: () => void = () => undefined;
    const isReady = new Promise<void>((resolve) => (ready = resolve));
    createInterface({ input: child.stdout }).on('line', (line) => {
      const message: unknown = JSON.parse(line);
      if (typeof message !== 'object' || message === null) return;
      const type: unknown = Reflect.get(message, 'type');
      const consumed: unknown = Reflect.get(message, 'consumed');
      const elapsed: unknown = Reflect.get(message, 'seconds');
      if (type === 'ready') ready();
      if (type === 'done' && typeof consumed === 'number' && typeof elapsed === 'number') result = { consumed, seconds: elapsed };
    });
    await Promise.race([
      isReady,
      exited.then(() => Promise.reject(new Error('kazoo consumer exited before ready (is python3-kazoo installed?)'))),
    ]);
    return {
      begin: () => child.stdin.write('go\n'),
      consumed: () => 0,
      stop: () => exited,
      ownRate: () => {
        if (result === undefined) throw new Error('kazoo consumer reported no result');
        return result.consumed / result.seconds;
      },
    };
  };
}

async function main(): Promise<void> {
  const server = await startZooKeeper();
  const client = await ZkClient.connect({ connectionString: server.connectionString });
  try {
    log(`ZooKeeper ${server.connectionString} (forceSync=no); window ${String(measureSeconds)} s after ${String(RAMP_UP_MS)} ms ramp-up`);
    // The JVM's JIT needs a few thousand requests before its rate settles; not reported.
    await measure(client, 100, ourConsumers(server, 1), 10);
    const runs: RunResult[] = [];
    for (const backlog of [100, 100_000]) {
      for (const processes of [1, 2, 4]) {
        if (only !== undefined && !only.has(`${String(processes)}x${String(backlog)}`)) continue;
        const jobsPerSec = await measure(client, backlog, ourConsumers(server, processes), measureSeconds);
        runs.push({ processes, slots: SLOTS, backlog, jobsPerSec });
        log(
          `${String(processes)} x ${String(SLOTS)} slots, backlog ${String(backlog).padStart(6)}: ${String(jobsPerSec).padStart(5)} jobs/s`,
        );
      }
    }
    const kazoo = withKazoo ? await measure(client, 100, kazooConsumer(server, measureSeconds), measureSeconds) : 0;
    log(`kazoo LockingQueue, 1 consumer, backlog    100: ${String(kazoo).padStart(5)} jobs/s`);
    const single = runs.find((run) => run.processes === 1 && run.backlog === 100)?.jobsPerSec;
    if (single !== undefined && kazoo > 0) log(`ratio 1 x 16 / kazoo: ${(single / kazoo).toFixed(1)}x`);
    for (const processes of [1, 2, 4]) {
      const small = runs.find((run) => run.processes === processes && run.backlog === 100)?.jobsPerSec;
      const large = runs.find((run) => run.processes === processes && run.backlog === 100_000)?.jobsPerSec;
      if (small === undefined || large === undefined) continue;
      log(`${String(processes)} x 16 at 100,000 backlog: ${((100 * large) / Math.max(1, small)).toFixed(0)}% of the rate at 100`);
    }
    if (json) log(JSON.stringify({ runs, kazoo: { jobsPerSec: kazoo } }));
  } finally {
    await client.close();
    await server.stop();
  }
}

await main();
