import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../src/harness/free-port.js';
import { BUNDLED_ACTIONS_DIR, compileExecutorOptions } from '../src/executor/options.js';
import { parseCredentialsFile } from '../src/cli/option-readers.js';
import { TEST_ACTIONS, useExecutorTestbed } from './fixtures/executor-testbed.js';

const BIN = fileURLToPath(new URL('../src/bin/job-executor.ts', import.meta.url));
const BROKEN_ACTIONS = fileURLToPath(new URL('./fixtures/actions-broken', import.meta.url));
const MISBEHAVING_ACTIONS = fileURLToPath(new URL('./fixtures/actions-misbehaving', import.meta.url));

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

function runExecutor(args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', BIN, ...args],
      { env: { ...process.env, ...env }, timeout: 60_000 },
      (error, stdout, stderr) => {
        const code = error === null ? 0 : typeof error.code === 'number' ? error.code : null;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

describe('executor options', () => {
  let scratch = '';
  before(async () => {
    scratch = await mkdtemp(path.join(tmpdir(), 'executor-options-'));
  });
  after(async () => {
    await rm(scratch, { recursive: true, force: true });
  });

  test('defaults: 4 threads, the bundled actions, 120 s shutdown timeout, durations in ms, frozen', async () => {
    const options = await compileExecutorOptions({ 'zk-hosts': '127.0.0.1:2181' });
    assert.equal(options.threads, 4);
    assert.deepEqual(options.actionsDirs, [BUNDLED_ACTIONS_DIR]);
    assert.equal(options.shutdownTimeoutMs, 120_000);
    assert.equal(options.sessionTimeoutMs, 10_000);
    assert.equal(options.api.baseUrl, 'http://127.0.0.1:8200');
    assert.equal(options.api.credentials, undefined);
    assert.match(options.name, /-\d+$/);
    assert.ok(Object.isFrozen(options) && Object.isFrozen(options.api));
  });

  const refusals: [string, Record<string, unknown>, RegExp][] = [
    ['no ZooKeeper', {}, /--zk-hosts is required/],
    [
      'a bad connection string',
      { 'zk-hosts': 'localhost:notaport' },
      /--zk-hosts "localhost:notaport" is not a ZooKeeper connection string/,
    ],
    ['zero threads', { 'zk-hosts': 'h:1', threads: 0 }, /--threads must be an integer from 1 to 1024, got 0/],
    ['fractional threads', { 'zk-hosts': 'h:1', threads: 1.5 }, /--threads must be an integer/],
    [
      'a negative shutdown timeout',
      { 'zk-hosts': 'h:1', 'shutdown-timeout': -1 },
      /--shutdown-timeout must be a number from 0 to 86400, got -1/,
    ],
    ['a key without its secret', { 'zk-hosts': 'h:1', 'api-key': 'k' }, /--api-key and --api-secret go together/],
    ['a bad name', { 'zk-hosts': 'h:1', name: 'has space' }, /--name must be/],
    [
      'a bad compatibility',
      { 'zk-hosts': 'h:1', 'api-compatibility': 'v1' },
      /--api-compatibility must be auto, engine or nuvla, got "v1"/,
    ],
    ['a relative queue path', { 'zk-hosts': 'h:1', 'queue-path': 'job' }, /--queue-path must be an absolute ZooKeeper path/],
  ];
  for (const [what, args, message] of refusals) {
    test(`refuses ${what}`, async () => {
      await assert.rejects(compileExecutorOptions(args), message);
    });
  }

  test('reads the API key from a file, as JSON or as job-api prints it', async () => {
    assert.deepEqual(parseCredentialsFile('{"key":"k1","secret":"s1"}', 'f'), { key: 'k1', secret: 's1' });
    assert.deepEqual(parseCredentialsFile('key:    k2\nsecret: s2\nThe secret is not stored.\n', 'f'), { key: 'k2', secret: 's2' });
    assert.throws(
      () => parseCredentialsFile('just-a-key', 'keys.txt'),
      /API key file keys.txt must hold "key: ..." and "secret: ..." lines, or JSON/,
    );
    const file = path.join(scratch, 'key.json');
    await writeFile(file, '{"key":"k3","secret":"s3"}');
    const options = await compileExecutorOptions({ 'zk-hosts': 'h:1', 'api-key-file': file });
    assert.deepEqual(options.api.credentials, { key: 'k3', secret: 's3' });
    await assert.rejects(
      compileExecutorOptions({ 'zk-hosts': 'h:1', 'api-key-file': path.join(scratch, 'missing') }),
      /API key file .*missing cannot be read/,
    );
  });
});

describe('job-executor command line', () => {
  test('--help lists the options', async () => {
    const run = await runExecutor(['--help']);
    assert.equal(run.code, 0);
    for (const flag of ['--zk-hosts', '--threads', '--actions-dir', '--shutdown-timeout', '--session-timeout', '--api-key-file'])
      assert.ok(run.stdout.includes(flag), flag);
  });

  test('a bad flag is one clear line and exit code 2', async () => {
    const unknown = await runExecutor(['--zk-hosts', '127.0.0.1:1', '--thread', '3']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /^job-executor: Unknown argument: thread/);
    const bad = await runExecutor(['--zk-hosts', '127.0.0.1:1', '--threads', '0']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /^job-executor: --threads must be an integer from 1 to 1024, got 0\n/);
    assert.ok(!bad.stderr.includes('    at '), 'no stack trace');
  });

  test('a value that is not a number is echoed in the error, from a flag or the environment', async () => {
    const flag = await runExecutor(['--zk-hosts', '127.0.0.1:1', '--threads', 'abc']);
    assert.equal(flag.code, 2);
    assert.match(flag.stderr, /^job-executor: --threads must be an integer from 1 to 1024, got "abc"\n/);
    const shared = await runExecutor(['--zk-hosts', '127.0.0.1:1', '--session-timeout', 'ten']);
    assert.equal(shared.code, 2);
    assert.match(shared.stderr, /--session-timeout must be a number from 1 to 600, got "ten"/);
    const fromEnv = await runExecutor(['--zk-hosts', '127.0.0.1:1'], { JOB_EXECUTOR_THREADS: 'four' });
    assert.equal(fromEnv.code, 2);
    assert.match(fromEnv.stderr, /--threads must be an integer from 1 to 1024, got "four"/);
  });

  test('options come from the environment and from a config file too', async () => {
    const fromEnv = await runExecutor(['--zk-hosts', '127.0.0.1:1'], { JOB_EXECUTOR_THREADS: '-2' });
    assert.equal(fromEnv.code, 2);
    assert.match(fromEnv.stderr, /--threads must be an integer from 1 to 1024, got -2/);
    const dir = await mkdtemp(path.join(tmpdir(), 'executor-config-'));
    try {
      const config = path.join(dir, 'executor.json');
      await writeFile(config, JSON.stringify({ 'zk-hosts': '127.0.0.1:1', 'shutdown-timeout': 'soon' }));
      const fromFile = await runExecutor(['--config', config]);
      assert.equal(fromFile.code, 2);
      assert.match(fromFile.stderr, /--shutdown-timeout must be a number/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('a dead ZooKeeper is a clear error and exit code 1', async () => {
    const port = await freePort();
    const run = await runExecutor(['--zk-hosts', `127.0.0.1:${port}`, '--connect-timeout', '1', '--actions-dir', TEST_ACTIONS]);
    assert.equal(run.code, 1);
    assert.match(run.stderr, new RegExp(`job-executor: could not connect to ZooKeeper at 127\\.0\\.0\\.1:${port} within 1000 ms`));
  });

  test('an actions directory that does not exist is refused by name', async () => {
    const run = await runExecutor(['--zk-hosts', '127.0.0.1:1', '--actions-dir', '/nonexistent/actions']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /actions directory \/nonexistent\/actions is not usable/);
  });
});

describe('broken action modules', () => {
  const bed = useExecutorTestbed();

  test('each is reported with its file name; the others load and run', async () => {
    const executor = bed().spawnExecutor({ threads: 1, actionsDirs: [BROKEN_ACTIONS, TEST_ACTIONS] });
    await executor.waitForLine(/executor started/);
    for (const file of ['bad-name.ts', 'no-default-export.ts', 'syntax-error.mjs', 'throws-at-import.ts']) {
      assert.ok(
        executor.lines.some((line) => line.includes('action module not loaded') && line.includes(`actions-broken/${file}`)),
        file,
      );
    }
    // A syntax error names where it is, as `node --check` would: the line, the column and the code.
    const syntax = executor.lines.find((line) => line.includes('actions-broken/syntax-error.mjs')) ?? '';
    assert.match(syntax, /Unexpected identifier 'timeoutSeconds' at line 2, column 45/);
    assert.ok(syntax.includes("export default defineAction({ name: 'never' timeoutSeconds: 1 });"), syntax);
    const survivor = await bed().createJob('survivor');
    const noop = await bed().createJob('noop');
    assert.equal((await bed().waitForState(survivor, ['SUCCESS', 'FAILED'])).state, 'SUCCESS');
    assert.equal((await bed().waitForState(noop, ['SUCCESS', 'FAILED'])).state, 'SUCCESS');
  });
});

describe('action modules that try to end the executor', () => {
  const bed = useExecutorTestbed();

  test('process.exit at import or at run time ends neither the executor nor its other actions', async () => {
    const executor = bed().spawnExecutor({ threads: 1, actionsDirs: [MISBEHAVING_ACTIONS, TEST_ACTIONS] });
    const started = await executor.waitForLine(/executor started/).then(
      () => 'started',
      async () => `exited before starting (${JSON.stringify(await executor.exited)}), its last line: ${executor.lines.at(-1) ?? 'none'}`,
    );
    assert.equal(started, 'started');
    const refused = executor.lines.find((line) => line.includes('action module not loaded') && line.includes('exits-at-import.ts'));
    assert.ok(refused !== undefined, 'the module that exits at import is reported by file');
    assert.match(refused, /ended the thread that imported it \(exit code 0\)/);
    const exits = await bed().createJob('exits_when_run');
    const failed = await bed().waitForState(exits, ['SUCCESS', 'FAILED']);
    assert.equal(failed.state, 'FAILED');
    assert.equal(failed['return-code'], 1);
    // A module that throws from a timer after its import is loaded (the stray error is logged with its
    // stack); its jobs may fail with the thread it crashes, but the executor goes on.
    assert.ok(executor.lines.some((line) => line.includes('threw outside its import') && line.includes('throws-later.ts')));
    const later = await bed().createJob('throws_later');
    await bed().waitForState(later, ['SUCCESS', 'FAILED']);
    const noop = await bed().createJob('noop');
    assert.equal((await bed().waitForState(noop, ['SUCCESS', 'FAILED'])).state, 'SUCCESS');
  });
});
