/**
 * The process side of the bundled `command` action: starts one program in a process group of its own,
 * collects the tail of its output, and stops the whole group on abort or when the program leaves
 * processes behind (see command.ts for the contract). A helper module (leading `_`): the executor's
 * loader does not take it for an action.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { readdir, readFile } from 'node:fs/promises';
import { constants } from 'node:os';
import { setTimeout as delay } from 'node:timers/promises';
import { toError, whenAborted, type Logger } from 'zk-job-engine/action';

/** Output kept for the status message (the API truncates status messages at 100,000 characters). */
export const OUTPUT_LIMIT_BYTES = 64 * 1024;
/** From SIGTERM to SIGKILL of the group. */
const TERM_GRACE_MS = 2000;
/** How long to wait for the group to vanish after SIGKILL before reporting survivors. */
const KILL_WAIT_MS = 1000;
/**
 * After the program exits, how long its output pipes may stay open: a background process it left behind
 * holds them open, and waiting for that forever would keep the job running until its timeout.
 */
const DRAIN_MS = 1000;
const POLL_MS = 25;

/** The executor's variables a program gets: what programs need to behave normally, never credentials. */
const INHERITED_ENV: ReadonlySet<string> = new Set(['PATH', 'HOME', 'USER', 'LOGNAME', 'SHELL', 'LANG', 'LANGUAGE', 'TZ', 'TMPDIR']);

function inheritedEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(process.env)) {
    if (value !== undefined && (INHERITED_ENV.has(name) || name.startsWith('LC_'))) env[name] = value;
  }
  return env;
}

/** The last `limit` bytes of everything pushed, and how much came in total. */
export class OutputTail {
  #chunks: Buffer[] = [];
  #kept = 0;
  #total = 0;

  constructor(private readonly limit: number) {}

  get totalBytes(): number {
    return this.#total;
  }

  get truncated(): boolean {
    return this.#total > this.#kept;
  }

  push(chunk: Buffer): void {
    this.#total += chunk.length;
    this.#chunks.push(chunk);
    this.#kept += chunk.length;
    while (this.#kept > this.limit) {
      const [first] = this.#chunks;
      if (first === undefined) break;
      const excess = this.#kept - this.limit;
      if (first.length <= excess) {
        this.#chunks.shift();
        this.#kept -= first.length;
      } else {
        this.#chunks[0] = first.subarray(excess);
        this.#kept -= excess;
      }
    }
  }

  text(): string {
    let bytes = Buffer.concat(this.#chunks);
    // The cut may fall inside a multi-byte character: drop its continuation bytes (10xxxxxx) rather
    // than show a replacement character at the start.
    if (this.truncated) {
      let start = 0;
      while (start < Math.min(3, bytes.length) && ((bytes[start] ?? 0) & 0xc0) === 0x80) start++;
      bytes = bytes.subarray(start);
    }
    return bytes.toString('utf8');
  }
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

function errnoOf(error: unknown): string | undefined {
  const code: unknown = typeof error === 'object' && error !== null ? Reflect.get(error, 'code') : undefined;
  return typeof code === 'string' ? code : undefined;
}

/** False when no process of the group is left to signal. */
function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if (errnoOf(error) === 'ESRCH') return false;
    // EPERM: members exist but none may be signalled by us (e.g. a setuid program); keep watching them.
    if (errnoOf(error) === 'EPERM') return true;
    throw toError(error);
  }
}

/**
 * Whether a live process is left in the group. kill(2) also counts zombies, which are dead but wait for
 * their parent to collect them, and a grandchild's new parent (init, or a container's PID 1) may take its
 * time or never do it: on Linux the members' states are read from /proc to tell the two apart.
 */
async function groupAlive(pgid: number): Promise<boolean> {
  try {
    process.kill(-pgid, 0);
  } catch (error) {
    return errnoOf(error) === 'EPERM';
  }
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return true; // no /proc: trust kill(2)
  }
  const states = await Promise.all(
    entries
      .filter((entry) => /^\d+$/.test(entry))
      .map(async (pid) => {
        try {
          // `pid (comm) state ppid pgrp ...`; comm may hold spaces and parentheses, so split after its last ')'.
          const text = await readFile(`/proc/${pid}/stat`, 'utf8');
          const [state, , pgrp] = text.slice(text.lastIndexOf(')') + 2).split(' ');
          return Number(pgrp) === pgid && state !== 'Z';
        } catch {
          return false; // exited while the list was read
        }
      }),
  );
  return states.some(Boolean);
}

async function groupGoneWithin(pgid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    if (!(await groupAlive(pgid))) return true;
    if (Date.now() >= deadline) return false;
    await delay(POLL_MS);
  }
}

/** SIGTERM to the whole group, SIGKILL after TERM_GRACE_MS; resolves once no live member is left (or it gave up). */
async function stopGroup(pgid: number, log: Logger): Promise<void> {
  if (!signalGroup(pgid, 'SIGTERM')) return;
  if (!(await groupGoneWithin(pgid, TERM_GRACE_MS))) {
    log.warn('process group still alive after SIGTERM, sending SIGKILL', { pgid, graceMs: TERM_GRACE_MS });
  }
  // Sent even when only zombies are left: it costs them nothing, and it catches a process forked while
  // the group was being read.
  if (!signalGroup(pgid, 'SIGKILL')) return;
  if (!(await groupGoneWithin(pgid, KILL_WAIT_MS))) {
    log.error('processes of the group survived SIGKILL', { pgid });
  }
}

/** Resolves true when `promise` settles within `ms`, false otherwise; never leaves a timer behind. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  const timer = new AbortController();
  try {
    return await Promise.race([
      promise.then(
        () => true,
        () => true,
      ),
      delay(ms, false, { signal: timer.signal }),
    ]);
  } finally {
    timer.abort();
  }
}

export function returnCodeOf(exit: Exit): number {
  if (exit.code !== null) return exit.code;
  const number = exit.signal === null ? undefined : constants.signals[exit.signal];
  // Neither a code nor a known signal does not happen on POSIX; 128 still reads as "abnormal end".
  return 128 + (number ?? 0);
}

export function messageOf(exit: Exit, output: OutputTail, notes: readonly string[]): string {
  const status = exit.code !== null ? `exit ${exit.code}` : `killed by ${exit.signal ?? 'an unknown signal'}`;
  const lines = [status, ...notes];
  if (output.truncated) {
    lines.push(`[output truncated: the last ${OUTPUT_LIMIT_BYTES} of ${output.totalBytes} bytes follow]`);
  }
  const text = output.text();
  return text === '' ? lines.join('\n') : `${lines.join('\n')}\n${text}`;
}

export interface ProgramRun {
  /** The path to execute (as the program policy answered it). */
  readonly program: string;
  /** The name the job gave, the program's argv[0]. */
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string | undefined;
  readonly env?: Readonly<Record<string, string>> | undefined;
  readonly input?: string | undefined;
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly progress: (percent: number, message?: string) => void;
}

export interface ProgramEnd {
  readonly exit: Exit;
  readonly output: OutputTail;
  /** Lines for the status message about what was done to the program's group. */
  readonly notes: readonly string[];
}

/** Runs the program to its end; throws the signal's reason on abort, once its whole group is gone. */
export async function runProgram(run: ProgramRun): Promise<ProgramEnd> {
  const { program, command, args, cwd, env, input, signal, log } = run;
  // The allowed (real) path is what runs, so a link swapped after the check changes nothing; the
  // program still sees the name the job gave as its argv[0].
  const child = spawn(program, args, {
    argv0: command,
    ...(cwd === undefined ? {} : { cwd }),
    env: { ...inheritedEnv(), ...env },
    // Its own process group (and session), so that the group can be signalled as a whole.
    detached: true,
    // Standard input is always a pipe, ended at once when there is no input: the program reads EOF.
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  // Listeners before the first await: exit and output may come as soon as the process starts.
  const exited = new Promise<Exit>((resolve) => {
    child.once('exit', (code, exitSignal) => {
      resolve({ code, signal: exitSignal });
    });
  });
  const closed = new Promise<void>((resolve) => {
    child.once('close', () => {
      resolve();
    });
  });
  const output = new OutputTail(OUTPUT_LIMIT_BYTES);
  const collect = (chunk: Buffer): void => {
    output.push(chunk);
  };
  child.stdout.on('data', collect);
  child.stderr.on('data', collect);
  // A program that exits without reading all of its input closes the pipe: EPIPE, not a failure of the job.
  child.stdin.on('error', (error) => {
    log.debug('standard input of the command not fully written', { command, error });
  });

  const abort = whenAborted(signal);
  try {
    try {
      await once(child, 'spawn');
    } catch (error) {
      throw new Error(`command ${JSON.stringify(command)} could not be started: ${toError(error).message}`, { cause: error });
    }
    const pid = child.pid;
    if (pid === undefined) throw new Error(`command ${JSON.stringify(command)} started without a process id`);
    child.stdin.end(input);
    log.info('command started', { command, args, pid });
    run.progress(0, `running ${command} as pid ${pid}`);

    const exit = await Promise.race([exited, abort.promise]);
    if (exit === undefined) {
      log.info('stopping the command on abort', { pid, reason: toError(signal.reason).message });
      await stopGroup(pid, log);
      signal.throwIfAborted();
      // Not reached (the signal is aborted, so the line above threw); the compiler cannot know that.
      throw new Error('aborted');
    }
    const drained = await settlesWithin(Promise.race([closed, abort.promise]), DRAIN_MS);
    if (signal.aborted) {
      await stopGroup(pid, log);
      signal.throwIfAborted();
    }
    const notes: string[] = [];
    if (!drained || (await groupAlive(pid))) {
      // Background processes it started are still running (and may be holding its output open).
      log.warn('stopping processes the command left running in its process group', { pid });
      notes.push('[processes it left running in its process group were stopped]');
      await stopGroup(pid, log);
      await settlesWithin(closed, DRAIN_MS);
    }
    signal.throwIfAborted();
    log.info('command ended', { pid, returnCode: returnCodeOf(exit), signal: exit.signal, outputBytes: output.totalBytes });
    return { exit, output, notes };
  } finally {
    abort.dispose();
    // Whatever happened, no pipe of the child stays open in this thread.
    child.stdout.destroy();
    child.stderr.destroy();
    child.stdin.destroy();
  }
}
