/**
 * One daemon of the chaos cluster (job-api, an executor, a distributor) run from source, as
 * systemd would run it: started again after a fault killed or stopped it, and after it exited on its
 * own (`Restart=on-failure`), which is counted, since a daemon that gives up under faults is a finding.
 * Its log goes to a file in the run's directory, kept across restarts.
 */
import { fileURLToPath } from 'node:url';
import { ChildDaemon, describeExit, type ExitStatus } from '../src/harness/child-daemon.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const STOP_GRACE_MS = 20_000;
/** Between an unexpected exit and the restart, as systemd's RestartSec. */
const RESTART_DELAY_MS = 1000;

export interface DaemonSpec {
  /** Unique in the run, e.g. "executor-2". */
  readonly name: string;
  /** Under src/bin, e.g. "job-executor.ts". */
  readonly bin: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly logFile: string;
}

export interface UnexpectedExit {
  readonly daemon: string;
  readonly at: number;
  readonly how: string;
}

export class ChaosDaemon {
  readonly spec: DaemonSpec;
  #child: ChildDaemon | undefined;
  /** Exits we caused (kill, SIGTERM) are expected; others are counted. */
  #expectingExit = false;
  #paused = false;
  #closed = false;
  readonly #onUnexpectedExit: (exit: UnexpectedExit) => void;

  constructor(spec: DaemonSpec, onUnexpectedExit: (exit: UnexpectedExit) => void) {
    this.spec = spec;
    this.#onUnexpectedExit = onUnexpectedExit;
  }

  get name(): string {
    return this.spec.name;
  }

  get pid(): number | undefined {
    return this.#child?.running === true ? this.#child.pid : undefined;
  }

  get running(): boolean {
    return this.#child?.running === true;
  }

  get paused(): boolean {
    return this.#paused;
  }

  start(): void {
    if (this.#closed || this.running) return;
    this.#expectingExit = false;
    const child = ChildDaemon.spawn({
      name: this.spec.name,
      command: process.execPath,
      args: ['--import', 'tsx', `${ROOT}src/bin/${this.spec.bin}`, ...this.spec.args],
      env: { ...process.env, ...this.spec.env },
      cwd: ROOT,
      stdout: 'log',
      stderr: 'log',
      logFile: { path: this.spec.logFile, header: `--- ${new Date().toISOString()} ${this.spec.name} ${this.spec.args.join(' ')}` },
      parentDeathSignal: 'SIGKILL',
      stopGraceMs: STOP_GRACE_MS,
    });
    this.#child = child;
    void child.exited.then((status) => {
      this.#exited(child, status);
    });
  }

  #exited(child: ChildDaemon, status: ExitStatus): void {
    if (this.#child !== child || this.#expectingExit || this.#closed) return;
    this.#onUnexpectedExit({ daemon: this.spec.name, at: Date.now(), how: describeExit(status) });
    setTimeout(() => {
      if (this.#child === child) this.start();
    }, RESTART_DELAY_MS);
  }

  /** kill -9; the exit is awaited. */
  async kill(): Promise<void> {
    const child = this.#child;
    if (child === undefined || !child.running) return;
    this.#expectingExit = true;
    this.#paused = false;
    await child.kill();
  }

  /** SIGTERM (a graceful shutdown), its exit awaited (SIGKILL after the grace). */
  async terminate(): Promise<ExitStatus | undefined> {
    const child = this.#child;
    if (child === undefined || !child.running) return undefined;
    this.#expectingExit = true;
    if (this.#paused) this.resume();
    return child.stop();
  }

  pause(): void {
    if (this.#child?.running !== true || this.#paused) return;
    this.#paused = true;
    this.#child.signal('SIGSTOP');
  }

  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#child?.signal('SIGCONT');
  }

  /** For good: no restart after this. */
  async close(): Promise<void> {
    this.#closed = true;
    this.resume();
    await this.#child?.stop();
  }
}
