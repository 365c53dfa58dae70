/**
 * One ZooKeeper JVM started by the harness (a standalone server or an ensemble member): its config
 * file, its process, its lifecycle (stop, kill, restart, freeze) and its readiness.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, open, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { fourLetterWord, parseServerMode, serverMode, type ServerMode } from './four-letter-word.js';
import { waitFor } from './wait-for.js';
import { ZOOKEEPER_CLASSPATH } from './zookeeper-install.js';

export type { ServerMode } from './four-letter-word.js';

export const ZOOKEEPER_HOST = '127.0.0.1';
export const ZOOKEEPER_DEFAULTS = {
  // 500 ms ticks put the minimum session timeout (2 ticks) at 1 s, so expiry tests run fast.
  tickTimeMs: 500,
  initLimit: 10,
  syncLimit: 5,
  startTimeoutMs: 30_000,
} as const;

const STOP_GRACE_MS = 5000;
const READY_POLL_MS = 50;
const LOG_TAIL_BYTES = 2048;
// setpriv makes the kernel SIGKILL the JVM when this process dies, even by SIGKILL or Ctrl-C, so a
// crashed test run cannot leave a ZooKeeper behind holding its ports.
const SETPRIV = '/usr/bin/setpriv';

/** One ZooKeeper JVM started by this harness (a standalone server or an ensemble member). */
export interface ZooKeeperNode {
  readonly host: typeof ZOOKEEPER_HOST;
  readonly port: number;
  /** `127.0.0.1:<port>` */
  readonly connectionString: string;
  /** The current JVM's PID: a new one after `restart()`; the last one once stopped. */
  readonly pid: number;
  /** ZooKeeper's dataDir; `zoo.cfg` and `zookeeper.log` live there too. */
  readonly dataDir: string;
  readonly logFile: string;
  /** SIGTERM, SIGKILL after 5 s, wait for exit. Idempotent. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit; the data stays for `restart()`. */
  kill(): Promise<void>;
  /** Starts again on the same port and dataDir (stopping first if running) and waits until ready. */
  restart(): Promise<void>;
  /** SIGSTOP: the kernel still accepts connections, but nothing answers and no tick runs. */
  freeze(): void;
  /** SIGCONT */
  unfreeze(): void;
  /** From `srvr`; `unknown` when the server cannot answer. */
  mode(timeoutMs?: number): Promise<ServerMode>;
}

export interface QuorumPeer {
  readonly id: number;
  readonly peerPort: number;
  readonly electionPort: number;
}

export interface ZooKeeperNodeConfig {
  readonly dir: string;
  readonly clientPort: number;
  readonly tickTimeMs: number;
  readonly initLimit: number;
  readonly syncLimit: number;
  readonly forceSync: boolean;
  readonly minSessionTimeoutMs?: number | undefined;
  readonly maxSessionTimeoutMs?: number | undefined;
  readonly quorum?: { readonly myId: number; readonly peers: readonly QuorumPeer[] } | undefined;
  /** `srvr` modes that count as ready. */
  readonly readyModes: readonly ServerMode[];
  readonly startTimeoutMs: number;
  readonly removeDirOnStop: boolean;
}

interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

interface JvmRun {
  readonly pid: number;
  exit: ExitStatus | undefined;
  readonly exited: Promise<ExitStatus>;
}

export function createTempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'zk-harness-'));
}

/** Lifecycle of one ZooKeeper JVM; shared by the standalone server and the ensemble members. */
export class ZooKeeperProcess implements ZooKeeperNode {
  readonly host = ZOOKEEPER_HOST;
  readonly port: number;
  readonly connectionString: string;
  readonly dataDir: string;
  readonly logFile: string;
  readonly #config: ZooKeeperNodeConfig;
  // A promise rather than the run itself, so that a stop() issued while the JVM is being spawned
  // still finds (and reaps) it.
  #current: Promise<JvmRun> | undefined;
  #run: JvmRun | undefined;
  #stopping: Promise<void> | undefined;

  constructor(config: ZooKeeperNodeConfig) {
    this.#config = config;
    this.port = config.clientPort;
    this.connectionString = `${ZOOKEEPER_HOST}:${config.clientPort}`;
    this.dataDir = config.dir;
    this.logFile = logFilePath(config.dir);
  }

  get pid(): number {
    if (this.#run === undefined) throw new Error(`ZooKeeper on port ${this.port} was never started`);
    return this.#run.pid;
  }

  /** Spawns the JVM and waits until it is ready; on failure the JVM is killed and the error holds its log. */
  async start(): Promise<void> {
    const previous = await this.#currentRun();
    if (previous !== undefined && previous.exit === undefined) {
      throw new Error(`ZooKeeper on port ${this.port} is already running (pid ${previous.pid})`);
    }
    this.#stopping = undefined;
    const spawning = spawnZooKeeper(this.#config);
    this.#current = spawning;
    const run = await spawning;
    this.#run = run;
    try {
      await this.#waitReady(run);
    } catch (error) {
      await terminate(run, 0);
      throw error;
    }
  }

  stop(): Promise<void> {
    this.#stopping ??= this.#stopAndCleanUp();
    return this.#stopping;
  }

  async kill(): Promise<void> {
    const run = await this.#currentRun();
    if (run !== undefined) await terminate(run, 0);
  }

  async restart(): Promise<void> {
    const run = await this.#currentRun();
    if (run !== undefined) await terminate(run, STOP_GRACE_MS);
    await this.start();
  }

  freeze(): void {
    this.#signalRunning('SIGSTOP');
  }

  unfreeze(): void {
    this.#signalRunning('SIGCONT');
  }

  mode(timeoutMs?: number): Promise<ServerMode> {
    return serverMode(ZOOKEEPER_HOST, this.port, timeoutMs);
  }

  async #stopAndCleanUp(): Promise<void> {
    const run = await this.#currentRun();
    if (run !== undefined) await terminate(run, STOP_GRACE_MS);
    if (this.#config.removeDirOnStop) await rm(this.dataDir, { recursive: true, force: true });
  }

  #currentRun(): Promise<JvmRun | undefined> {
    // A failed spawn leaves no process to act on.
    return this.#current?.catch(() => undefined) ?? Promise.resolve(undefined);
  }

  #signalRunning(signal: NodeJS.Signals): void {
    const run = this.#run;
    if (run === undefined || run.exit !== undefined) {
      throw new Error(`cannot send ${signal}: ZooKeeper on port ${this.port} is not running`);
    }
    sendSignal(run, signal);
  }

  async #waitReady(run: JvmRun): Promise<void> {
    const exitedEarly = new AbortController();
    void run.exited.then(({ code, signal }) => {
      const how = signal === null ? `code ${String(code)}` : `signal ${signal}`;
      exitedEarly.abort(new Error(`ZooKeeper (pid ${run.pid}) exited with ${how} before it was ready`));
    });
    const modes = this.#config.readyModes;
    try {
      await waitFor(
        async () => {
          const ruok = await fourLetterWord(ZOOKEEPER_HOST, this.port, 'ruok');
          if (ruok !== 'imok') throw new Error(`ruok answered ${JSON.stringify(ruok)}`);
          const mode = parseServerMode(await fourLetterWord(ZOOKEEPER_HOST, this.port, 'srvr'));
          if (!modes.includes(mode)) throw new Error(`srvr reports Mode ${mode}`);
          return true;
        },
        {
          timeoutMs: this.#config.startTimeoutMs,
          intervalMs: READY_POLL_MS,
          signal: exitedEarly.signal,
          message: `ZooKeeper on ${this.connectionString} to answer ruok=imok and srvr Mode ${modes.join('|')}`,
        },
      );
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      const log = await readTail(this.logFile, LOG_TAIL_BYTES);
      throw new Error(`${reason}\n--- last ${LOG_TAIL_BYTES} bytes of ${this.logFile} ---\n${log}`, { cause: error });
    }
  }
}

/** Writes the node's zoo.cfg (and myid in an ensemble) and spawns its QuorumPeerMain JVM. */
export async function spawnZooKeeper(config: ZooKeeperNodeConfig): Promise<JvmRun> {
  await mkdir(config.dir, { recursive: true });
  const cfgFile = join(config.dir, 'zoo.cfg');
  await writeFile(cfgFile, renderConfig(config));
  if (config.quorum !== undefined) await writeFile(join(config.dir, 'myid'), `${config.quorum.myId}\n`);

  const java = ['java', '-Xmx512m', '-cp', ZOOKEEPER_CLASSPATH, 'org.apache.zookeeper.server.quorum.QuorumPeerMain', cfgFile];
  const [command, ...args] = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL', ...java] : java;
  if (command === undefined) throw new Error('empty command line');
  // A file descriptor, not a pipe: a pipe nobody drains would block the JVM once full.
  const log = await open(logFilePath(config.dir), 'a');
  try {
    const child = spawn(command, args, { cwd: config.dir, detached: false, stdio: ['ignore', log.fd, log.fd] });
    const { pid } = child;
    if (pid === undefined) {
      const failure: unknown[] = await once(child, 'error');
      throw new Error(`could not spawn ${command}: ${String(failure[0])}`);
    }
    const run: JvmRun = {
      pid,
      exit: undefined,
      exited: new Promise<ExitStatus>((resolveExit) => {
        child.once('exit', (code, signal) => {
          run.exit = { code, signal };
          resolveExit(run.exit);
        });
      }),
    };
    return run;
  } finally {
    await log.close();
  }
}

function renderConfig(config: ZooKeeperNodeConfig): string {
  const lines = [
    '# Written by the zk-job-engine test harness.',
    '# ZooKeeper reads a trailing "# ..." as part of the value, so comments stay on their own lines.',
    `tickTime=${config.tickTimeMs}`,
    `initLimit=${config.initLimit}`,
    `syncLimit=${config.syncLimit}`,
    `dataDir=${config.dir}`,
    `clientPort=${config.clientPort}`,
    `clientPortAddress=${ZOOKEEPER_HOST}`,
    'admin.enableServer=false',
    '4lw.commands.whitelist=*',
    'maxClientCnxns=0',
    `forceSync=${config.forceSync ? 'yes' : 'no'}`,
  ];
  if (config.minSessionTimeoutMs !== undefined) lines.push(`minSessionTimeout=${config.minSessionTimeoutMs}`);
  if (config.maxSessionTimeoutMs !== undefined) lines.push(`maxSessionTimeout=${config.maxSessionTimeoutMs}`);
  for (const peer of config.quorum?.peers ?? []) {
    lines.push(`server.${peer.id}=${ZOOKEEPER_HOST}:${peer.peerPort}:${peer.electionPort}`);
  }
  return `${lines.join('\n')}\n`;
}

/** SIGTERM (then SIGKILL after `graceMs`), or SIGKILL at once when `graceMs` is 0; resolves on exit. */
async function terminate(run: JvmRun, graceMs: number): Promise<void> {
  if (run.exit !== undefined) return;
  if (graceMs > 0) {
    sendSignal(run, 'SIGTERM');
    // A frozen JVM acts on SIGTERM only once it runs again.
    sendSignal(run, 'SIGCONT');
    if (await exitsWithin(run, graceMs)) return;
  }
  sendSignal(run, 'SIGKILL');
  await run.exited;
}

function exitsWithin(run: JvmRun, ms: number): Promise<boolean> {
  return new Promise((resolveExit) => {
    const timer = setTimeout(resolveExit, ms, false);
    void run.exited.then(() => {
      clearTimeout(timer);
      resolveExit(true);
    });
  });
}

function sendSignal(run: JvmRun, signal: NodeJS.Signals): void {
  if (run.exit !== undefined) return;
  try {
    process.kill(run.pid, signal);
  } catch (error) {
    // ESRCH: it died and its 'exit' event is on its way.
    if (!(error instanceof Error && 'code' in error && error.code === 'ESRCH')) throw error;
  }
}

function logFilePath(dir: string): string {
  return join(dir, 'zookeeper.log');
}

async function readTail(path: string, bytes: number): Promise<string> {
  try {
    return (await readFile(path)).subarray(-bytes).toString('utf8');
  } catch (error) {
    return `(cannot read the log: ${error instanceof Error ? error.message : String(error)})`;
  }
}
