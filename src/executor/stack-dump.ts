/**
 * What each job's worker thread is executing right now, for the executor's SIGUSR1 dump. A worker stuck in
 * a synchronous loop never yields to its event loop, so no message can ask it for its stack; the inspector
 * can still interrupt it. An in-process Session reaches the workers through the NodeWorker domain, and
 * `Debugger.pause` stops a worker just long enough to copy the frames of `Debugger.paused`. Each capture
 * opens its own Session, so concurrent captures share no state.
 */
import { Session } from 'node:inspector';
import { messageOf } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { RunningJob } from './job-run.js';
import { MAIN_THREAD_ID } from './in-process-runner.js';

/** 1-based line and column, as in an Error stack. */
export interface StackFrame {
  readonly functionName: string;
  readonly url: string;
  readonly line: number;
  readonly column: number;
}

export interface ThreadStack {
  readonly threadId: number;
  /** 'running': JS was on the stack and was paused to read it; 'idle': no JS ran within the wait (the thread awaits I/O or a timer); 'unavailable': the thread could not be inspected (error says why) */
  readonly state: 'running' | 'idle' | 'unavailable';
  readonly frames: readonly StackFrame[];
  /** Why the thread is unavailable, or what went wrong releasing it after its stack was read. */
  readonly error?: string;
}

export interface CaptureOptions {
  /** Per-thread wait for the pause, in milliseconds; default 1000. */
  readonly timeoutMs?: number;
}

const DEFAULT_TIMEOUT_MS = 1000;
const TIMED_OUT: unique symbol = Symbol('timed out');

type Fields = Readonly<Record<string, unknown>>;

function isFields(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function within<T>(promise: Promise<T>, ms: number): Promise<T | typeof TIMED_OUT> {
  let timer: NodeJS.Timeout | undefined;
  let immediate: NodeJS.Immediate | undefined;
  // The event loop runs timers before I/O: after a stall of the main thread, the worker's answer may be waiting
  // unread when the timer fires. Deciding in the check phase, after that I/O, lets an answer that came in time win.
  const timeout = new Promise<typeof TIMED_OUT>((resolve) => {
    timer = setTimeout(() => {
      immediate = setImmediate(resolve, TIMED_OUT);
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer);
    clearImmediate(immediate);
  });
}

function post(session: Session, method: string, params: object): Promise<void> {
  return new Promise((resolve, reject) => {
    session.post(method, params, (error) => {
      if (error === null) resolve();
      else reject(error);
    });
  });
}

/** A CDP call frame of `Debugger.paused`; undefined if it does not have that shape. */
function frameOf(value: unknown, scriptUrls: ReadonlyMap<string, string>): StackFrame | undefined {
  if (!isFields(value) || typeof value.functionName !== 'string' || !isFields(value.location)) return undefined;
  const { scriptId, lineNumber, columnNumber = 0 } = value.location;
  if (typeof scriptId !== 'string' || typeof lineNumber !== 'number' || typeof columnNumber !== 'number') return undefined;
  // V8 leaves the frame's own (deprecated) `url` empty; the script's url came with its `scriptParsed` event.
  const ownUrl = typeof value.url === 'string' ? value.url : '';
  const url = ownUrl !== '' ? ownUrl : (scriptUrls.get(scriptId) ?? '');
  return { functionName: value.functionName, url, line: lineNumber + 1, column: columnNumber + 1 };
}

interface Settle<T> {
  resolve(value: T): void;
  reject(error: Error): void;
}

/** The inspector session into one worker: numbered calls, their replies, and the events we wait for. */
class WorkerChannel {
  private lastId = 0;
  private readonly calls = new Map<number, Settle<undefined>>();
  private readonly scriptUrls = new Map<string, string>();
  private paused = false;
  private exitedWith: Error | undefined;
  private settlePause: Settle<readonly StackFrame[]> | undefined;
  /** The first pause's frames; rejects if the worker exits or the event is malformed. */
  readonly firstPause: Promise<readonly StackFrame[]>;

  constructor(
    private readonly session: Session,
    readonly sessionId: string,
    readonly threadId: number,
  ) {
    this.firstPause = new Promise((resolve, reject) => {
      this.settlePause = { resolve, reject };
    });
    // Only awaited once the pause was asked for; an exit before that must not be an unhandled rejection.
    this.firstPause.catch(() => undefined);
  }

  // Methods, not getters: these change while a caller awaits, which narrowing of a property would hide.
  hasExited(): boolean {
    return this.exitedWith !== undefined;
  }
  isPaused(): boolean {
    return this.paused;
  }

  call(method: string, params: object = {}): Promise<undefined> {
    if (this.exitedWith !== undefined) return Promise.reject(this.exitedWith);
    const id = ++this.lastId;
    const message = JSON.stringify({ id, method, params });
    return new Promise<undefined>((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      post(this.session, 'NodeWorker.sendMessageToWorker', { sessionId: this.sessionId, message }).catch((error: unknown) => {
        this.calls.delete(id);
        reject(new Error(`${method} not delivered: ${messageOf(error)}`, { cause: error }));
      });
    });
  }

  /** A CDP reply or event from the worker, as JSON text: parsed as unknown, and each field checked where read. */
  receive(text: string): void {
    let message: unknown;
    try {
      message = JSON.parse(text);
    } catch {
      return; // Not CDP, so no call or event of ours.
    }
    if (!isFields(message)) return;
    if (typeof message.id === 'number') {
      const call = this.calls.get(message.id);
      this.calls.delete(message.id);
      const { error } = message;
      if (error === undefined) call?.resolve(undefined);
      else call?.reject(new Error(isFields(error) && typeof error.message === 'string' ? error.message : JSON.stringify(error)));
      return;
    }
    const params = isFields(message.params) ? message.params : {};
    if (message.method === 'Debugger.scriptParsed') {
      if (typeof params.scriptId === 'string' && typeof params.url === 'string') this.scriptUrls.set(params.scriptId, params.url);
    } else if (message.method === 'Debugger.paused') {
      this.paused = true;
      const raw = Array.isArray(params.callFrames) ? params.callFrames : undefined;
      const frames = raw?.map((frame) => frameOf(frame, this.scriptUrls));
      if (frames?.every((frame) => frame !== undefined) === true) this.settlePause?.resolve(frames);
      else this.settlePause?.reject(new Error(`malformed Debugger.paused event: ${JSON.stringify(params).slice(0, 200)}`));
    } else if (message.method === 'Debugger.resumed') {
      this.paused = false;
    }
  }

  /** The worker exited (or was terminated, or we detached): nothing it was asked will be answered. */
  detached(): void {
    this.exitedWith ??= new Error('the thread exited during the capture');
    for (const call of this.calls.values()) call.reject(this.exitedWith);
    this.calls.clear();
    this.settlePause?.reject(this.exitedWith);
  }
}

function withProblem(stack: ThreadStack, problem: string): ThreadStack {
  return { ...stack, error: stack.error === undefined ? problem : `${stack.error}; ${problem}` };
}

/** Pauses one worker and reads its frames; never rejects. */
async function captureOne(channel: WorkerChannel, timeoutMs: number): Promise<ThreadStack> {
  const { threadId } = channel;
  const progress = { pauseAnswered: false, gaveUp: false };
  let stack: ThreadStack;
  try {
    const attempt = async (): Promise<readonly StackFrame[]> => {
      await channel.call('Debugger.enable');
      // An answer that comes after the wait ran out must not pause a thread the capture has given up on.
      if (progress.gaveUp) throw new Error('gave up');
      await channel.call('Debugger.pause');
      progress.pauseAnswered = true;
      return channel.firstPause;
    };
    const frames = await within(attempt(), timeoutMs);
    progress.gaveUp = true;
    if (frames !== TIMED_OUT) stack = { threadId, state: 'running', frames };
    // With no JS on its stack, V8 only schedules the pause for the thread's next JS call (a timer, a message).
    else if (progress.pauseAnswered) stack = { threadId, state: 'idle', frames: [] };
    else
      stack = {
        threadId,
        state: 'unavailable',
        frames: [],
        error: `the thread did not answer the inspector within ${timeoutMs} ms (blocked outside JavaScript, as in a synchronous child process or native call, or starved of CPU)`,
      };
  } catch (error) {
    stack = { threadId, state: 'unavailable', frames: [], error: messageOf(error) };
  }
  if (channel.hasExited()) return stack;
  // Disabling cancels a pause still scheduled for an idle thread's next JS call, and resumes a paused thread
  // unless another session holds the pause too. The resume before it is only a courtesy: it fails harmlessly
  // when a concurrent capture resumed first. A thread that does not answer gets both calls, queued behind the
  // pause, without waiting for replies it cannot send yet.
  const release = async (): Promise<string | undefined> => {
    if (channel.isPaused()) await channel.call('Debugger.resume').catch(() => undefined);
    return channel.call('Debugger.disable').then(
      () => undefined,
      (error: unknown) => messageOf(error),
    );
  };
  const released = release();
  if (!progress.pauseAnswered) return stack;
  const problem = await within(released, timeoutMs);
  if (problem === undefined || channel.hasExited()) return stack;
  return withProblem(
    stack,
    `Debugger.disable failed, the thread may stay paused: ${problem === TIMED_OUT ? `no answer within ${timeoutMs} ms` : problem}`,
  );
}

/** Routes the main-thread session's notifications; makes a channel for each wanted worker as it attaches. */
function routeNotification(
  notification: unknown,
  wanted: ReadonlySet<number>,
  channels: Map<string, WorkerChannel>,
  session: Session,
): void {
  if (!isFields(notification) || !isFields(notification.params)) return;
  const { params } = notification;
  const { sessionId } = params;
  if (typeof sessionId !== 'string') return;
  const channel = channels.get(sessionId);
  switch (notification.method) {
    case 'NodeWorker.attachedToWorker': {
      // `workerId` is only this session's counter (equal to `sessionId`); Node puts the thread id in the title.
      const title = isFields(params.workerInfo) ? params.workerInfo.title : undefined;
      const match = typeof title === 'string' ? /^\[worker (\d+)\]/.exec(title) : null;
      const threadId = match?.[1] === undefined ? undefined : Number(match[1]);
      if (threadId !== undefined && wanted.has(threadId)) channels.set(sessionId, new WorkerChannel(session, sessionId, threadId));
      break;
    }
    case 'NodeWorker.detachedFromWorker':
      channel?.detached();
      break;
    case 'NodeWorker.receivedMessageFromWorker':
      if (typeof params.message === 'string') channel?.receive(params.message);
      break;
  }
}

/** Stacks of the given worker threads (by Worker#threadId), captured in parallel; threads not found are 'unavailable'. Never throws for a thread's failure; leaves no debugger enabled and the session disconnected. */
export async function captureThreadStacks(threadIds: readonly number[], options: CaptureOptions = {}): Promise<Map<number, ThreadStack>> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  if (!Number.isFinite(timeoutMs) || timeoutMs <= 0)
    throw new RangeError(`timeoutMs must be a positive number of milliseconds, got ${timeoutMs}`);
  const wanted = new Set(threadIds);
  const unavailable = (threadId: number, error: string): ThreadStack => ({ threadId, state: 'unavailable', frames: [], error });
  const result = (stacks: readonly ThreadStack[]): Map<number, ThreadStack> => new Map(stacks.map((s) => [s.threadId, s]));
  if (wanted.size === 0) return new Map();

  const session = new Session();
  const channels = new Map<string, WorkerChannel>(); // by NodeWorker sessionId
  session.on('inspectorNotification', (notification: unknown) => {
    routeNotification(notification, wanted, channels, session);
  });
  try {
    session.connect();
  } catch (error) {
    return result([...wanted].map((threadId) => unavailable(threadId, `cannot connect to the inspector: ${messageOf(error)}`)));
  }
  let stacks: ThreadStack[];
  try {
    // Every existing worker is attached (and announced) by the time this returns; later ones are not asked for.
    await post(session, 'NodeWorker.enable', { waitForDebuggerOnStart: false });
    stacks = await Promise.all(
      [...wanted].map(async (threadId) => {
        const channel = [...channels.values()].find((c) => c.threadId === threadId);
        if (channel === undefined) return unavailable(threadId, 'no such worker thread (it exited, or is not a child of this thread)');
        const stack = await captureOne(channel, timeoutMs);
        if (channel.hasExited()) return stack;
        return post(session, 'NodeWorker.detach', { sessionId: channel.sessionId }).then(
          () => stack,
          (error: unknown) => withProblem(stack, `NodeWorker.detach: ${messageOf(error)}`),
        );
      }),
    );
  } catch (error) {
    stacks = [...wanted].map((threadId) => unavailable(threadId, `the inspector refused NodeWorker.enable: ${messageOf(error)}`));
  }
  const disabled = await post(session, 'NodeWorker.disable', {}).then(
    () => undefined,
    (error: unknown) => messageOf(error),
  );
  // Disconnecting ends every worker session still attached, so a failed detach or disable leaves nothing behind.
  session.disconnect();
  if (disabled !== undefined) stacks = stacks.map((stack) => withProblem(stack, `NodeWorker.disable: ${disabled}`));
  return result(stacks);
}

/** Multi-line text for a log: "at fn (url:line:column)" per frame, like an Error stack; a note for idle/unavailable. */
export function formatStack(stack: ThreadStack): string {
  const head = `worker thread ${stack.threadId}`;
  switch (stack.state) {
    case 'idle':
      return `${head} is idle: no JavaScript ran within the wait (it awaits I/O or a timer)`;
    case 'unavailable':
      return `${head} could not be inspected: ${stack.error ?? 'unknown reason'}`;
    case 'running': {
      const lines = stack.frames.map(({ functionName, url, line, column }) => {
        const where = `${url === '' ? '<anonymous>' : url}:${line}:${column}`;
        return functionName === '' ? `    at ${where}` : `    at ${functionName} (${where})`;
      });
      if (stack.error !== undefined) lines.push(`    (${stack.error})`);
      return [`${head} is running:`, ...lines].join('\n');
    }
  }
}

/** Logs every running job with the stack of the code its thread runs right now (SIGUSR1). */
function stackText(job: RunningJob, stack: ThreadStack | undefined): string {
  if (job.threadId === MAIN_THREAD_ID)
    return "(an in-process action: it runs in the executor's event loop, which is between calls right now)";
  return stack === undefined ? '(no stack)' : formatStack(stack);
}

export async function logRunningStacks(running: readonly RunningJob[], logger: Logger): Promise<void> {
  if (running.length === 0) {
    logger.info('stack dump: no job is running');
    return;
  }
  // An in-process action runs on this very thread (in-process-runner.ts): no stack of its own to read.
  const stacks = await captureThreadStacks(running.map((job) => job.threadId).filter((id) => id !== MAIN_THREAD_ID));
  const now = Date.now();
  for (const job of running) {
    const stack = stacks.get(job.threadId);
    const elapsedSeconds = Math.round((now - job.startedAt) / 100) / 10;
    const progress =
      job.progress === undefined
        ? 'no progress reported'
        : `progress ${job.progress.percent}%${job.progress.message === undefined ? '' : ` (${job.progress.message})`}`;
    logger.warn(
      `stack dump: job ${job.jobId} (${job.action}) on slot ${job.slot}, running ${elapsedSeconds} s, ${progress}\n${stackText(job, stack)}`,
      { jobId: job.jobId, action: job.action, slot: job.slot, attempt: job.attempt, elapsedSeconds, progress: job.progress },
    );
  }
}
