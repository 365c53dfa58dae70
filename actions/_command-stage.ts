/**
 * Stage-in and stage-out of the bundled `command` action (HyperFlow's executor in spirit): a fresh
 * working directory per run, the job's inputs copied or downloaded into it before the program starts,
 * the outputs it produced copied out to a directory after it succeeded, and the directory removed in
 * every case. What may be read, written and fetched is the executor operator's rule (context.staging):
 * nothing here trusts a path or URL a job gives.
 */
import { constants, createWriteStream } from 'node:fs';
import { copyFile, lstat, mkdir, mkdtemp, readdir, realpath, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { randomBytes } from 'node:crypto';
import { toError, type StagePolicy } from 'zk-job-engine/action';
import { OUT_DIR, type StageInput, type StageOutputs } from './_command-payload.js';

/** What one stage moved, for the status message and the stage event. */
export interface StageStats {
  readonly files: number;
  readonly bytes: number;
  readonly ms: number;
}

export interface WorkDir {
  /** Its real path (the work root may be a symlink, e.g. /tmp on some systems). */
  readonly path: string;
  remove(): Promise<void>;
}

export async function makeWorkDir(policy: StagePolicy): Promise<WorkDir> {
  const made = await mkdtemp(path.join(policy.workRoot, 'zkje-command-'));
  const real = await realpath(made);
  await mkdir(path.join(real, OUT_DIR));
  return { path: real, remove: () => rm(real, { recursive: true, force: true, maxRetries: 3 }) };
}

export function stageLine(stage: 'stage-in' | 'stage-out', stats: StageStats): string {
  return `${stage}: ${stats.files} files, ${stats.bytes} bytes in ${(stats.ms / 1000).toFixed(3)} s`;
}

/** Counts bytes through a pipe and fails it once they pass `limit`. */
function byteCounter(limit: number, what: string): Transform & { readonly count: () => number } {
  let count = 0;
  const counter = new Transform({
    transform(chunk: Buffer, _encoding, done) {
      count += chunk.length;
      if (count > limit) done(new Error(`${what} is larger than the ${limit} bytes left of --command-input-max-bytes`));
      else done(null, chunk);
    },
  });
  return Object.assign(counter, { count: () => count });
}

async function download(
  input: Extract<StageInput, { kind: 'url' }>,
  target: string,
  left: number,
  policy: StagePolicy,
  signal: AbortSignal,
): Promise<number> {
  // Loaded on first use: most command jobs fetch nothing, and axios costs each thread a few MB.
  const { default: axios } = await import('axios');
  // One deadline for the whole download, from request to last byte, on top of the job's own signal.
  const deadline = AbortSignal.any([signal, AbortSignal.timeout(policy.fetchTimeoutMs)]);
  const what = `input ${input.source}`;
  try {
    const response = await axios.get<NodeJS.ReadableStream>(input.url.href, {
      responseType: 'stream',
      signal: deadline,
      // A redirect could lead to an origin the operator did not list: not followed.
      maxRedirects: 0,
      validateStatus: () => true,
      // The job's bytes as they are: no decompression behind the size cap's back.
      decompress: false,
    });
    const stream = response.data as NodeJS.ReadableStream & { destroy?: () => void };
    if (response.status < 200 || response.status > 299) {
      stream.destroy?.();
      const location = typeof response.headers.location === 'string' ? ` to ${response.headers.location} (redirects are not followed)` : '';
      throw new Error(`${what}: HTTP ${response.status}${location}`);
    }
    const announced = Number(response.headers['content-length']);
    if (Number.isFinite(announced) && announced > left) {
      stream.destroy?.();
      throw new Error(`${what} is ${announced} bytes, more than the ${left} bytes left of --command-input-max-bytes`);
    }
    const counter = byteCounter(left, what);
    await pipeline(stream, counter, createWriteStream(target, { flags: 'wx' }), { signal: deadline });
    return counter.count();
  } catch (error) {
    signal.throwIfAborted();
    if (deadline.aborted)
      throw new Error(`${what}: not downloaded within --command-fetch-timeout (${policy.fetchTimeoutMs / 1000} s)`, { cause: error });
    const failure = toError(error);
    throw failure.message.startsWith(what) ? failure : new Error(`${what} could not be fetched: ${failure.message}`, { cause: error });
  }
}

/**
 * Copies or downloads every input into `workdir` under its name; returns their paths, in order. Every
 * input is checked against the policy before the first byte moves, so a refused one stages nothing.
 */
export async function stageIn(
  inputs: readonly StageInput[],
  workdir: string,
  policy: StagePolicy,
  signal: AbortSignal,
): Promise<{ readonly paths: string[]; readonly stats: StageStats }> {
  const started = performance.now();
  const sources = await Promise.all(
    inputs.map(async (input) => {
      if (input.kind === 'url') {
        policy.checkFetch(input.url);
        return undefined;
      }
      return policy.readableFile(input.path);
    }),
  );
  let bytes = 0;
  const paths: string[] = [];
  for (const [index, input] of inputs.entries()) {
    signal.throwIfAborted();
    const target = path.join(workdir, input.name);
    const left = policy.maxInputBytes - bytes;
    const source = sources[index];
    if (source === undefined) {
      if (input.kind === 'url') bytes += await download(input, target, left, policy, signal);
    } else {
      const { size } = await stat(source);
      if (size > left)
        throw new Error(`input ${input.source} is ${size} bytes, more than the ${left} bytes left of --command-input-max-bytes`);
      await copyFile(source, target, constants.COPYFILE_EXCL);
      // The file may have grown between the two looks: what counts is what was copied.
      const copied = (await stat(target)).size;
      if (copied > left)
        throw new Error(
          `input ${input.source} grew to ${copied} bytes while copied, more than the ${left} bytes left of --command-input-max-bytes`,
        );
      bytes += copied;
    }
    paths.push(target);
  }
  return { paths, stats: { files: inputs.length, bytes, ms: performance.now() - started } };
}

/** `*` any run of characters but `/`, `?` one of them; the rest literal. */
function segmentMatcher(segment: string): RegExp {
  const body = segment.replace(/[\\^$.|+()[\]{}*?]/g, (char) => (char === '*' ? '[^/]*' : char === '?' ? '[^/]' : `\\${char}`));
  return new RegExp(`^${body}$`);
}

const isPattern = (segment: string): boolean => segment.includes('*') || segment.includes('?');

/**
 * The entries under `workdir` matching `pattern`, relative to it. Directories are descended only when
 * they are real directories (a symlink to a directory is never followed out of the working directory).
 */
async function matches(workdir: string, pattern: string): Promise<string[]> {
  let found = [''];
  for (const segment of pattern.split('/')) {
    const next: string[] = [];
    for (const base of found) {
      const directory = path.join(workdir, base);
      const info = await lstat(directory).catch(() => undefined);
      if (base !== '' && (info === undefined || !info.isDirectory())) continue;
      if (!isPattern(segment)) {
        if ((await lstat(path.join(directory, segment)).catch(() => undefined)) !== undefined) next.push(path.join(base, segment));
        continue;
      }
      const matcher = segmentMatcher(segment);
      const names = await readdir(directory).catch(() => [] as string[]);
      for (const name of names.sort()) if (matcher.test(name)) next.push(path.join(base, name));
    }
    found = next;
  }
  return found;
}

/** Where a matched file goes under the destination: its path below the pattern's last literal directory. */
function relativeTarget(pattern: string, match: string): string {
  const segments = pattern.split('/');
  let fixed = 0;
  while (fixed < segments.length - 1 && !isPattern(segments[fixed] ?? '')) fixed++;
  return match.split(path.sep).slice(fixed).join(path.sep);
}

/**
 * Copies the files matching `outputs.files` out to `outputs.to`. A pattern that matches nothing, a
 * match that is not a regular file, or one whose real path leaves the working directory (a symlink the
 * program made to a file of the host) fails the stage naming it. Each file is written under a temporary
 * name then renamed, so a symlink planted in the destination is replaced, never written through.
 */
export async function stageOut(outputs: StageOutputs, workdir: string, policy: StagePolicy, signal: AbortSignal): Promise<StageStats> {
  const started = performance.now();
  const destination = await policy.writableDirectory(outputs.to);
  const copies: { readonly source: string; readonly relative: string; readonly match: string }[] = [];
  for (const pattern of outputs.files) {
    const found = await matches(workdir, pattern);
    if (found.length === 0) throw new Error(`output ${JSON.stringify(pattern)} matched no file in the working directory`);
    for (const match of found) {
      const real = await realpath(path.join(workdir, match));
      const relativeToWork = path.relative(workdir, real);
      if (relativeToWork.startsWith('..') || path.isAbsolute(relativeToWork)) {
        throw new Error(`output ${JSON.stringify(match)} is a link to ${real}, outside the working directory: not staged out`);
      }
      if (!(await stat(real)).isFile()) throw new Error(`output ${JSON.stringify(match)} is not a regular file`);
      copies.push({ source: real, relative: relativeTarget(pattern, match), match });
    }
  }
  let bytes = 0;
  for (const { source, relative, match } of copies) {
    signal.throwIfAborted();
    const target = path.join(destination, relative);
    await mkdir(path.dirname(target), { recursive: true });
    // A directory of the destination may itself be a link planted there: the file must still land inside it.
    const parent = await realpath(path.dirname(target));
    const inside = path.relative(destination, parent);
    if (inside.startsWith('..') || path.isAbsolute(inside))
      throw new Error(`output ${JSON.stringify(match)} would be written to ${parent}, outside ${destination}`);
    const temporary = path.join(parent, `.${path.basename(target)}.${randomBytes(6).toString('hex')}.part`);
    try {
      await copyFile(source, temporary, constants.COPYFILE_EXCL);
      await rename(temporary, path.join(parent, path.basename(target)));
    } catch (error) {
      await rm(temporary, { force: true });
      throw new Error(`output ${JSON.stringify(match)} could not be copied to ${target}: ${toError(error).message}`, { cause: error });
    }
    bytes += (await stat(source)).size;
  }
  return { files: copies.length, bytes, ms: performance.now() - started };
}
