/**
 * Where a command's output goes. Results go to stdout (a table, or JSON only with --json); prompts and
 * warnings go to stderr, so `jobctl ... --json | jq` always sees clean JSON. A live line (the progress
 * bar of `show --follow`) is redrawn in place only on a terminal.
 */
import { createInterface } from 'node:readline/promises';
import type { Readable, Writable } from 'node:stream';

export interface Streams {
  readonly stdout: Writable & { readonly isTTY?: boolean; readonly columns?: number };
  readonly stderr: Writable;
  readonly stdin: Readable & { readonly isTTY?: boolean };
}

const CLEAR_LINE = '\r\x1b[2K';

export class Output {
  readonly #streams: Streams;
  /** The live line is on screen and the cursor sits at its end. */
  #live = false;

  constructor(streams: Streams) {
    this.#streams = streams;
  }

  get isTTY(): boolean {
    return this.#streams.stdout.isTTY === true;
  }

  /** The terminal's width (80 when unknown): a live line longer than this would wrap and not redraw. */
  get columns(): number {
    const columns = this.#streams.stdout.columns;
    return columns !== undefined && columns > 0 ? columns : 80;
  }

  line(text = ''): void {
    this.#write(`${text}\n`);
  }

  lines(texts: readonly string[]): void {
    for (const text of texts) this.line(text);
  }

  /** One JSON document, indented (readable, and every JSON parser takes it). */
  json(value: unknown): void {
    this.#write(`${JSON.stringify(value, null, 2)}\n`);
  }

  /** One line of a JSON-lines stream. */
  jsonLine(value: unknown): void {
    this.#write(`${JSON.stringify(value)}\n`);
  }

  /** Replaces the live line (a terminal only; callers print lines otherwise). */
  live(text: string): void {
    this.#streams.stdout.write(`${CLEAR_LINE}${text}`);
    this.#live = true;
  }

  /** Leaves the live line on screen as a normal line. */
  endLive(): void {
    if (!this.#live) return;
    this.#live = false;
    this.#streams.stdout.write('\n');
  }

  warn(text: string): void {
    this.#streams.stderr.write(`jobctl: ${text}\n`);
  }

  /**
   * Asks a yes/no question on the terminal; undefined when there is no terminal to ask on (stdin
   * not a TTY), so the caller can refuse rather than guess.
   */
  async confirm(question: string, signal: AbortSignal): Promise<boolean | undefined> {
    if (this.#streams.stdin.isTTY !== true) return undefined;
    const prompt = createInterface({ input: this.#streams.stdin, output: this.#streams.stderr });
    try {
      const answer = await prompt.question(`${question} [y/N] `, { signal });
      return /^\s*y(es)?\s*$/i.test(answer);
    } finally {
      prompt.close();
    }
  }

  #write(text: string): void {
    // A line printed while the bar is shown goes above it: clear the bar, print, and let the caller redraw.
    if (this.#live) {
      this.#streams.stdout.write(CLEAR_LINE);
      this.#live = false;
    }
    this.#streams.stdout.write(text);
  }
}
