/**
 * One child process under supervision: the local stack's daemons, the benchmark's daemons and the
 * tests' daemons and jobctl runs are all started, watched and stopped through this one class.
 *
 * It spawns (optionally under `setpriv --pdeathsig`, so that the kernel signals the child when this
 * process dies, even by SIGKILL, when no exit handler of ours can run), sends each output stream where
 * it was asked to (ignored, inherited, appended to a log file, or read line by line into a bounded
 * buffer), reports how the process ended, and stops it: SIGTERM, SIGKILL after a grace time, its exit
 * awaited. Signals go to the child's own PID only, never to a process group, and never after its exit
 * has been seen (the PID may belong to someone else by then).
 *
 *   RUNNING -> STOPPING -> EXITED      (or RUNNING -> EXITED when it ends on its own)
 */
import { spawn, type ChildProcess, type StdioOptions } from 'node:child_process';
import { once } from 'node:events';
import { closeSync, existsSync, fstatSync, openSync, writeSync } from 'node:fs';
import { toError } from '../util/errors.js';
import { OutputLines, type CollectOptions } from './output-lines.js';

export type { CollectOptions } from './output-lines.js';
export { OutputLines } from './output-lines.js';

const SETPRIV = '/usr/bin/setpriv';
const DEFAULT_STOP_GRACE_MS = 10_000;

export interface ExitStatus {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export function describeExit(status: ExitStatus): string {
  return status.signal === null ? `exited with code ${String(status.code)}` : `was killed by ${status.signal}`;
}

/**
 * Where one output stream goes: nowhere, to this process's own stream, appended to `logFile`, or read
 * here line by line ('collect' with the default bounds, or `{ collect }` with others).
 */
export type OutputChoice = 'ignore' | 'inherit' | 'log' | 'collect' | { readonly collect: CollectOptions };

export interface ChildDaemonOptions {
  /** For messages, e.g. "job-api". */
  readonly name: string;
  readonly command: string;
  readonly args?: readonly string[];
  /** The whole environment of the child (default: this process's). */
  readonly env?: NodeJS.ProcessEnv;
  readonly cwd?: string;
  /** Written to the child's stdin, which is then closed; without it, stdin is /dev/null. */
  readonly input?: string;
  /** Default 'ignore'. */
  readonly stdout?: OutputChoice;
  /** Default 'collect'. */
  readonly stderr?: OutputChoice;
  /**
   * Where 'log' outputs go: opened for appending, a header line written first. A file rather than a
   * pipe keeps a long-running daemon independent of this process reading its output (a full pipe
   * blocks the writer; a closed one kills it with EPIPE).
   */
  readonly logFile?: { readonly path: string; readonly header?: string };
  /** Gives the child an IPC channel; each message it sends (`process.send`) comes here. */
  readonly onMessage?: (message: unknown) => void;
  /** In a process group of its own, so that a terminal's Ctrl-C reaches this process only. */
  readonly detached?: boolean;
  /** Under `setpriv --pdeathsig`, where /usr/bin/setpriv exists (it execs: the PID is the command's). */
  readonly parentDeathSignal?: 'SIGTERM' | 'SIGKILL';
  /** From SIGTERM to SIGKILL in `stop()` (default 10 s). */
  readonly stopGraceMs?: number;
}

interface CompiledOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string | undefined;
  readonly input: string | undefined;
  readonly stdout: OutputChoice;
  readonly stderr: OutputChoice;
  readonly logFile: { readonly path: string; readonly header: string } | undefined;
  readonly onMessage: ((message: unknown) => void) | undefined;
  readonly detached: boolean;
  readonly parentDeathSignal: 'SIGTERM' | 'SIGKILL' | undefined;
  readonly stopGraceMs: number;
}

function compile(options: ChildDaemonOptions): CompiledOptions {
  const args = Object.freeze([...(options.args ?? [])]);
  const stdout = options.stdout ?? 'ignore';
  const stderr = options.stderr ?? 'collect';
  if ((stdout === 'log' || stderr === 'log') && options.logFile === undefined)
    throw new Error(`${options.name}: an output goes to 'log' but no logFile is given`);
  return Object.freeze({
    name: options.name,
    command: options.command,
    args,
    env: options.env ?? process.env,
    cwd: options.cwd,
    input: options.input,
    stdout,
    stderr,
    logFile:
      options.logFile === undefined
        ? undefined
        : Object.freeze({ path: options.logFile.path, header: options.logFile.header ?? [options.command, ...args].join(' ') }),
    onMessage: options.onMessage,
    detached: options.detached ?? false,
    parentDeathSignal: options.parentDeathSignal,
    stopGraceMs: options.stopGraceMs ?? DEFAULT_STOP_GRACE_MS,
  });
}

/** The command line actually run: the command itself, or setpriv exec'ing it. */
function commandLine(options: CompiledOptions): readonly [string, ...string[]] {
  const { command, args, parentDeathSignal } = options;
  if (parentDeathSignal === undefined || !existsSync(SETPRIV)) return [command, ...args];
  return [SETPRIV, '--pdeathsig', parentDeathSignal.replace(/^SIG/, ''), command, ...args];
}

type StdioEntry = Extract<StdioOptions, readonly unknown[]>[number];

function stdioOf(choice: OutputChoice, logFd: number | undefined): StdioEntry {
  if (choice === 'ignore' || choice === 'inherit') return choice;
  if (choice === 'log') return logFd;
  return 'pipe';
}

function collectOptionsOf(choice: OutputChoice): CollectOptions | undefined {
  if (choice === 'collect') return {};
  return typeof choice === 'object' ? choice.collect : undefined;
}

/** Opens the log for appending and writes the header; where this run starts in it, for a tail of this run only. */
function openLog(logFile: { readonly path: string; readonly header: string }): { readonly fd: number; readonly offset: number } {
  const fd = openSync(logFile.path, 'a');
  try {
    const offset = fstatSync(fd).size;
    writeSync(fd, `--- ${new Date().toISOString()} ${logFile.header}\n`);
    return { fd, offset };
  } catch (error) {
    closeSync(fd);
    throw toError(error);
  }
}

interface Launched {
  readonly child: ChildProcess;
  readonly logOffset: number | undefined;
}

/** Spawns; the log file's descriptor is closed here once the child holds its own copy. */
function launch(options: CompiledOptions): Launched {
  const log = options.logFile === undefined ? undefined : openLog(options.logFile);
  try {
    const [file, ...args] = commandLine(options);
    const stdio: StdioEntry[] = [
      options.input === undefined ? 'ignore' : 'pipe',
      stdioOf(options.stdout, log?.fd),
      stdioOf(options.stderr, log?.fd),
    ];
    if (options.onMessage !== undefined) stdio.push('ipc');
    const child = spawn(file, args, {
      env: options.env,
      stdio,
      detached: options.detached,
      ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    });
    return { child, logOffset: log?.offset };
  } finally {
    if (log !== undefined) closeSync(log.fd);
  }
}

/** The process's exit as soon as its event comes: signals stop then, before the output is all read. */
interface ExitWatch {
  readonly promise: Promise<ExitStatus>;
  status(): ExitStatus | undefined;
}

function watchExit(child: ChildProcess): ExitWatch {
  let seen: ExitStatus | undefined;
  const promise = new Promise<ExitStatus>((resolve) => {
    child.once('exit', (code, signal) => {
      seen = { code, signal };
      resolve(seen);
    });
  });
  return { promise, status: () => seen };
}

interface Watched {
  readonly pid: number;
  readonly stdout: OutputLines;
  readonly stderr: OutputLines;
  readonly exit: ExitWatch;
}

export type ChildState = 'RUNNING' | 'STOPPING' | 'EXITED';

export class ChildDaemon {
  readonly name: string;
  readonly pid: number;
  readonly stdout: OutputLines;
  readonly stderr: OutputLines;
  /** The log file's path, if any output goes there. */
  readonly logFile: string | undefined;
  /** Where this run's output starts in the (appended) log file. */
  readonly logOffset: number | undefined;
  /**
   * How it ended, once it has exited and its collected output has been read to the end (so a caller
   * sees its last lines). A grandchild that inherited a collected pipe holds this back until it too
   * has closed it; a log file or an ignored output does not.
   */
  readonly exited: Promise<ExitStatus>;
  readonly #child: ChildProcess;
  readonly #options: CompiledOptions;
  readonly #exitWatch: ExitWatch;
  #stopping: Promise<ExitStatus> | undefined;
  #lastError: Error | undefined;

  private constructor(options: CompiledOptions, launched: Launched, watched: Watched) {
    this.#options = options;
    this.#child = launched.child;
    this.name = options.name;
    this.pid = watched.pid;
    this.logFile = options.logFile?.path;
    this.logOffset = launched.logOffset;
    this.stdout = watched.stdout;
    this.stderr = watched.stderr;
    this.#exitWatch = watched.exit;
    this.exited = Promise.all([watched.exit.promise, watched.stdout.closed, watched.stderr.closed]).then(([status]) => status);
  }

  /**
   * Spawns at once. Throws if the system gave no process; its reason comes later, as an event, which
   * `start()` waits for: use it where the reason matters.
   */
  static spawn(options: ChildDaemonOptions): ChildDaemon {
    const compiled = compile(options);
    const launched = launch(compiled);
    const { pid } = launched.child;
    if (pid === undefined) {
      // The reason is emitted later; without a listener it would crash this process.
      launched.child.once('error', () => undefined);
      throw new Error(`${compiled.name} could not be started (${compiled.command})`);
    }
    return ChildDaemon.#wire(compiled, launched, pid);
  }

  /** Spawns; a failure to spawn rejects with the system's reason as the cause. */
  static async start(options: ChildDaemonOptions): Promise<ChildDaemon> {
    const compiled = compile(options);
    const launched = launch(compiled);
    const { pid } = launched.child;
    if (pid === undefined) {
      const [failure] = (await once(launched.child, 'error')) as unknown[];
      const cause = toError(failure);
      throw new Error(`${compiled.name} could not be started (${compiled.command}): ${cause.message}`, { cause });
    }
    return ChildDaemon.#wire(compiled, launched, pid);
  }

  /** Listens to everything the child process object reports, before any of it can be emitted. */
  static #wire(options: CompiledOptions, launched: Launched, pid: number): ChildDaemon {
    const { child } = launched;
    const daemon = new ChildDaemon(options, launched, {
      pid,
      stdout: outputOf(options.name, pid, 'stdout', options.stdout, child.stdout),
      stderr: outputOf(options.name, pid, 'stderr', options.stderr, child.stderr),
      exit: watchExit(child),
    });
    // A failed kill other than "already gone", or a broken channel: kept for the curious, never a crash.
    child.on('error', (error: unknown) => {
      daemon.#lastError = toError(error);
    });
    if (options.onMessage !== undefined) child.on('message', options.onMessage);
    if (options.input !== undefined && child.stdin !== null) {
      // A child that exits without reading its input closes the pipe: EPIPE is no news then.
      child.stdin.on('error', (error: unknown) => {
        daemon.#lastError = toError(error);
      });
      child.stdin.end(options.input);
    }
    return daemon;
  }

  get state(): ChildState {
    if (this.exit !== undefined) return 'EXITED';
    return this.#stopping === undefined ? 'RUNNING' : 'STOPPING';
  }

  /** How the process ended; undefined while it runs. */
  get exit(): ExitStatus | undefined {
    return this.#exitWatch.status();
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** The last error the child process object reported (a failed signal, a broken stdin), if any. */
  get lastError(): Error | undefined {
    return this.#lastError;
  }

  /** To this child's PID; a process whose exit has been seen is left alone. */
  signal(signal: NodeJS.Signals): void {
    if (this.exit !== undefined) return;
    // By the child's own handle (its PID); "no such process" means its exit event is on its way.
    this.#child.kill(signal);
  }

  /**
   * SIGTERM, SIGKILL if it has not exited after `graceMs` (default: the options' `stopGraceMs`),
   * resolved with how it ended. Idempotent: a second caller gets the stop in flight, grace and all.
   */
  stop(options: { readonly graceMs?: number } = {}): Promise<ExitStatus> {
    this.#stopping ??= this.#terminate(options.graceMs ?? this.#options.stopGraceMs);
    return this.#stopping;
  }

  /** SIGKILL now (a crash, as far as the child can tell), resolved with how it ended. */
  kill(): Promise<ExitStatus> {
    this.signal('SIGKILL');
    return this.exited;
  }

  async #terminate(graceMs: number): Promise<ExitStatus> {
    this.signal('SIGTERM');
    const timer = setTimeout(() => {
      this.signal('SIGKILL');
    }, graceMs);
    try {
      await this.#exitWatch.promise;
    } finally {
      clearTimeout(timer);
    }
    return this.exited;
  }
}

function outputOf(
  name: string,
  pid: number,
  stream: 'stdout' | 'stderr',
  choice: OutputChoice,
  readable: ChildProcess['stdout'],
): OutputLines {
  const label = `${name} (pid ${String(pid)}) ${stream}`;
  const collect = collectOptionsOf(choice);
  if (collect === undefined || readable === null) return OutputLines.notCollected(label);
  return OutputLines.collect(label, readable, collect);
}
