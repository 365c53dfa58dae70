/**
 * The local stack: ZooKeeper, the job API on SQLite, one executor and the distributor, started in
 * that order as child processes, each waited for, then watched; stopped one by one in the reverse order.
 *
 *   IDLE -> STARTING -> RUNNING -> STOPPING -> STOPPED
 *                    \______________/
 * A stop asked for while starting cancels the start and stops what runs. A daemon that exits on its
 * own while starting is a failure: it is reported with the end of its log and the whole stack stops,
 * exit code 1. Once running, a daemon that exits on its own is reported with the cause in its log (its
 * warnings, errors and non-log output, not its ordinary lines) and started again with the same
 * arguments after a back-off (1 s, doubling up to 30 s for deaths in a row), as systemd's
 * Restart=always would; the others run on.
 */
import { pathExists } from '../harness/debian-package.js';
import { ZOOKEEPER_JAR, ensureZooKeeperInstalled } from '../harness/zookeeper-install.js';
import { delay } from '../util/delay.js';
import { messageOf } from '../util/errors.js';
import { Daemon, describeExit, type DaemonSpec, type ExitStatus } from './daemon.js';
import { apiSpec, distributorSpec, executorSpec, keeperSpec, type ClientDaemonContext } from './daemons.js';
import { nextRestart, restartDelayMs } from './death-report.js';
import { ensureKeyFiles } from './keys.js';
import { ensureZkAuthFile } from './zk-auth-file.js';
import { parseKeeperReport } from './zookeeper-keeper.js';
import { LOCAL_STACK_DEFAULTS, type LocalStackOptions } from './options.js';
import { LOOPBACK, preferPort, requirePort, waitForContender, waitForHttp, waitForZNode } from './probes.js';
import { claimStateDir, prepareStateDir, releaseStateDir, statePaths, writeRunRecord, type StatePaths } from './state-dir.js';
import { formatSummary, type RunningDaemon } from './summary.js';

export type StackState = 'IDLE' | 'STARTING' | 'RUNNING' | 'STOPPING' | 'STOPPED';

export interface StackOutput {
  /** Progress and the summary: stdout. */
  info(text: string): void;
  /** Failures: stderr. */
  error(text: string): void;
}

const KEEPER_READY_MS = 60_000;
const API_READY_MS = 30_000;
// The executor waits up to 30 s for ZooKeeper itself before it gives up.
const EXECUTOR_READY_MS = 45_000;
const DISTRIBUTOR_READY_MS = 45_000;
const LOG_TAIL_LINES = 15;
// The executors' registry (src/recipes/executor-registry.ts) under the default queue root.
const EXECUTOR_REGISTRY = '/job/executors';
// The distributor's default election root: one election per distribution below it.
const ELECTIONS = '/election';

interface Started {
  readonly daemon: Daemon;
  /** What it was started with: a restart uses the same. */
  readonly spec: DaemonSpec;
  readonly summary: RunningDaemon;
}

export class LocalStack {
  readonly options: LocalStackOptions;
  readonly #output: StackOutput;
  readonly #paths: StatePaths;
  readonly #cwd: string;
  #state: StackState = 'IDLE';
  // In start order; stopped in reverse.
  readonly #started: Started[] = [];
  // Aborted when the stack must stop: Ctrl-C, or a daemon that died. Ends any wait of the start.
  readonly #stopRequest = new AbortController();
  // Daemons asked to stop: their exit is expected, not a failure to report.
  readonly #stopping = new Set<Daemon>();
  #failed = false;
  #interrupts = 0;
  #deathReport: Promise<void> | undefined;
  // Restarts under way (a back-off, then a spawn): a stop waits for them, so nothing is started behind it.
  readonly #restarting = new Set<Promise<void>>();
  // Per daemon name: the last restart's number and when it started, for the back-off of the next.
  readonly #restarts = new Map<string, { readonly restart: number; readonly startedAt: number }>();
  // The executor's name and the distributor's identifier in its elections: unique per stack run, so a
  // session left by a stack that was killed cannot be mistaken for this one's.
  readonly #daemonName = `local-stack-${process.pid}`;

  constructor(options: LocalStackOptions, output: StackOutput, cwd: string) {
    this.options = options;
    this.#output = output;
    this.#paths = statePaths(options.dir);
    this.#cwd = cwd;
  }

  get state(): StackState {
    return this.#state;
  }

  /** Starts, runs until a stop is asked for or a daemon dies, stops; resolves with the exit code. */
  async run(): Promise<number> {
    this.#transition(['IDLE'], 'STARTING');
    await prepareStateDir(this.#paths);
    await claimStateDir(this.#paths);
    try {
      try {
        await this.#start();
        this.#transition(['STARTING'], 'RUNNING');
        await this.#untilStopRequested();
      } catch (error) {
        // A death or a Ctrl-C during the start has been reported already; anything else is news.
        if (!this.#stopRequest.signal.aborted) {
          this.#failed = true;
          // Before the message, so that a daemon exiting on account of the same failure is not reported twice.
          this.#stopRequest.abort(error);
          this.#output.error(`local-stack: ${messageOf(error)}`);
        }
      }
      this.#transition(['STARTING', 'RUNNING'], 'STOPPING');
      await this.#stopAll();
    } finally {
      await releaseStateDir(this.#paths);
      this.#transition(['STOPPING'], 'STOPPED');
    }
    return this.#failed ? 1 : 0;
  }

  /** Ctrl-C: the first stops in order; the second hurries the daemons; the third kills them. */
  interrupt(): void {
    this.#interrupts += 1;
    if (this.#interrupts === 1) {
      this.#output.info('stopping (Ctrl-C again to stop faster)');
      this.#stopRequest.abort(new Error('stop requested'));
    } else if (this.#interrupts === 2) {
      this.#output.info('stopping faster: running jobs go back to the queue now (Ctrl-C again to kill everything)');
      // A second SIGTERM makes the executor stop waiting for its running jobs.
      for (const { daemon } of this.#started) if (this.#stopping.has(daemon)) daemon.signal('SIGTERM');
    } else {
      this.#output.info('killing every daemon');
      this.#failed = true;
      this.killAll();
    }
  }

  /** SIGKILL to every daemon still running, synchronously: for a supervisor that is exiting anyway. */
  killAll(): void {
    for (const { daemon } of this.#started) daemon.signal('SIGKILL');
  }

  #transition(from: readonly StackState[], to: StackState): void {
    if (!from.includes(this.#state)) throw new Error(`local stack: cannot go from ${this.#state} to ${to}`);
    this.#state = to;
  }

  async #start(): Promise<void> {
    const { options } = this;
    const paths = this.#paths;
    const signal = this.#stopRequest.signal;
    const apiPort = await requirePort(options.apiPort, { option: '--api-port', purpose: 'the job API' });
    const zkPort =
      options.zkPort === undefined
        ? await preferPort(LOCAL_STACK_DEFAULTS.preferredZkPort)
        : await requirePort(options.zkPort, { option: '--zk-port', purpose: 'ZooKeeper' });
    if (!(await pathExists(ZOOKEEPER_JAR)) && process.getuid?.() === 0)
      this.#output.info("installing Debian's zookeeper package (once)...");
    await ensureZooKeeperInstalled();
    const keys = await ensureKeyFiles(paths.database, [
      { file: paths.adminKey, role: 'admin', description: 'local stack: the user and the executor' },
      { file: paths.executorKey, role: 'operator', description: 'local stack: the executor and the distributor' },
    ]);
    for (const key of keys) {
      if (key.outcome === 'created') this.#output.info(`created API key ${key.credentials.key} in ${key.file}`);
      if (key.outcome === 'replaced')
        this.#output.info(`${key.file} held a key the database does not know: replaced it with ${key.credentials.key}`);
    }
    const zkAuth = await ensureZkAuthFile(paths.zkAuth);
    if (zkAuth.outcome === 'created') this.#output.info(`created the ZooKeeper identity in ${paths.zkAuth}`);
    signal.throwIfAborted();

    this.#output.info('starting ZooKeeper...');
    const keeper = await this.#spawn(keeperSpec(paths, zkPort));
    const report = await this.#within(keeper.daemon.message(parseKeeperReport), KEEPER_READY_MS, 'ZooKeeper to start');
    if (report.type === 'failed')
      throw new Error(`ZooKeeper did not start: ${report.message.split('\n')[0] ?? ''} (see ${keeper.daemon.logFile})`);
    const zkHosts = report.connectionString;
    this.#replace(keeper, { label: 'ZooKeeper', detail: zkHosts, pids: [report.pid, keeper.daemon.pid], logFile: report.logFile });

    this.#output.info('starting the job API...');
    const apiUrl = `http://${LOOPBACK}:${apiPort}`;
    const api = await this.#spawn(apiSpec(paths, LOOPBACK, apiPort, zkHosts, options));
    await waitForHttp(`${apiUrl}/api/job`, { timeoutMs: API_READY_MS, signal });
    this.#replace(api, { ...api.summary, detail: apiUrl });

    const context: ClientDaemonContext = { paths, options, zkHosts, apiUrl };
    this.#output.info('starting the executor...');
    const executor = await this.#spawn(executorSpec(context, this.#daemonName));
    await waitForZNode(zkHosts, `${EXECUTOR_REGISTRY}/${this.#daemonName}`, { timeoutMs: EXECUTOR_READY_MS, signal, auth: zkAuth.auth });
    this.#replace(executor, { ...executor.summary, detail: `${options.threads} threads` });

    this.#output.info('starting the distributor...');
    const distributor = await this.#spawn(distributorSpec(context, this.#daemonName));
    await waitForContender(zkHosts, ELECTIONS, this.#daemonName, { timeoutMs: DISTRIBUTOR_READY_MS, signal, auth: zkAuth.auth });
    this.#replace(distributor, { ...distributor.summary, detail: ['the default distributions', ...options.distributions].join(', ') });

    await writeRunRecord(paths, {
      pid: process.pid,
      started: new Date().toISOString(),
      apiUrl,
      zkHosts,
      adminKeyFile: paths.adminKey,
      zkAuthFile: paths.zkAuth,
      pids: Object.fromEntries(this.#started.map(({ daemon }) => [daemon.name, daemon.pid])),
    });
    this.#output.info(
      formatSummary(
        {
          dir: paths.dir,
          database: paths.database,
          apiUrl,
          zkHosts,
          adminKeyFile: paths.adminKey,
          zkAuthFile: paths.zkAuth,
          supervisorPid: process.pid,
          daemons: this.#started.map(({ summary }) => summary),
        },
        this.#cwd,
      ),
    );
  }

  async #spawn(spec: DaemonSpec): Promise<Started> {
    this.#stopRequest.signal.throwIfAborted();
    const daemon = await Daemon.spawn(spec);
    const started: Started = { daemon, spec, summary: { label: spec.name, detail: '', pids: [daemon.pid], logFile: spec.logFile } };
    this.#started.push(started);
    this.#watch(daemon);
    return started;
  }

  #watch(daemon: Daemon): void {
    void daemon.exited.then((status) => {
      this.#exited(daemon, status);
    });
  }

  #replace(started: Started, summary: RunningDaemon): void {
    const index = this.#started.indexOf(started);
    if (index >= 0) this.#started[index] = { daemon: started.daemon, spec: started.spec, summary };
  }

  /** `work`, unless the deadline passes first or the stack must stop. */
  async #within<T>(work: Promise<T>, timeoutMs: number, what: string): Promise<T> {
    const signal = AbortSignal.any([this.#stopRequest.signal, AbortSignal.timeout(timeoutMs)]);
    return Promise.race([
      work,
      new Promise<never>((_, reject) => {
        const onAbort = (): void => {
          reject(
            this.#stopRequest.signal.aborted
              ? new Error('stop requested')
              : new Error(`timed out after ${timeoutMs / 1000} s waiting for ${what}`),
          );
        };
        if (signal.aborted) onAbort();
        else signal.addEventListener('abort', onAbort, { once: true });
      }),
    ]);
  }

  #untilStopRequested(): Promise<void> {
    const signal = this.#stopRequest.signal;
    return new Promise((resolve) => {
      if (signal.aborted) resolve();
      else
        signal.addEventListener(
          'abort',
          () => {
            resolve();
          },
          { once: true },
        );
    });
  }

  #exited(daemon: Daemon, status: ExitStatus): void {
    if (this.#stopping.has(daemon)) return;
    // Reported once: the first death stops the stack; what dies after it is part of that stop.
    if (this.#stopRequest.signal.aborted) return;
    const started = this.#started.find((entry) => entry.daemon === daemon);
    if (this.#state === 'RUNNING' && started !== undefined) {
      const restarting = this.#restart(started, status).catch((error: unknown) => {
        this.#failed = true;
        this.#output.error(`local-stack: restarting ${daemon.name} failed: ${messageOf(error)}; stopping the stack`);
        this.#stopRequest.abort(error);
      });
      this.#restarting.add(restarting);
      void restarting.finally(() => this.#restarting.delete(restarting));
      return;
    }
    this.#failed = true;
    this.#deathReport = daemon.logTail(LOG_TAIL_LINES).then((tail) => {
      this.#output.error(
        `local-stack: ${daemon.name} (pid ${daemon.pid}) ${describeExit(status)} unexpectedly; stopping the stack.\n--- last lines of ${daemon.logFile} ---\n${tail}`,
      );
    });
    this.#stopRequest.abort(new Error(`${daemon.name} exited`));
  }

  /** Reports the death, waits the back-off, starts the daemon again with its spec, in its place. */
  async #restart(started: Started, status: ExitStatus): Promise<void> {
    const { daemon, spec } = started;
    const restart = nextRestart(this.#restarts.get(spec.name), Date.now());
    const waitMs = restartDelayMs(restart);
    const cause = await daemon.causeTail(LOG_TAIL_LINES);
    this.#output.error(
      `local-stack: ${daemon.name} (pid ${daemon.pid}) ${describeExit(status)}; restarting it in ${waitMs / 1000} s` +
        `${restart > 1 ? ` (restart ${restart} in a row)` : ''}.\n--- its warnings and errors (${daemon.logFile}) ---\n${cause}`,
    );
    try {
      await delay(waitMs, this.#stopRequest.signal);
    } catch {
      return; // The stack is stopping: nothing to restart.
    }
    const next = await Daemon.spawn(spec);
    this.#restarts.set(spec.name, { restart, startedAt: Date.now() });
    const index = this.#started.indexOf(started);
    const replacement: Started = { daemon: next, spec, summary: { ...started.summary, pids: [next.pid] } };
    if (index >= 0) this.#started[index] = replacement;
    else this.#started.push(replacement);
    this.#watch(next);
    if (this.#stopRequest.signal.aborted) {
      // The stop began while it was spawning and may have passed its place already.
      await this.#stopOne(next);
      return;
    }
    this.#output.info(`local-stack: ${daemon.name} restarted (pid ${next.pid})`);
  }

  /** In reverse start order: the distributor creates no more jobs while the executor finishes its own. */
  async #stopAll(): Promise<void> {
    // The reason for stopping first, then the stop's progress; no restart may start behind the stop.
    await this.#deathReport;
    await Promise.all(this.#restarting);
    for (const { daemon, summary } of [...this.#started].reverse()) {
      if (!daemon.running) continue;
      const jobs = daemon.name === 'job-executor' ? ` (running jobs get ${this.options.shutdownTimeoutMs / 1000} s)` : '';
      this.#output.info(`stopping ${summary.label}${jobs}...`);
      await this.#stopOne(daemon);
    }
    if (this.#started.length > 0) this.#output.info(this.#failed ? 'local stack stopped, after a failure' : 'local stack stopped cleanly');
  }

  async #stopOne(daemon: Daemon): Promise<void> {
    this.#stopping.add(daemon);
    const status = await daemon.stop();
    if (status.code === 0 || this.#interrupts >= 3) return;
    this.#failed = true;
    const tail = await daemon.logTail(LOG_TAIL_LINES);
    this.#output.error(
      `local-stack: ${daemon.name} (pid ${daemon.pid}) ${describeExit(status)} while stopping\n--- last lines of ${daemon.logFile} ---\n${tail}`,
    );
  }
}
