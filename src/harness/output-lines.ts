/**
 * One output stream of a child process (stdout or stderr), read line by line: a bounded buffer of its
 * lines, a count that goes on past the bound, optionally its raw text, listeners for each new line,
 * and a wait for a line matching a pattern that ends on that line, on a deadline or on the stream's end.
 */
import type { Readable } from 'node:stream';
import { createInterface } from 'node:readline';

export interface CollectOptions {
  /** How many lines are kept (default 10 000); `count` goes on past it. */
  readonly keptLines?: number;
  /**
   * Which lines stay once the bound is reached: the latest (default: what a process said last is what
   * explains its end) or the first (a report of how it started, where later lines are repetition).
   */
  readonly keep?: 'first' | 'last';
  /**
   * Also keep the raw text, up to this many characters (default 0: none): the output of a command run
   * to completion, exactly as printed (lines lose their line ends, and readline also splits on a lone CR).
   */
  readonly keptChars?: number;
}

type CompiledCollect = Readonly<Required<CollectOptions>>;

export const COLLECT_DEFAULTS: CompiledCollect = Object.freeze({ keptLines: 10_000, keep: 'last', keptChars: 0 });

const WAIT_DEFAULT_MS = 20_000;
// Lines quoted in the error of a wait that failed: enough to see what the process was doing.
const QUOTED_LINES = 30;

export class OutputLines {
  /** For messages: e.g. "job-api (pid 42) stderr". */
  readonly name: string;
  /** Resolved once the stream has ended and its last line has been delivered (at once if not collected). */
  readonly closed: Promise<void>;
  readonly #options: CompiledCollect;
  readonly #collected: boolean;
  // With `keep: 'last'`, the lines before #start have been dropped; compacted now and then, not per line.
  readonly #lines: string[] = [];
  #start = 0;
  #count = 0;
  #text = '';
  #ended = false;
  readonly #listeners = new Set<(line: string) => void>();
  readonly #endListeners = new Set<() => void>();

  private constructor(name: string, options: CompiledCollect, collected: boolean, closed: Promise<void>) {
    this.name = name;
    this.#options = options;
    this.#collected = collected;
    this.closed = closed;
  }

  /** Reads `stream` from now on. */
  static collect(name: string, stream: Readable, options: CollectOptions = {}): OutputLines {
    const compiled: CompiledCollect = Object.freeze({ ...COLLECT_DEFAULTS, ...options });
    let markClosed = (): void => undefined;
    const closed = new Promise<void>((resolve) => {
      markClosed = resolve;
    });
    const output = new OutputLines(name, compiled, true, closed);
    if (compiled.keptChars > 0) {
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => {
        output.#addText(chunk);
      });
    }
    createInterface({ input: stream }).on('line', (line) => {
      output.#addLine(line);
    });
    // 'close' comes after 'end', by which time readline has delivered the last, unterminated line.
    stream.once('close', () => {
      output.#end();
      markClosed();
    });
    return output;
  }

  /** A stream that is not read here (ignored, inherited or sent to a file): no lines, ever. */
  static notCollected(name: string): OutputLines {
    const output = new OutputLines(name, COLLECT_DEFAULTS, false, Promise.resolve());
    output.#ended = true;
    return output;
  }

  /** The lines kept so far, oldest first. */
  get lines(): readonly string[] {
    return this.#start === 0 ? this.#lines : this.#lines.slice(this.#start);
  }

  /** Every line seen, kept or not. */
  get count(): number {
    return this.#count;
  }

  /** The raw text kept so far (empty unless `keptChars` was given). */
  get text(): string {
    return this.#text;
  }

  get ended(): boolean {
    return this.#ended;
  }

  /** Calls `listener` with each line from now on; returns the function that stops it. */
  onLine(listener: (line: string) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  /** The last `count` lines kept. */
  tail(count: number): readonly string[] {
    return this.lines.slice(-count);
  }

  /**
   * The first kept line (from the start) matching `pattern`, or the first to come. Rejects after
   * `timeoutMs`, or as soon as the stream ends without one: it cannot come any more.
   */
  waitForLine(pattern: RegExp, timeoutMs = WAIT_DEFAULT_MS): Promise<string> {
    const found = this.lines.find((line) => pattern.test(line));
    if (found !== undefined) return Promise.resolve(found);
    if (this.#ended)
      return Promise.reject(this.#waitError(pattern, this.#collected ? 'it ended without it' : 'this output is not collected'));
    return new Promise((resolve, reject) => {
      const onLine = (line: string): void => {
        if (!pattern.test(line)) return;
        finish();
        resolve(line);
      };
      const onEnd = (): void => {
        finish();
        reject(this.#waitError(pattern, 'it ended without it'));
      };
      const timer = setTimeout(() => {
        finish();
        reject(this.#waitError(pattern, `not within ${String(timeoutMs)} ms`));
      }, timeoutMs);
      const finish = (): void => {
        clearTimeout(timer);
        this.#listeners.delete(onLine);
        this.#endListeners.delete(onEnd);
      };
      this.#listeners.add(onLine);
      this.#endListeners.add(onEnd);
    });
  }

  #waitError(pattern: RegExp, why: string): Error {
    return new Error(
      `waiting for ${this.name} to print ${String(pattern)}: ${why}; its last lines:\n${this.tail(QUOTED_LINES).join('\n')}`,
    );
  }

  #addLine(line: string): void {
    this.#count += 1;
    const { keptLines, keep } = this.#options;
    if (keep === 'first') {
      if (this.#lines.length < keptLines) this.#lines.push(line);
    } else {
      this.#lines.push(line);
      if (this.#lines.length - this.#start > keptLines) this.#start += 1;
      // Dropping the head in one splice once it is as long as the bound keeps each line O(1) on average.
      if (this.#start >= keptLines) {
        this.#lines.splice(0, this.#start);
        this.#start = 0;
      }
    }
    for (const listener of [...this.#listeners]) listener(line);
  }

  #addText(chunk: string): void {
    const room = this.#options.keptChars - this.#text.length;
    if (room > 0) this.#text += chunk.length <= room ? chunk : chunk.slice(0, room);
  }

  #end(): void {
    this.#ended = true;
    for (const listener of [...this.#endListeners]) listener();
  }
}
