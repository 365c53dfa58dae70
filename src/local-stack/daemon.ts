/**
 * One daemon of the local stack, as a child process supervised by src/harness/child-daemon.ts: in a
 * process group of its own, so that a terminal's Ctrl-C reaches only the supervisor, which stops the
 * daemons in order; its output appended to a log file; stopped by its PID (SIGTERM, then SIGKILL after
 * a grace time). What is the local stack's own stays here: its readiness reports over IPC and the
 * tail of this run's log for its failure messages.
 */
import { readFile } from 'node:fs/promises';
import { ChildDaemon, type ExitStatus } from '../harness/child-daemon.js';
import { causeLines } from './death-report.js';
import { messageOf } from '../util/errors.js';
import { isRecord } from '../util/is-record.js';

export { describeExit, type ExitStatus } from '../harness/child-daemon.js';

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

export class Daemon {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  readonly exited: Promise<ExitStatus>;
  readonly #child: ChildDaemon;
  // Where this run's output starts in the (appended) log file, so a tail shows only this run.
  readonly #logOffset: number;
  readonly #messages: unknown[];
  readonly #messageListeners: Set<(message: unknown) => void>;

  private constructor(child: ChildDaemon, logFile: string, messages: unknown[], messageListeners: Set<(message: unknown) => void>) {
    this.#child = child;
    this.name = child.name;
    this.pid = child.pid;
    this.logFile = logFile;
    this.exited = child.exited;
    this.#logOffset = child.logOffset ?? 0;
    this.#messages = messages;
    this.#messageListeners = messageListeners;
  }

  static async spawn(spec: DaemonSpec): Promise<Daemon> {
    // Gathered from the spawn on: a report may come before anyone asks for it.
    const messages: unknown[] = [];
    const messageListeners = new Set<(message: unknown) => void>();
    const child = await ChildDaemon.start({
      name: spec.name,
      command: spec.command,
      args: spec.args,
      env: spec.env,
      // A file rather than a pipe: the daemon's output must not depend on the supervisor reading it.
      stdout: 'log',
      stderr: 'log',
      logFile: { path: spec.logFile, header: `local stack: ${[spec.command, ...spec.args].join(' ')}` },
      detached: true,
      // SIGTERM rather than SIGKILL: a stack never outlives its supervisor by more than the daemons' own clean stop.
      parentDeathSignal: 'SIGTERM',
      stopGraceMs: spec.stopGraceMs,
      ...(spec.ipc === true
        ? {
            onMessage: (message: unknown) => {
              messages.push(message);
              for (const listener of messageListeners) listener(message);
            },
          }
        : {}),
    });
    return new Daemon(child, spec.logFile, messages, messageListeners);
  }

  /** How it ended; undefined while it runs. */
  get exit(): ExitStatus | undefined {
    return this.#child.exit;
  }

  get running(): boolean {
    return this.#child.running;
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
    this.#child.signal(signal);
  }

  /** SIGTERM, SIGKILL after the grace time, resolved on exit. Idempotent: a second caller gets the same stop. */
  stop(): Promise<ExitStatus> {
    return this.#child.stop();
  }

  /** The last `lines` lines this run wrote to its log. */
  async logTail(lines: number): Promise<string> {
    try {
      return (await this.#thisRun()).trimEnd().split('\n').slice(-lines).join('\n');
    } catch (error) {
      return `(cannot read ${this.logFile}: ${messageOf(error)})`;
    }
  }

  /** The last `lines` warnings, errors and non-log lines of this run: where the cause of a death is. */
  async causeTail(lines: number): Promise<string> {
    try {
      const cause = causeLines(await this.#thisRun(), lines);
      return cause.length === 0 ? '(no warning or error in its log)' : cause.join('\n');
    } catch (error) {
      return `(cannot read ${this.logFile}: ${messageOf(error)})`;
    }
  }

  async #thisRun(): Promise<string> {
    return (await readFile(this.logFile)).subarray(this.#logOffset).toString('utf8');
  }
}
