/**
 * Where a syntax error is. V8 gives an ES module's SyntaxError no place: its message and stack name
 * only the problem ("Unexpected identifier 'x'"), and Node prints the file, line and caret only for an
 * error nobody caught. A broken drop-in module would be reported without a hint where to look.
 * `node --check` parses the file as the import did and prints `file:line`, the line, and a caret under
 * the culprit; that is read back here. It is run only after an import failed with a SyntaxError.
 */
import { execFile } from 'node:child_process';

export interface SyntaxLocation {
  /** 1-based. */
  readonly line: number;
  /** 1-based; undefined when Node drew no caret. */
  readonly column: number | undefined;
  /** The offending line, trimmed and cut to 200 characters. */
  readonly code: string;
}

const CHECK_TIMEOUT_MS = 10_000;
const MAX_CODE_CHARS = 200;

/** The place of `file`'s syntax error; undefined when `node --check` finds none (the error came from elsewhere). */
export function locateSyntaxError(file: string): Promise<SyntaxLocation | undefined> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--check', file], { timeout: CHECK_TIMEOUT_MS, encoding: 'utf8' }, (_error, _stdout, stderr) => {
      resolve(parseCheckOutput(stderr));
    });
  });
}

/** `<file>:<line>`, the line, then a caret line (`    ^^^^`), as `node --check` prints them first. */
export function parseCheckOutput(stderr: string): SyntaxLocation | undefined {
  const lines = stderr.split('\n');
  const header = lines.findIndex((line) => /^.+:\d+$/.test(line));
  const headerLine = lines[header];
  if (headerLine === undefined) return undefined;
  const line = Number(/:(\d+)$/.exec(headerLine)?.[1]);
  if (!Number.isInteger(line) || line < 1) return undefined;
  const code = lines[header + 1] ?? '';
  const caret = (lines[header + 2] ?? '').indexOf('^');
  const trimmed = code.trim();
  return {
    line,
    column: caret < 0 ? undefined : caret + 1,
    code: trimmed.length > MAX_CODE_CHARS ? `${trimmed.slice(0, MAX_CODE_CHARS - 1)}…` : trimmed,
  };
}

/** `at line 2, column 45: export default ...` */
export function describeSyntaxLocation(location: SyntaxLocation): string {
  const column = location.column === undefined ? '' : `, column ${String(location.column)}`;
  return `at line ${String(location.line)}${column}: ${location.code}`;
}
