import { rm } from 'node:fs/promises';
import { join } from 'node:path';

import { freePorts } from './free-port.js';
import { waitFor } from './wait-for.js';
import { ensureZooKeeperInstalled } from './zookeeper-install.js';
import { createTempDir, ZOOKEEPER_DEFAULTS, ZooKeeperProcess, type ZooKeeperNode, type ZooKeeperNodeConfig } from './zookeeper-process.js';

/** An ensemble member; `restart()` returns once it is back in the quorum (leader or follower). */
export interface ZooKeeperMember extends ZooKeeperNode {
  /** Its `myid` and `server.<id>` number. */
  readonly id: number;
}

export interface ZooKeeperEnsemble {
  readonly members: readonly ZooKeeperMember[];
  /** Every member's `127.0.0.1:<port>`, comma-separated. */
  readonly connectionString: string;
  /** The one member whose `srvr` says leader, waiting for an election if needed (default 30 s). */
  leader(options?: { readonly timeoutMs?: number }): Promise<ZooKeeperMember>;
  /** Stops every member and removes the ensemble's directory. Idempotent. */
  stop(): Promise<void>;
}

export interface StartEnsembleOptions {
  /** Default 3. */
  readonly size?: number;
  /** Default 500 ms. */
  readonly tickTimeMs?: number;
  /** Default 5 ticks: how long a leader waits for a silent follower (and followers for a frozen leader). */
  readonly syncLimit?: number;
  /** Default 10 ticks. */
  readonly initLimit?: number;
  /** Deadline for every member to join the quorum; default 30 s. */
  readonly startTimeoutMs?: number;
}

const LEADER_POLL_MS = 50;
// Short, so that one frozen member does not slow down the search for the leader among the others.
const MODE_PROBE_TIMEOUT_MS = 500;

class EnsembleMember extends ZooKeeperProcess implements ZooKeeperMember {
  readonly id: number;

  constructor(id: number, config: ZooKeeperNodeConfig) {
    super(config);
    this.id = id;
  }
}

class Ensemble implements ZooKeeperEnsemble {
  readonly members: readonly EnsembleMember[];
  readonly connectionString: string;
  readonly #root: string;
  #stopping: Promise<void> | undefined;

  constructor(root: string, members: readonly EnsembleMember[]) {
    this.#root = root;
    this.members = members;
    this.connectionString = members.map((member) => member.connectionString).join(',');
  }

  leader(options: { readonly timeoutMs?: number } = {}): Promise<ZooKeeperMember> {
    return waitFor(
      async () => {
        const modes = await Promise.all(this.members.map((member) => member.mode(MODE_PROBE_TIMEOUT_MS)));
        // Two answers of "leader" happen briefly after a partition heals; wait until only one remains.
        const leaders = this.members.filter((_, index) => modes[index] === 'leader');
        return leaders.length === 1 ? leaders[0] : undefined;
      },
      {
        timeoutMs: options.timeoutMs ?? ZOOKEEPER_DEFAULTS.startTimeoutMs,
        intervalMs: LEADER_POLL_MS,
        message: `exactly one leader among ${this.connectionString}`,
      },
    );
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stopAll();
    return this.#stopping;
  }

  async #stopAll(): Promise<void> {
    try {
      const results = await Promise.allSettled(this.members.map((member) => member.stop()));
      const failure = results.find((result) => result.status === 'rejected');
      if (failure !== undefined) throw asError(failure.reason);
    } finally {
      await rm(this.#root, { recursive: true, force: true });
    }
  }
}

export async function startEnsemble(options: StartEnsembleOptions = {}): Promise<ZooKeeperEnsemble> {
  const size = options.size ?? 3;
  if (!Number.isInteger(size) || size < 2) throw new Error(`an ensemble needs at least 2 members, got ${size}`);
  await ensureZooKeeperInstalled();

  const ports = await freePorts(size * 3);
  const peers = Array.from({ length: size }, (_, index) => ({
    id: index + 1,
    clientPort: portAt(ports, index * 3),
    peerPort: portAt(ports, index * 3 + 1),
    electionPort: portAt(ports, index * 3 + 2),
  }));
  const root = await createTempDir();
  const members = peers.map(
    (peer) =>
      new EnsembleMember(peer.id, {
        dir: join(root, `member-${peer.id}`),
        clientPort: peer.clientPort,
        tickTimeMs: options.tickTimeMs ?? ZOOKEEPER_DEFAULTS.tickTimeMs,
        initLimit: options.initLimit ?? ZOOKEEPER_DEFAULTS.initLimit,
        syncLimit: options.syncLimit ?? ZOOKEEPER_DEFAULTS.syncLimit,
        forceSync: false,
        quorum: { myId: peer.id, peers },
        readyModes: ['leader', 'follower'],
        startTimeoutMs: options.startTimeoutMs ?? ZOOKEEPER_DEFAULTS.startTimeoutMs,
        removeDirOnStop: false,
      }),
  );
  const ensemble = new Ensemble(root, members);

  // All at once: no member can become ready before a majority is up.
  const started = await Promise.allSettled(members.map((member) => member.start()));
  const failure = started.find((result) => result.status === 'rejected');
  if (failure !== undefined) {
    await ensemble.stop();
    throw asError(failure.reason);
  }
  return ensemble;
}

function asError(reason: unknown): Error {
  return reason instanceof Error ? reason : new Error(String(reason));
}

function portAt(ports: readonly number[], index: number): number {
  const port = ports[index];
  if (port === undefined) throw new Error(`freePorts returned too few ports (no index ${index})`);
  return port;
}
