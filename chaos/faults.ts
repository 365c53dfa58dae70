/**
 * The faults of a chaos run, and the two lanes that inject them: the node lane (executors and
 * distributors: kill -9, SIGSTOP/SIGCONT, cut off from ZooKeeper or from the API, SIGTERM mid-run,
 * the distribution leader killed) and the cluster lane (ZooKeeper leader killed, a member frozen, the
 * quorum lost for longer than the session timeout, the job API killed). Each lane injects one fault,
 * holds it, heals it, pauses, and picks again, so two faults of different lanes may overlap.
 */
import { readLeaders } from '../src/views/distributions.js';
import { delay } from '../src/util/delay.js';
import type { ZkClient } from '../src/zk/client.js';
import type { FaultRecord } from './checker.js';
import { ELECTION_PATH, type ChaosCluster } from './cluster.js';
import type { ChaosDaemon } from './daemon.js';
import { pause } from './pause.js';
import type { Random } from './random.js';

export interface FaultContext {
  readonly cluster: ChaosCluster;
  /** The driver's own session, for finding leaders. */
  readonly zk: ZkClient;
  readonly sessionTimeoutMs: number;
}

/** A fault in place: `heal` undoes it and returns once it is undone. */
interface Injected {
  readonly target: string;
  heal(): Promise<void>;
}

interface FaultKind {
  readonly kind: string;
  readonly weight: number;
  /** How long to hold it, in ms. */
  hold(random: Random, sessionTimeoutMs: number): number;
  inject(context: FaultContext, random: Random): Promise<Injected | undefined>;
}

/** Started again, as systemd would after the fault; not awaited to be ready: faults go on meanwhile. */
function restartOf(daemon: ChaosDaemon): () => Promise<void> {
  return () => {
    daemon.start();
    return Promise.resolve();
  };
}

function runningExecutor(context: FaultContext, random: Random): ChaosDaemon | undefined {
  const running = context.cluster.executors.map((node) => node.daemon).filter((daemon) => daemon.running && !daemon.paused);
  return running.length === 0 ? undefined : random.pick(running);
}

const NODE_FAULTS: readonly FaultKind[] = [
  {
    kind: 'executor kill -9',
    weight: 3,
    hold: (random) => random.between(500, 3000),
    async inject(context, random) {
      const daemon = runningExecutor(context, random);
      if (daemon === undefined) return undefined;
      await daemon.kill();
      return { target: daemon.name, heal: restartOf(daemon) };
    },
  },
  {
    kind: 'executor SIGSTOP/SIGCONT',
    weight: 3,
    // Half shorter than the session timeout (the executor must carry on), half longer (it must not).
    hold: (random, session) => random.between(0.3 * session, 2.5 * session),
    inject(context, random) {
      const daemon = runningExecutor(context, random);
      if (daemon === undefined) return Promise.resolve(undefined);
      daemon.pause();
      return Promise.resolve({
        target: daemon.name,
        heal: () => {
          daemon.resume();
          return Promise.resolve();
        },
      });
    },
  },
  {
    kind: 'executor cut off from ZooKeeper',
    weight: 3,
    hold: (random, session) => random.between(0.5 * session, 3 * session),
    inject(context, random) {
      const node = random.pick(context.cluster.executors);
      for (const proxy of node.zkProxies) proxy.cut();
      return Promise.resolve({
        target: node.daemon.name,
        heal: () => {
          for (const proxy of node.zkProxies) proxy.heal();
          return Promise.resolve();
        },
      });
    },
  },
  {
    kind: 'executor cut off from the API',
    weight: 2,
    hold: (random) => random.between(2000, 8000),
    inject(context, random) {
      const node = random.pick(context.cluster.executors);
      node.apiProxy.cut();
      return Promise.resolve({
        target: node.daemon.name,
        heal: () => {
          node.apiProxy.heal();
          return Promise.resolve();
        },
      });
    },
  },
  {
    kind: 'executor SIGTERM mid-run',
    weight: 2,
    hold: (random) => random.between(500, 2000),
    async inject(context, random) {
      const daemon = runningExecutor(context, random);
      if (daemon === undefined) return undefined;
      await daemon.terminate();
      return { target: daemon.name, heal: restartOf(daemon) };
    },
  },
  {
    kind: 'distribution leader kill -9',
    weight: 2,
    hold: (random) => random.between(500, 4000),
    async inject(context, random) {
      const leaders = await readLeaders(context.zk, ELECTION_PATH).catch(() => []);
      const leader = random.pick([...leaders.map((entry) => entry.leader), null]);
      const daemon =
        context.cluster.distributors.find((candidate) => candidate.name === leader && candidate.running) ??
        context.cluster.distributors.find((candidate) => candidate.running);
      if (daemon === undefined) return undefined;
      await daemon.kill();
      return { target: daemon.name, heal: restartOf(daemon) };
    },
  },
];

const CLUSTER_FAULTS: readonly FaultKind[] = [
  {
    kind: 'ZooKeeper leader kill -9',
    weight: 3,
    hold: (random) => random.between(1000, 6000),
    async inject(context) {
      const leader = await context.cluster.ensemble.leader({ timeoutMs: 20_000 });
      await leader.kill();
      return { target: `zookeeper-${String(leader.id)}`, heal: () => leader.restart() };
    },
  },
  {
    kind: 'ZooKeeper member frozen',
    weight: 2,
    hold: (random) => random.between(2000, 8000),
    inject(context, random) {
      const member = random.pick(context.cluster.ensemble.members);
      member.freeze();
      return Promise.resolve({
        target: `zookeeper-${String(member.id)}`,
        heal: () => {
          member.unfreeze();
          return Promise.resolve();
        },
      });
    },
  },
  {
    kind: 'ZooKeeper quorum lost',
    weight: 1,
    // Longer than the session timeout: every session expires, everyone starts again.
    hold: (random, session) => session + random.between(1000, 5000),
    async inject(context, random) {
      const leader = await context.cluster.ensemble.leader({ timeoutMs: 20_000 });
      const other = random.pick(context.cluster.ensemble.members.filter((member) => member !== leader));
      await Promise.all([leader.kill(), other.kill()]);
      return {
        target: `zookeeper-${String(leader.id)}+zookeeper-${String(other.id)}`,
        // Together: neither becomes ready before a majority is up.
        heal: async () => {
          await Promise.all([leader.restart(), other.restart()]);
        },
      };
    },
  },
  {
    kind: 'job API kill -9',
    weight: 2,
    hold: (random) => random.between(1000, 4000),
    async inject(context) {
      const api = context.cluster.api;
      if (!api.running) return undefined;
      await api.kill();
      return { target: api.name, heal: restartOf(api) };
    },
  },
];

export interface FaultLog {
  record(fault: FaultRecord): void;
}

/** Runs both lanes until `signal` aborts; the fault in place then is healed before this returns. */
export async function injectFaults(context: FaultContext, random: Random, log: FaultLog, signal: AbortSignal): Promise<void> {
  await Promise.all([
    runLane(NODE_FAULTS, context, random.fork('node lane'), log, signal),
    runLane(CLUSTER_FAULTS, context, random.fork('cluster lane'), log, signal),
  ]);
}

async function runLane(
  faults: readonly FaultKind[],
  context: FaultContext,
  random: Random,
  log: FaultLog,
  signal: AbortSignal,
): Promise<void> {
  const choices = faults.map((fault) => ({ value: fault, weight: fault.weight }));
  while (!signal.aborted) {
    if (!(await pause(random.between(2000, 6000), signal))) return;
    const fault = random.weighted(choices);
    const holdMs = fault.hold(random, context.sessionTimeoutMs);
    const at = Date.now();
    const injected = await fault.inject(context, random);
    if (injected === undefined) continue;
    await pause(holdMs, signal);
    await healPersistently(injected, fault.kind);
    log.record({ kind: fault.kind, target: injected.target, at, heldMs: Date.now() - at });
  }
}

const HEAL_ATTEMPTS = 5;

/**
 * A fault must be undone for the run to mean anything, but undoing one can fail under load (a
 * ZooKeeper member slow to rejoin): try again before giving the run up.
 */
async function healPersistently(injected: Injected, kind: string): Promise<void> {
  for (let attempt = 1; ; attempt++) {
    try {
      await injected.heal();
      return;
    } catch (error) {
      if (attempt >= HEAL_ATTEMPTS)
        throw new Error(`could not heal "${kind}" on ${injected.target} in ${String(attempt)} attempts`, { cause: error });
      await delay(1000, undefined, { keepProcessAlive: true });
    }
  }
}
