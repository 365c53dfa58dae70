/**
 * One daemon of the local stack as a child process: in a process group of its own, so that a
 * terminal's Ctrl-C reaches only the supervisor, which stops the daemons in order; its output appended
 * to a log file; stopped by its PID (SIGTERM, then SIGKILL after a grace time).
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { isRecord } from '../util/is-record.js';

// The kernel sends the child SIGTERM when the supervisor dies, even by SIGKILL, when no exit handler
// of ours can run: a stack never outlives its supervisor by more than the daemons' own clean stop.
const SETPRIV = '/usr/bin/setpriv';

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface DaemonSpec {
  /** For messages and the log file's name, e.g. "job-api". */
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly logFile: string;
  /** From SIGTERM to SIGKILL on `stop()`. */
  readonly stopGraceMs: number;
  /** An IPC channel: the daemon reports with `process.send` (the ZooKeeper keeper does). */
  readonly ipc?: boolean;
}

export function describeExit(status: ExitStatus): string {
  return status.signal === null ? `exited with code ${String(status.code)}` : `was killed by ${status.signal}`;
}

export class Daemon {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly exited: Promise<ExitStatus>;
  readonly #stopGraceMs: number;
  // Where this run's output starts in the (appended) log file, so a tail shows only this run.
  readonly #logOffset: number;
  readonly #messages: unknown[] = [];
  readonly #messageListeners = new Set<(message: unknown) => void>();
  #exit: ExitStatus | undefined;
  #stopping: Promise<ExitStatus> | undefined;

  private constructor(spec: DaemonSpec, pid: number, logOffset: number, exited: Promise<ExitStatus>) {
    this.name = spec.name;
    this.pid = pid;
    this.logFile = spec.logFile;
    this.#stopGraceMs = spec.stopGraceMs;
    this.#logOffset = logOffset;
    this.exited = exited.then((status) => (this.#exit = status));
  }

  static async spawn(spec: DaemonSpec): Promise<Daemon> {
    // A file descriptor rather than a pipe: the daemon's output must not depend on the supervisor
    // reading it (a full pipe blocks the writer; a closed one kills it with EPIPE).
    const log = await open(spec.logFile, 'a');
    try {
      const { size } = await log.stat();
      await log.write(`--- ${new Date().toISOString()} local stack: ${[spec.command, ...spec.args].join(' ')}\n`);
      const [command, ...args] = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'TERM', spec.command, ...spec.args] : [spec.command, ...spec.args];
      const child = spawn(command, args, {
        detached: true,
        env: spec.env,
        stdio: spec.ipc === true ? ['ignore', log.fd, log.fd, 'ipc'] : ['ignore', log.fd, log.fd],
      });
      const { pid } = child;
      if (pid === undefined) {
        const [failure] = (await once(child, 'error')) as unknown[];
        throw new Error(`${spec.name} could not be started (${command}): ${failure instanceof Error ? failure.message : String(failure)}`);
      }
      const exited = new Promise<ExitStatus>((resolve) => {
        child.once('exit', (code, signal) => {
          resolve({ code, signal });
        });
      });
      const daemon = new Daemon(spec, pid, size, exited);
      child.on('message', (message: unknown) => {
        daemon.#messages.push(message);
        for (const listener of daemon.#messageListeners) listener(message);
      });
      return daemon;
    } finally {
      await log.close();
    }
  }

  /** How it ended; undefined while it runs. */
  get exit(): ExitStatus | undefined {
    return this.#exit;
  }

  get running(): boolean {
    return this.#exit === undefined;
  }

  /** The first IPC message (so far or to come) that `accept` turns into a value. */
  message<T>(accept: (message: Record<string, unknown>) => T | undefined): Promise<T> {
    return new Promise((resolve) => {
      const check = (message: unknown): boolean => {
        const value = isRecord(message) ? accept(message) : undefined;
        if (value === undefined) return false;
        this.#messageListeners.delete(listener);
        resolve(value);
        return true;
      };
      const listener = (message: unknown): void => {
        check(message);
      };
      if (this.#messages.some(check)) return;
      this.#messageListeners.add(listener);
    });
  }

  /** By PID; a daemon that has already exited is left alone. */
  signal(signal: NodeJS.Signals): void {
    if (this.#exit !== undefined) return;
    try {
      process.kill(this.pid, signal);
    } catch (error) {
      // ESRCH: it has just died and its exit event is on its way.
      if (!(error instanceof Error && 'code' in error && error.code === 'ESRCH')) throw error;
    }
  }

  /** SIGTERM, SIGKILL after the grace time, resolved on exit. Idempotent: a second caller gets the same stop. */
  stop(): Promise<ExitStatus> {
    this.#stopping ??= this.#terminate();
    return this.#stopping;
  }

  async #terminate(): Promise<ExitStatus> {
    this.signal('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const graceOver = new Promise<'grace over'>((resolve) => {
      timer = setTimeout(resolve, this.#stopGraceMs, 'grace over');
    });
    try {
      if ((await Promise.race([this.exited, graceOver])) === 'grace over') this.signal('SIGKILL');
    } finally {
      clearTimeout(timer);
    }
    return this.exited;
  }

  /** The last `lines` lines this run wrote to its log. */
  async logTail(lines: number): Promise<string> {
    try {
      const text = (await readFile(this.logFile)).subarray(this.#logOffset).toString('utf8');
      return text.trimEnd().split('\n').slice(-lines).join('\n');
    } catch (error) {
      return `(cannot read ${this.logFile}: ${error instanceof Error ? error.message : String(error)})`;
    }
  }
}
