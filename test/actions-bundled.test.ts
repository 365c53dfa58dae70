/**
 * The bundled actions of `actions/` (dummy_test_action, cleanup_jobs, command), loaded as the executor
 * loads them and run against a real job API: each test creates its job through the API, moves it to
 * RUNNING as an executor would, and hands `run` the context the executor builds.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, beforeEach, describe, test } from 'node:test';
import { JobApiClient } from '../src/api/client/index.js';
import type { JobDocument, JobState } from '../src/api/job/document.js';
import type { ActionContext, ActionDefinition, ActionOutcome } from '../src/sdk/action.js';
import { ANY_PROGRAM } from '../src/executor/program-allowlist.js';
import { stagePolicy } from '../src/executor/stage-policy.js';
import { ActionPayloadError, parseJobPayload } from '../src/sdk/action-payload.js';
import { loadActions, type LoadedActions } from '../src/executor/action-loader.js';
import { waitFor } from '../src/harness/wait-for.js';
import { silentLogger, type Logger } from '../src/util/logger.js';
import { startTestApi, type TestApi } from './fixtures/api-server.js';

const actionsDir = path.join(path.dirname(fileURLToPath(import.meta.url)), '..', 'actions');
const DAY_MS = 86_400_000;
const OUTPUT_LIMIT = 64 * 1024;

interface LogRecord {
  readonly level: 'error' | 'warn' | 'info' | 'debug';
  readonly message: string;
  readonly meta: Record<string, unknown> | undefined;
}

interface ProgressReport {
  readonly percent: number;
  readonly message: string | undefined;
}

interface Run {
  readonly job: JobDocument;
  readonly controller: AbortController;
  readonly progress: ProgressReport[];
  readonly logs: LogRecord[];
  /** What `run` returned (or the error it threw); never rejects, so an unawaited run cannot fail the file. */
  readonly settled: Promise<{ readonly ok: true; readonly value: ActionOutcome } | { readonly ok: false; readonly error: unknown }>;
}

let api: TestApi;
let client: JobApiClient;
let loaded: LoadedActions;
/** Processes the tests learnt about, killed at the end if a failed test left them running. */
const seenPids = new Set<number>();

function capturingLogger(records: LogRecord[]): Logger {
  const at =
    (level: LogRecord['level']) =>
    (message: string, meta?: Record<string, unknown>): void => {
      records.push({ level, message, meta });
    };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug') };
}

function definitionOf(name: string): ActionDefinition {
  const action = loaded.actions.get(name);
  assert.ok(action, `action ${name} not loaded from ${actionsDir}`);
  return action.definition;
}

/** A job as the executor sees it when it starts the action: created through the API, then RUNNING. */
async function runningJob(action: string, payload: unknown, through: JobApiClient = client): Promise<JobDocument> {
  const { id } = await through.create({ action, ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }) });
  return client.edit(id, { state: 'RUNNING' });
}

async function payloadError(action: string, payload: unknown): Promise<string> {
  const job = await runningJob(action, payload);
  try {
    parseJobPayload(definitionOf(action), job);
  } catch (error) {
    assert.ok(error instanceof ActionPayloadError, `expected an ActionPayloadError, got ${String(error)}`);
    return error.message;
  }
  assert.fail(`payload ${JSON.stringify(payload)} was accepted by ${action}`);
}

interface RunOptions {
  readonly api?: JobApiClient;
  /** Abort before `run` is called, as when the job is cancelled while it starts. */
  readonly abortedWith?: Error;
}

async function startRun(action: string, payload: unknown, options: RunOptions = {}): Promise<Run> {
  const definition = definitionOf(action);
  const job = await runningJob(action, payload);
  const controller = new AbortController();
  if (options.abortedWith !== undefined) controller.abort(options.abortedWith);
  const progress: ProgressReport[] = [];
  const logs: LogRecord[] = [];
  const context: ActionContext = {
    job,
    payload: parseJobPayload(definition, job),
    signal: controller.signal,
    log: capturingLogger(logs),
    progress(percent, message) {
      progress.push({ percent, message });
    },
    api: options.api ?? client,
    programs: ANY_PROGRAM,
    staging: stagePolicy({ workRoot: tmpdir(), dirs: [], fetchFrom: [], maxInputBytes: 0, fetchTimeoutMs: 1000 }),
  };
  const settled = Promise.resolve()
    .then(() => definition.run(context))
    .then(
      (value) => ({ ok: true, value }) as const,
      (error: unknown) => ({ ok: false, error }) as const,
    );
  return { job, controller, progress, logs, settled };
}

async function outcomeOf(run: Run): Promise<ActionOutcome> {
  const result = await run.settled;
  if (!result.ok) throw result.error;
  return result.value;
}

/** The result of an action that returns `{ returnCode?, message? }`. */
async function resultOf(run: Run): Promise<{ returnCode: number; message: string }> {
  const outcome = await outcomeOf(run);
  assert.ok(typeof outcome === 'object', `expected a result object, got ${JSON.stringify(outcome)}`);
  assert.equal(typeof outcome.message, 'string');
  return { returnCode: outcome.returnCode ?? 0, message: outcome.message ?? '' };
}

async function errorOf(run: Run): Promise<unknown> {
  const result = await run.settled;
  if (result.ok) assert.fail(`expected the action to fail, it returned ${JSON.stringify(result.value)}`);
  return result.error;
}

/** Dead: no such process, or a zombie (exited, waiting for a parent that may never reap it, e.g. a container's init). */
async function processGone(pid: number): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

async function assertGone(pids: readonly number[], timeoutMs = 5000): Promise<void> {
  for (const pid of pids) {
    await waitFor(() => processGone(pid), { timeoutMs, message: `process ${pid} to be gone` });
  }
}

/** The command's pid, from the progress report it makes once started. */
async function commandPid(run: Run): Promise<number> {
  const pid = await waitFor(
    () => {
      const match = run.progress.map((p) => /as pid (\d+)/.exec(p.message ?? '')).find((m) => m !== null);
      return match?.[1] === undefined ? undefined : Number(match[1]);
    },
    { timeoutMs: 10_000, message: 'the command to start' },
  );
  seenPids.add(pid);
  return pid;
}

/** A pid a test program wrote to a file. */
async function pidFrom(file: string): Promise<number> {
  const pid = await waitFor(
    async () => {
      const text = await readFile(file, 'utf8').catch(() => '');
      return /^\d+\n$/.test(text) ? Number(text.trim()) : undefined;
    },
    { timeoutMs: 10_000, message: `a pid in ${file}` },
  );
  seenPids.add(pid);
  return pid;
}

before(async () => {
  api = await startTestApi();
  client = await JobApiClient.create({ baseUrl: api.baseUrl, credentials: api.adminKey });
  loaded = await loadActions([actionsDir], silentLogger);
});

after(async () => {
  for (const pid of seenPids) {
    if (!(await processGone(pid))) process.kill(pid, 'SIGKILL');
  }
  await client.close();
  await api.close();
});

test('the loader finds exactly the three bundled actions', () => {
  assert.deepEqual(loaded.failures, []);
  assert.deepEqual([...loaded.actions.keys()], ['cleanup_jobs', 'command', 'dummy_test_action']);
  assert.equal(definitionOf('cleanup_jobs').timeoutSeconds, 600);
  assert.equal(definitionOf('command').timeoutSeconds, 3600);
});

describe('dummy_test_action', () => {
  test('sleeps, reporting progress from 0 to 100', async () => {
    const run = await startRun('dummy_test_action', { seconds: 0.3 });
    const started = Date.now();
    assert.deepEqual(await outcomeOf(run), { message: 'slept 0.3 s' });
    assert.ok(Date.now() - started >= 290, 'returned before the time it was asked to sleep');
    const percents = run.progress.map((p) => p.percent);
    assert.equal(percents[0], 0);
    assert.equal(percents.at(-1), 100);
    assert.ok(percents.length >= 5, `progress should move along the way, got ${percents.join(', ')}`);
    assert.deepEqual(
      [...percents].sort((a, b) => a - b),
      percents,
      'progress never goes back',
    );
  });

  test('sleeps 5 s without a payload, and 0 s when asked', async () => {
    const job = await runningJob('dummy_test_action', undefined);
    assert.deepEqual(parseJobPayload(definitionOf('dummy_test_action'), job), { seconds: 5 });
    const run = await startRun('dummy_test_action', { seconds: 0 });
    assert.deepEqual(await outcomeOf(run), { message: 'slept 0 s' });
  });

  test('rejects with the signal reason promptly on abort', async () => {
    const run = await startRun('dummy_test_action', { seconds: 600 });
    await waitFor(() => run.progress.length > 0, { message: 'the first progress report' });
    const reason = new Error('cancelled by the test');
    const abortedAt = Date.now();
    run.controller.abort(reason);
    assert.equal(await errorOf(run), reason);
    assert.ok(Date.now() - abortedAt < 500, `took ${Date.now() - abortedAt} ms to stop`);
  });

  const refusals: [string, unknown, RegExp][] = [
    ['a negative time', { seconds: -1 }, /"seconds" must be a number from 0 to 3600, got -1/],
    ['too long a time', { seconds: 3601 }, /"seconds" must be a number from 0 to 3600, got 3601/],
    ['a string', { seconds: '5' }, /"seconds" must be a number .*got "5"/],
    ['a misspelt field', { second: 5 }, /unknown payload field\(s\) second; expected "seconds"/],
    ['a bare number', 5, /payload must be an object such as \{"seconds": 5\}, got 5/],
  ];
  for (const [what, payload, message] of refusals) {
    test(`refuses ${what}`, async () => {
      const error = await payloadError('dummy_test_action', payload);
      assert.match(error, /rejected by action dummy_test_action/);
      assert.match(error, message);
    });
  }
});

describe('cleanup_jobs', () => {
  // The action deletes across the whole store: each test starts from an empty one, so counts are its own.
  beforeEach(async () => {
    await api.store.deleteMatching(undefined);
  });

  /** A job in `state`, last updated `ageMs` ago: moved there through the API, then backdated in the store. */
  async function jobIn(state: JobState, ageMs: number): Promise<string> {
    const { id } = await client.create({ action: 'some_work' });
    if (state !== 'QUEUED') await client.edit(id, { state: 'RUNNING' });
    if (state === 'CANCELED') await client.cancel(id);
    else if (state === 'SUCCESS' || state === 'FAILED') await client.edit(id, { state, 'return-code': state === 'SUCCESS' ? 0 : 1 });
    // The server stamps `updated` itself; only the store can say the job ended in the past.
    const updated = new Date(Date.now() - ageMs).toISOString();
    await api.store.update(id, (job) => ({ ...job, updated, revision: job.revision + 1 }));
    return id;
  }

  async function remainingOf(ids: readonly string[]): Promise<Set<string>> {
    const { jobs } = await client.search({ select: ['state'], last: 10_000 });
    const all = new Set(jobs.map((job) => job.id));
    return new Set(ids.filter((id) => all.has(id)));
  }

  test('deletes final jobs older than 7 days by default, and nothing else', async () => {
    const old = [await jobIn('SUCCESS', 8 * DAY_MS), await jobIn('FAILED', 30 * DAY_MS), await jobIn('CANCELED', 7 * DAY_MS + 60_000)];
    const kept = [
      await jobIn('SUCCESS', 6 * DAY_MS),
      await jobIn('FAILED', 0),
      await jobIn('CANCELED', 7 * DAY_MS - 60_000),
      await jobIn('QUEUED', 30 * DAY_MS),
      await jobIn('RUNNING', 30 * DAY_MS),
    ];
    const run = await startRun('cleanup_jobs', undefined);
    // Its own job, old as well: still RUNNING, so it must survive.
    await api.store.update(run.job.id, (job) => ({
      ...job,
      updated: new Date(Date.now() - 30 * DAY_MS).toISOString(),
      revision: job.revision + 1,
    }));
    const { returnCode, message } = await resultOf(run);
    assert.equal(returnCode, 0);
    assert.match(message, /^deleted 3 final jobs older than 7 days \(last updated before \d{4}-\d\d-\d\dT[\d:.]+Z\)$/);
    assert.deepEqual(await remainingOf([...old, ...kept, run.job.id]), new Set([...kept, run.job.id]));
  });

  test('takes a fractional age in days', async () => {
    const old = await jobIn('SUCCESS', 13 * 3_600_000);
    const recent = await jobIn('SUCCESS', 11 * 3_600_000);
    const run = await startRun('cleanup_jobs', { olderThanDays: 0.5 });
    assert.match((await resultOf(run)).message, /^deleted 1 final job older than 0\.5 days/);
    assert.deepEqual(await remainingOf([old, recent]), new Set([recent]));
  });

  test('fails clearly with an API key that may not delete', async () => {
    const viewerKey = await api.createKey('viewer');
    const viewerClient = await JobApiClient.create({ baseUrl: api.baseUrl, credentials: viewerKey });
    try {
      const old = await jobIn('SUCCESS', 30 * DAY_MS);
      const run = await startRun('cleanup_jobs', undefined, { api: viewerClient });
      const error = await errorOf(run);
      assert.ok(error instanceof Error);
      assert.match(error.message, /cleanup_jobs needs an API key that may delete final jobs \(role maintenance, operator or admin\)/);
      assert.deepEqual(await remainingOf([old]), new Set([old]));
    } finally {
      await viewerClient.close();
    }
  });

  test('deletes nothing when aborted before it starts', async () => {
    const old = await jobIn('FAILED', 30 * DAY_MS);
    const reason = new Error('shutting down');
    const run = await startRun('cleanup_jobs', { olderThanDays: 1 }, { abortedWith: reason });
    assert.equal(await errorOf(run), reason);
    assert.deepEqual(await remainingOf([old]), new Set([old]));
  });

  const refusals: [string, unknown, RegExp][] = [
    ['zero days', { olderThanDays: 0 }, /"olderThanDays" must be a number of days above 0 and at most 36500, got 0/],
    ['negative days', { olderThanDays: -2 }, /"olderThanDays" must be .*got -2/],
    ['a string', { olderThanDays: '7' }, /"olderThanDays" must be .*got "7"/],
    ['a misspelt field', { olderThan: 7 }, /unknown payload field\(s\) olderThan; expected "olderThanDays"/],
    ['an array', [7], /payload must be an object .*got an array/],
  ];
  for (const [what, payload, message] of refusals) {
    test(`refuses ${what}`, async () => {
      const error = await payloadError('cleanup_jobs', payload);
      assert.match(error, /rejected by action cleanup_jobs/);
      assert.match(error, message);
    });
  }
});

describe('command', () => {
  let scratch: string;
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'command-action-'));
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  test('returns exit 0 with stdout and stderr, given env, cwd and input', async () => {
    const run = await startRun('command', {
      command: 'sh',
      args: ['-c', 'echo "out $GREETING"; echo err >&2; pwd; cat'],
      env: { GREETING: 'hello' },
      cwd: scratch,
      input: 'from stdin\n',
    });
    const { returnCode, message } = await resultOf(run);
    assert.equal(returnCode, 0);
    const [status, ...rest] = message.split('\n');
    assert.equal(status, 'exit 0');
    // stdout and stderr are separate pipes: their relative order is not defined, their content is.
    assert.deepEqual(rest.filter((line) => line !== '').sort(), ['err', 'from stdin', 'out hello', scratch].sort());
  });

  test('returns a non-zero exit code as the return code', async () => {
    const run = await startRun('command', { command: 'sh', args: ['-c', 'echo failing; exit 3'] });
    assert.deepEqual(await resultOf(run), { returnCode: 3, message: 'exit 3\nfailing\n' });
  });

  test('returns 128 + the signal number when a signal killed it', async () => {
    const run = await startRun('command', { command: 'sh', args: ['-c', 'kill -TERM $$'] });
    assert.deepEqual(await resultOf(run), { returnCode: 143, message: 'killed by SIGTERM' });
  });

  test('fails, naming the program, when it cannot be started', async () => {
    for (const command of ['/nonexistent/program', 'no-such-program-on-the-path']) {
      const error = await errorOf(await startRun('command', { command, args: ['x'] }));
      assert.ok(error instanceof Error);
      assert.match(error.message, new RegExp(`^command "${command}" could not be started: .*ENOENT`));
    }
    const error = await errorOf(await startRun('command', { command: 'true', cwd: path.join(scratch, 'missing') }));
    assert.ok(error instanceof Error);
    assert.match(error.message, /"cwd" ".*missing" is not usable: .*ENOENT/);
  });

  test('keeps the last 64 KiB of output and says so', async () => {
    // 99,997 two-byte characters and 5 ASCII bytes: the last 64 KiB start with the second byte of a character.
    const total = 2 * 99_997 + 5;
    const script = "process.stdout.write('é'.repeat(99997) + 'xyEND')";
    const { returnCode, message } = await resultOf(await startRun('command', { command: process.execPath, args: ['-e', script] }));
    assert.equal(returnCode, 0);
    const [status, note, ...rest] = message.split('\n');
    assert.equal(status, 'exit 0');
    assert.equal(note, `[output truncated: the last ${OUTPUT_LIMIT} of ${total} bytes follow]`);
    const output = rest.join('\n');
    assert.ok(output.endsWith('éxyEND'));
    // The cut fell inside a two-byte character: its lone second byte is dropped, not shown as U+FFFD.
    assert.ok(!output.includes('\uFFFD'));
    assert.equal(Buffer.byteLength(output), OUTPUT_LIMIT - 1);
  });

  test('on abort, kills its whole process group (grandchildren too) and rejects with the reason', async () => {
    const pidFile = path.join(scratch, 'grandchild-abort.pid');
    const run = await startRun('command', { command: 'sh', args: ['-c', 'sleep 1000 & echo $! > "$1"; wait', 'sh', pidFile] });
    const child = await commandPid(run);
    const grandchild = await pidFrom(pidFile);
    assert.equal(await processGone(grandchild), false);
    const reason = new Error('job timed out');
    const abortedAt = Date.now();
    run.controller.abort(reason);
    assert.equal(await errorOf(run), reason);
    // Both die of SIGTERM, long before the SIGKILL that would follow 2 s later.
    assert.ok(Date.now() - abortedAt < 1500, `took ${Date.now() - abortedAt} ms`);
    await assertGone([child, grandchild], 1000);
  });

  test('on abort, SIGKILLs a grandchild that ignores SIGTERM', async () => {
    const pidFile = path.join(scratch, 'grandchild-stubborn.pid');
    const script = '(trap "" TERM; exec sleep 1000) & echo $! > "$1"; wait';
    const run = await startRun('command', { command: 'sh', args: ['-c', script, 'sh', pidFile] });
    const child = await commandPid(run);
    const grandchild = await pidFrom(pidFile);
    const abortedAt = Date.now();
    run.controller.abort(new Error('cancelled'));
    const error = await errorOf(run);
    assert.ok(error instanceof Error && error.message === 'cancelled');
    const took = Date.now() - abortedAt;
    assert.ok(took >= 1900 && took < 5000, `took ${took} ms`);
    assert.ok(run.logs.some((r) => r.level === 'warn' && /still alive after SIGTERM, sending SIGKILL/.test(r.message)));
    await assertGone([child, grandchild], 1000);
  });

  test('stops processes it leaves behind in its group when it exits', async () => {
    // One detached from the output pipes, one still holding stdout open (the action stops waiting for it).
    for (const redirect of ['> /dev/null 2>&1', '']) {
      const run = await startRun('command', { command: 'sh', args: ['-c', `sleep 1000 ${redirect} & echo $!`] });
      const { returnCode, message } = await resultOf(run);
      assert.equal(returnCode, 0);
      const [status, note, pidLine] = message.split('\n');
      assert.equal(status, 'exit 0');
      assert.equal(note, '[processes it left running in its process group were stopped]');
      const stray = Number(pidLine);
      seenPids.add(stray);
      await assertGone([stray], 1000);
    }
  });

  const refusals: [string, unknown, RegExp][] = [
    ['no payload', undefined, /payload must be an object such as \{"command": .*got a value of type undefined/],
    ['a missing command', { args: [] }, /"command" is required/],
    ['an empty command', { command: '' }, /"command" must not be empty/],
    ['a command that is not a string', { command: ['ls'] }, /"command" must be a string, got an array/],
    ['args that are not an array', { command: 'ls', args: '-l' }, /"args" must be an array of strings, got "-l"/],
    ['an arg that is not a string', { command: 'ls', args: ['-l', 3] }, /"args\[1\]" must be a string, got 3/],
    ['an arg with a NUL', { command: 'ls', args: ['a\u0000b'] }, /"args\[0\]" must not contain a NUL character/],
    ['an empty cwd', { command: 'ls', cwd: '' }, /"cwd" must not be empty/],
    ['env that is not an object', { command: 'ls', env: ['A=1'] }, /"env" must be an object of names to string values, got an array/],
    ['an env value that is not a string', { command: 'ls', env: { A: 1 } }, /"env\.A" must be a string, got 1/],
    ['an env name with =', { command: 'ls', env: { 'A=B': 'x' } }, /"env" has an invalid variable name "A=B"/],
    ['input that is not a string', { command: 'cat', input: { text: 'x' } }, /"input" must be a string, got a value of type object/],
    ['an unknown field', { command: 'ls', shell: true }, /unknown payload field\(s\) shell; expected command, args, cwd, env, input/],
  ];
  for (const [what, payload, message] of refusals) {
    test(`refuses ${what}`, async () => {
      const error = await payloadError('command', payload);
      assert.match(error, /rejected by action command/);
      assert.match(error, message);
    });
  }
});
