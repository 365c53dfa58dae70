/**
 * Secrets on the command line (issue 14, finding 10): every process on the machine reads another's
 * argv (`ps`, /proc/<pid>/cmdline), so `--api-key`/`--api-secret` still work but each daemon and
 * jobctl says so in its log, pointing at the file and environment options. The same secret given
 * through the environment says nothing.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../src/harness/free-port.js';
import { runJobctl } from './fixtures/jobctl-process.js';

const BIN = (name: string): string => fileURLToPath(new URL(`../src/bin/${name}.ts`, import.meta.url));
const SECRET_WARNING = /--api-secret on the command line is visible to every user of this machine \(ps\).*--api-key-file/;

interface Run {
  readonly code: number | null;
  readonly stderr: string;
}

function runDaemon(bin: string, args: readonly string[], env: Record<string, string> = {}): Promise<Run> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', BIN(bin), ...args],
      { env: { ...process.env, ...env }, timeout: 60_000 },
      (error, _stdout, stderr) => {
        resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : null, stderr });
      },
    );
  });
}

let deadPort = 0;
let scratch = '';
before(async () => {
  deadPort = await freePort();
  scratch = await mkdtemp(path.join(tmpdir(), 'secrets-argv-'));
});
after(async () => {
  await rm(scratch, { recursive: true, force: true });
});

describe('secrets on the command line', () => {
  for (const [bin, extra] of [
    ['job-executor', []],
    ['job-distributor', ['queue_reconciler']],
  ] as const) {
    test(`${bin} logs a warning for --api-key/--api-secret, and none for the environment`, async () => {
      // ZooKeeper is unreachable: the daemon logs, fails its start and exits.
      const common = [...extra, '--zk-hosts', `127.0.0.1:${String(deadPort)}`, '--connect-timeout', '0.5'];
      const onArgv = await runDaemon(bin, [...common, '--api-key', 'credential/abc', '--api-secret', 'hunter2']);
      assert.equal(onArgv.code, 1, onArgv.stderr);
      assert.match(onArgv.stderr, SECRET_WARNING);
      assert.ok(!onArgv.stderr.includes('hunter2'), 'the warning does not repeat the secret');
      const prefix = bin === 'job-executor' ? 'JOB_EXECUTOR' : 'JOB_DISTRIBUTOR';
      const fromEnv = await runDaemon(bin, common, { [`${prefix}_API_KEY`]: 'credential/abc', [`${prefix}_API_SECRET`]: 'hunter2' });
      assert.equal(fromEnv.code, 1, fromEnv.stderr);
      assert.doesNotMatch(fromEnv.stderr, /on the command line/);
    });
  }

  test('job-api serve warns for a database URL with a password on the command line', async () => {
    const url = `postgres://job_api:hunter2@127.0.0.1:${String(deadPort)}/jobs`;
    const run = await runDaemon('job-api', ['serve', '--database', url, '--port', '0']);
    assert.notEqual(run.code, 0, 'no database: the start fails');
    assert.match(
      run.stderr,
      /--database on the command line holds a password, visible to every user of this machine \(ps\).*--database-file/,
    );
    assert.ok(!run.stderr.includes('hunter2'), 'the warning does not repeat the password');
  });

  test('jobctl warns on stderr for --api-secret', async () => {
    const run = await runJobctl(
      ['list', '--api-url', `http://127.0.0.1:${String(deadPort)}`, '--api-key', 'credential/abc', '--api-secret', 'hunter2'],
      { cwd: scratch },
    );
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, SECRET_WARNING);
  });
});
