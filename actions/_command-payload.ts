/**
 * The payload of the bundled `command` action, checked before anything runs (a bad one fails the job
 * with return code 65, naming the field): the program and its arguments, and for a staged run the
 * inputs to copy into a fresh working directory, the outputs to copy out of it, and the placeholders of
 * its arguments. See command.ts and actions/README.md for the contract.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describeValue } from 'zk-job-engine/action';

/** One input: where it comes from, and the name it gets in the working directory. */
export type StageInput =
  | { readonly kind: 'file'; readonly source: string; readonly path: string; readonly name: string }
  | { readonly kind: 'url'; readonly source: string; readonly url: URL; readonly name: string };

export interface StageOutputs {
  /** The destination directory as the job named it (an absolute path). */
  readonly to: string;
  /** Patterns relative to the working directory, `*` and `?` within one path segment. */
  readonly files: readonly string[];
}

/** The directory, inside the working directory, that %OUT names and outputs default to. */
export const OUT_DIR = 'out';
const DEFAULT_OUTPUT_FILES: readonly string[] = [`${OUT_DIR}/*`];

export interface CommandPayload {
  readonly command: string;
  readonly args: readonly string[];
  readonly cwd?: string;
  readonly env?: Readonly<Record<string, string>>;
  readonly input?: string;
  /** Present for a staged run (the payload has `inputs` or `outputs`), absent otherwise. */
  readonly stage?: {
    readonly inputs: readonly StageInput[];
    readonly outputs?: StageOutputs;
  };
}

const FIELDS: ReadonlySet<string> = new Set(['command', 'args', 'cwd', 'env', 'input', 'inputs', 'outputs']);

/** exec(2) takes C strings: a NUL would cut the text short, so it is refused rather than truncated. */
function checkText(value: unknown, field: string, options: { readonly nonEmpty?: boolean } = {}): string {
  if (typeof value !== 'string') throw new Error(`"${field}" must be a string, got ${describeValue(value)}`);
  if (options.nonEmpty === true && value === '') throw new Error(`"${field}" must not be empty`);
  if (value.includes('\0')) throw new Error(`"${field}" must not contain a NUL character`);
  return value;
}

function parseEnv(value: unknown): Record<string, string> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`"env" must be an object of names to string values, got ${describeValue(value)}`);
  }
  const env: Record<string, string> = {};
  for (const [name, text] of Object.entries(value as Record<string, unknown>)) {
    if (name === '' || name.includes('=') || name.includes('\0')) {
      throw new Error(`"env" has an invalid variable name ${JSON.stringify(name)} (empty, or with = or NUL)`);
    }
    env[name] = checkText(text, `env.${name}`);
  }
  return env;
}

export function parseCommandPayload(raw: unknown): CommandPayload {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`payload must be an object such as {"command": "/bin/echo", "args": ["hello"]}, got ${describeValue(raw)}`);
  }
  const fields = raw as Record<string, unknown>;
  const unknown = Object.keys(fields).filter((key) => !FIELDS.has(key));
  if (unknown.length > 0) throw new Error(`unknown payload field(s) ${unknown.join(', ')}; expected ${[...FIELDS].join(', ')}`);
  if (fields.command === undefined) throw new Error('"command" is required: the program to run');
  const command = checkText(fields.command, 'command', { nonEmpty: true });
  let args: string[] = [];
  if (fields.args !== undefined) {
    if (!Array.isArray(fields.args)) throw new Error(`"args" must be an array of strings, got ${describeValue(fields.args)}`);
    args = (fields.args as unknown[]).map((arg, index) => checkText(arg, `args[${index}]`));
  }
  const staged = fields.inputs !== undefined || fields.outputs !== undefined;
  if (staged && fields.cwd !== undefined) {
    throw new Error('"cwd" cannot be given with "inputs" or "outputs": a staged run works in a fresh temporary directory');
  }
  const stage = staged
    ? {
        inputs: fields.inputs === undefined ? [] : parseInputs(fields.inputs),
        ...(fields.outputs === undefined ? {} : { outputs: parseOutputs(fields.outputs) }),
      }
    : undefined;
  // Checked now, with stand-in paths, so that a bad placeholder fails the job before anything is staged.
  if (stage !== undefined) expandArgs(args, { workdir: '/w', inputs: stage.inputs.map((input) => `/w/${input.name}`) });
  return {
    command,
    args,
    ...(fields.cwd === undefined ? {} : { cwd: checkText(fields.cwd, 'cwd', { nonEmpty: true }) }),
    ...(fields.env === undefined ? {} : { env: parseEnv(fields.env) }),
    ...(fields.input === undefined ? {} : { input: checkText(fields.input, 'input') }),
    ...(stage === undefined ? {} : { stage }),
  };
}

/** One path segment that stays where it is put: no separator, not `.` or `..`. */
function checkName(name: string, field: string): string {
  if (name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')) {
    throw new Error(`"${field}" must be a plain file name (no "/", not "." or ".."), got ${JSON.stringify(name)}`);
  }
  if (name === OUT_DIR) throw new Error(`"${field}" must not be "${OUT_DIR}": that is the output directory (%OUT)`);
  return name;
}

function parseInput(value: unknown, index: number): StageInput {
  const field = `inputs[${index}]`;
  let from: unknown = value;
  let name: string | undefined;
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const { from: source, name: given, ...others } = value as Record<string, unknown>;
    if (Object.keys(others).length > 0)
      throw new Error(`"${field}" has unknown field(s) ${Object.keys(others).join(', ')}; expected from, name`);
    from = source;
    if (given !== undefined) name = checkName(checkText(given, `${field}.name`), `${field}.name`);
  }
  const source = checkText(from, typeof value === 'string' ? field : `${field}.from`, { nonEmpty: true });
  if (source.startsWith('/')) {
    return {
      kind: 'file',
      source,
      path: path.normalize(source),
      name: name ?? checkName(path.basename(source), `${field} (its file name)`),
    };
  }
  let url: URL;
  try {
    url = new URL(source);
  } catch {
    throw new Error(`"${field}" must be a file:// URL, an absolute path or an http(s):// URL, got ${JSON.stringify(source)}`);
  }
  if (url.protocol === 'file:') {
    if (url.host !== '' && url.host !== 'localhost')
      throw new Error(`"${field}" names a file on host ${url.host}: only local files (file:///path)`);
    const file = fileURLToPath(url);
    return { kind: 'file', source, path: file, name: name ?? checkName(path.basename(file), `${field} (its file name)`) };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new Error(`"${field}" has scheme ${url.protocol} : inputs are file://, http:// or https://`);
  }
  const last = decodeURIComponent(url.pathname.split('/').pop() ?? '');
  return { kind: 'url', source, url, name: name ?? (last === '' ? `input-${index}` : checkName(last, `${field} (its file name)`)) };
}

function parseInputs(value: unknown): StageInput[] {
  if (!Array.isArray(value)) throw new Error(`"inputs" must be an array of URLs or {"from", "name"} objects, got ${describeValue(value)}`);
  const inputs = (value as unknown[]).map(parseInput);
  const seen = new Set<string>();
  for (const input of inputs) {
    if (seen.has(input.name)) throw new Error(`"inputs" has two inputs named ${JSON.stringify(input.name)}: give one a "name"`);
    seen.add(input.name);
  }
  return inputs;
}

/** A pattern that cannot leave the working directory: relative, no `.` or `..` segment, no `**`. */
function checkPattern(pattern: string, field: string): string {
  if (pattern.startsWith('/')) throw new Error(`"${field}" must be relative to the working directory, got ${JSON.stringify(pattern)}`);
  for (const segment of pattern.split('/')) {
    if (segment === '' || segment === '.' || segment === '..') {
      throw new Error(`"${field}" must stay inside the working directory (no empty, "." or ".." segment), got ${JSON.stringify(pattern)}`);
    }
    if (segment.includes('**'))
      throw new Error(`"${field}": "**" is not supported (use * within one directory level), got ${JSON.stringify(pattern)}`);
  }
  return pattern;
}

function parseOutputs(value: unknown): StageOutputs {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new Error(`"outputs" must be an object such as {"to": "file:///srv/results", "files": ["out/*"]}, got ${describeValue(value)}`);
  }
  const { to, files, ...others } = value as Record<string, unknown>;
  if (Object.keys(others).length > 0)
    throw new Error(`"outputs" has unknown field(s) ${Object.keys(others).join(', ')}; expected to, files`);
  const toText = checkText(to, 'outputs.to', { nonEmpty: true });
  let directory: string;
  if (toText.startsWith('/')) directory = path.normalize(toText);
  else if (toText.startsWith('file:')) {
    try {
      directory = fileURLToPath(toText);
    } catch (error) {
      throw new Error(`"outputs.to" is not a usable file:// URL: ${(error as Error).message}`, { cause: error });
    }
  } else throw new Error(`"outputs.to" must be a file:// URL or an absolute path of a directory, got ${JSON.stringify(toText)}`);
  let patterns = DEFAULT_OUTPUT_FILES;
  if (files !== undefined) {
    if (!Array.isArray(files) || files.length === 0)
      throw new Error(`"outputs.files" must be a non-empty array of patterns, got ${describeValue(files)}`);
    patterns = (files as unknown[]).map((file, index) =>
      checkPattern(checkText(file, `outputs.files[${index}]`, { nonEmpty: true }), `outputs.files[${index}]`),
    );
  }
  return { to: directory, files: patterns };
}

export interface Placeholders {
  readonly workdir: string;
  /** The staged inputs' paths, in the order of `inputs`. */
  readonly inputs: readonly string[];
}

/** `%%`, or `%` and an upper-case word with an optional index: `%IN`, `%IN[0]`, `%OUT`, `%DATA`, `%WORKDIR`. */
const PLACEHOLDER = /%(?:%|([A-Z][A-Z0-9_]*)(?:\[(\d+)\])?)/g;

/**
 * The arguments with their placeholders replaced. `%IN` alone as an argument becomes one argument per
 * input; every other placeholder may sit anywhere in an argument. Throws naming the argument for an
 * unknown placeholder, an index past the inputs, or `%IN` inside a longer argument.
 */
export function expandArgs(args: readonly string[], values: Placeholders): string[] {
  return args.flatMap((arg, position) => {
    if (arg === '%IN') return [...values.inputs];
    return [
      arg.replace(PLACEHOLDER, (whole, name: string | undefined, index: string | undefined) => {
        if (name === undefined) return '%';
        const where = `args[${position}] ${JSON.stringify(arg)}`;
        if (name === 'IN') {
          if (index === undefined)
            throw new Error(
              `${where}: %IN stands for every input, one argument each, so it must be a whole argument; use %IN[0], %IN[1], ... inside a longer one`,
            );
          const input = values.inputs[Number(index)];
          if (input === undefined) throw new Error(`${where}: ${whole} names input ${index}, but there are ${values.inputs.length} inputs`);
          return input;
        }
        if (index !== undefined) throw new Error(`${where}: ${whole}: only %IN takes an index`);
        if (name === 'OUT') return path.join(values.workdir, OUT_DIR);
        if (name === 'DATA' || name === 'WORKDIR') return values.workdir;
        throw new Error(`${where}: unknown placeholder %${name} (known: %IN, %IN[n], %OUT, %DATA, %WORKDIR; write %% for a literal %)`);
      }),
    ];
  });
}
