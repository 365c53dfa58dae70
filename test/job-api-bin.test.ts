/**
 * The `job-api` command as users run it: a real child process for each subcommand and for the server,
 * which must stop cleanly on SIGTERM; mistakes get one clear line and a non-zero exit.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import { freePort } from '../src/harness/free-port.js';
import { waitFor } from '../src/harness/wait-for.js';
import { startPostgres, type PostgresServer } from '../src/harness/postgres-server.js';

const BIN = fileURLToPath(new URL('../src/bin/job-api.ts', import.meta.url));
const running = new Set<ChildProcess>();
let dir: string;
let postgres: PostgresServer;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'job-api-bin-'));
  postgres = await startPostgres();
});

after(async () => {
  for (const child of running) child.kill('SIGKILL');
  await postgres.stop();
  await rm(dir, { recursive: true, force: true });
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function start(args: string[], env: Record<string, string> = {}): { child: ChildProcess; output: () => Run; exited: Promise<Run> } {
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...args], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  const output = (): Run => ({ code: child.exitCode, stdout, stderr });
  const exited = once(child, 'exit').then(() => {
    running.delete(child);
    return output();
  });
  return { child, output, exited };
}

const run = (args: string[], env?: Record<string, string>): Promise<Run> => start(args, env).exited;

function keyOf(output: string): { key: string; secret: string } {
  const key = /^\s*key:\s+(\S+)/m.exec(output)?.[1];
  const secret = /^\s*secret:\s+(\S+)/m.exec(output)?.[1];
  assert.ok(key !== undefined && secret !== undefined, `a key and a secret in: ${output}`);
  return { key, secret };
}

describe('job-api', () => {
  test('create-admin-key prints the secret once and refuses a second admin', async () => {
    const database = join(dir, 'keys.sqlite');
    const first = await run(['create-admin-key', '--database', database]);
    assert.equal(first.code, 0, first.stderr);
    const { key } = keyOf(first.stdout);
    assert.match(first.stdout, /cannot be shown again/);
    const second = await run(['create-admin-key', '--database', database]);
    assert.notEqual(second.code, 0);
    assert.match(second.stderr, /^job-api: an admin key already exists/);
    assert.doesNotMatch(second.stderr, /\n\s+at /, 'no stack trace for a user mistake');
    const listed = await run(['list-keys', '--database', database]);
    assert.match(listed.stdout, new RegExp(`^${key}\\tadmin\\t`, 'm'));
    assert.doesNotMatch(listed.stdout, /secret/);
  });

  test('bad flags and values get one clear line', async () => {
    const unknown = await run(['serve', '--colour', 'red']);
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /Unknown argument: colour/);
    const badRole = await run(['create-key', 'superuser', '--database', join(dir, 'roles.sqlite')]);
    assert.equal(badRole.code, 2);
    assert.match(
      badRole.stderr,
      /role must be one of admin, operator, distributor, maintenance, executor, producer, viewer, got "superuser"/,
    );
    const badLimit = await run(['serve', '--database', join(dir, 'limit.sqlite'), '--body-limit', '0']);
    assert.equal(badLimit.code, 2);
    assert.match(badLimit.stderr, /--body-limit must be a positive integer/);
    const notANumber = await run(['serve', '--database', join(dir, 'port.sqlite'), '--port', 'abc']);
    assert.equal(notANumber.code, 2);
    assert.match(notANumber.stderr, /--port must be 0-65535, got "abc"/);
    const missingFile = await run(['list-keys'], { JOB_API_DATABASE_FILE: join(dir, 'nope') });
    assert.equal(missingFile.code, 2);
    assert.match(missingFile.stderr, /database file .*nope cannot be read/);
  });

  for (const backend of ['sqlite', 'postgres'] as const) {
    test(`serve on ${backend}: answers with a key, refuses without, stops on SIGTERM with exit 0`, async () => {
      const database = backend === 'sqlite' ? join(dir, 'serve.sqlite') : await postgres.createDatabase('bin_test');
      // The PostgreSQL URL comes from a file, as secrets should.
      const env = backend === 'postgres' ? { JOB_API_DATABASE_FILE: join(dir, 'db-url') } : {};
      if (backend === 'postgres') await writeFile(join(dir, 'db-url'), `${database}\n`);
      const databaseArgs = backend === 'postgres' ? [] : ['--database', database];
      const created = await run(['create-key', 'producer', ...databaseArgs], env);
      assert.equal(created.code, 0, created.stderr);
      const { key, secret } = keyOf(created.stdout);
      const port = await freePort();
      const server = start(['serve', ...databaseArgs, '--port', String(port)], env);
      const base = `http://127.0.0.1:${String(port)}`;
      await waitFor(
        () =>
          fetch(`${base}/api/job`).then(
            (response) => response.status === 401,
            () => false,
          ),
        {
          timeoutMs: 30_000,
          message: `job-api listening (${server.output().stderr})`,
        },
      );
      const createdJob = await fetch(`${base}/api/job`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}:${secret}`, 'content-type': 'application/json' },
        body: JSON.stringify({ action: 'dummy_test_action' }),
      });
      assert.equal(createdJob.status, 201);
      assert.match(server.output().stderr, /job api listening/);
      assert.doesNotMatch(server.output().stderr, /password|secret/i, 'the log shows neither secrets nor passwords');
      server.child.kill('SIGTERM');
      const stopped = await server.exited;
      assert.equal(stopped.code, 0, stopped.stderr);
      assert.match(stopped.stderr, /stopping/);
    });
  }
});
