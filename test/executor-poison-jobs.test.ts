/**
 * A poison job, whose action takes its executor down with it (SIGKILL of the process), must not be
 * re-run for ever: once its runs ended without a result `max-attempts` times (the job's field, else
 * its action's `maxAttempts`, else the executor's `--max-attempts`), the executor that takes it next
 * fails it instead of running it.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import type { JobDocument } from '../src/api/job/document.js';
import { decide } from '../src/executor/disposition.js';
import { waitFor } from '../src/harness/wait-for.js';
import { useJobctl } from './fixtures/jobctl-stack.js';
import { TEST_ACTIONS, useExecutorTestbed, type ExecutorProcess, type ExecutorSpawnOptions } from './fixtures/executor-testbed.js';

const POISON_ACTIONS = fileURLToPath(new URL('./fixtures/actions-poison', import.meta.url));

function runningJob(fields: Partial<JobDocument>): JobDocument {
  return {
    id: 'job/00000000-0000-7000-8000-000000000001',
    'resource-type': 'job',
    created: '2026-01-01T00:00:00.000Z',
    updated: '2026-01-01T00:00:00.000Z',
    state: 'RUNNING',
    action: 'noop',
    progress: 0,
    priority: 100,
    version: 2,
    revision: 3,
    ...fields,
  };
}

describe('decide: attempts that ended without a result', () => {
  const facts = (job: JobDocument, maxAttempts: number, ownerAlive: boolean | undefined) =>
    ({ lookup: { found: true, job }, knownAction: (name: string) => name === 'noop', ownerAlive, maxAttempts }) as const;

  test('below the cap, a job whose owner died runs again as the next attempt', () => {
    const disposition = decide(facts(runningJob({ executor: 'a@0000000000000001', attempt: 2 }), 3, false));
    assert.equal(disposition.kind, 'claim');
    assert.equal(Reflect.get(disposition, 'attempt'), 3);
  });

  test('at the cap, it fails, naming the attempts and the dead owner', () => {
    const disposition = decide(facts(runningJob({ executor: 'a@0000000000000001', attempt: 3 }), 3, false));
    assert.equal(disposition.kind, 'fail');
    assert.equal(Reflect.get(disposition, 'reason'), 'attempts-exhausted');
    assert.match(Reflect.get(disposition, 'detail'), /^gave up after 3 attempts, max-attempts 3: .*executor a@0000000000000001 died/);
  });

  test('at the cap with no recorded owner (Nuvla), it fails too', () => {
    const disposition = decide(facts(runningJob({ attempt: 1 }), 1, undefined));
    assert.equal(disposition.kind, 'fail');
    assert.match(Reflect.get(disposition, 'detail'), /^gave up after 1 attempt, max-attempts 1: .*no recorded owner/);
  });

  test('a live owner, or a QUEUED job, is never failed by the cap', () => {
    assert.equal(decide(facts(runningJob({ executor: 'a@0000000000000001', attempt: 9 }), 3, true)).kind, 'consume');
    assert.equal(decide(facts(runningJob({ state: 'QUEUED', attempt: 9 }), 3, undefined)).kind, 'claim');
  });
});

describe('a poison job', () => {
  const bed = useExecutorTestbed();
  const jobctl = useJobctl(bed);

  function spawn(extraArgs: readonly string[] = []): ExecutorProcess {
    const options: ExecutorSpawnOptions = { threads: 1, sessionTimeoutSeconds: 2, actionsDirs: [TEST_ACTIONS, POISON_ACTIONS], extraArgs };
    return bed().spawnExecutor(options);
  }

  /** Starts executors one after the other, as a supervisor restarts them, until `deaths` of them died running the job. */
  async function dieRunning(id: string, deaths: number, extraArgs: readonly string[]): Promise<void> {
    for (let attempt = 1; attempt <= deaths; attempt++) {
      const executor = spawn(extraArgs);
      const exit = await executor.exited;
      assert.equal(exit.signal, 'SIGKILL', `executor ${String(attempt)} died by the action`);
      const { job } = await bed().client.get(id);
      assert.equal(job.state, 'RUNNING');
      assert.equal(job.attempt, attempt);
    }
  }

  async function assertFailedWithoutRunning(id: string, attempts: number, extraArgs: readonly string[]): Promise<void> {
    const executor = spawn(extraArgs);
    const failed = await bed().waitForState(id, ['FAILED'], 30_000);
    assert.equal(failed.attempt, attempts, 'no further attempt was started');
    assert.equal(failed['return-code'], 1);
    assert.match(
      failed['status-message'] ?? '',
      new RegExp(
        `^gave up after ${String(attempts)} attempts?, max-attempts ${String(attempts)}: none ended with a result .*executor .* died while running it`,
      ),
    );
    await waitFor(async () => (await bed().queue.length()) === 0, { message: 'the entry consumed' });
    assert.equal(executor.lines.filter((line) => line.includes('action started')).length, 0, 'the action was not started again');
    // Still alive, and it takes other work.
    const other = await bed().createJob('noop');
    assert.equal((await bed().waitForState(other, ['SUCCESS', 'FAILED'])).state, 'SUCCESS');
  }

  test('ends FAILED after 5 runs (the default) that ended without a result, and is never picked again', async () => {
    const id = await bed().createJob('kill_own_process');
    await dieRunning(id, 5, []);
    await assertFailedWithoutRunning(id, 5, []);
  });

  test("the job's max-attempts field overrides the executor's default", async () => {
    const id = (await bed().client.create({ action: 'kill_own_process', 'max-attempts': 1 })).id;
    await bed().queue.put(id);
    await dieRunning(id, 1, []);
    await assertFailedWithoutRunning(id, 1, []);
  });

  test("the action's maxAttempts overrides the executor's default", async () => {
    const id = await bed().createJob('kill_own_process_once');
    await dieRunning(id, 1, []);
    await assertFailedWithoutRunning(id, 1, []);
  });

  test("--max-attempts sets the executor's default", async () => {
    const id = await bed().createJob('kill_own_process');
    await dieRunning(id, 2, ['--max-attempts', '2']);
    await assertFailedWithoutRunning(id, 2, ['--max-attempts', '2']);
  });

  test('jobctl create --max-attempts sets the field, and names a bad value', async () => {
    const created = await jobctl.run(['create', 'noop', '--max-attempts', '3', '--json']);
    assert.equal(created.code, 0, created.stderr);
    const { id } = JSON.parse(created.stdout) as { readonly id: string };
    assert.equal((await bed().client.get(id)).job['max-attempts'], 3);
    const bad = await jobctl.run(['create', 'noop', '--max-attempts', '0']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--max-attempts must be an integer from 1 to 1000, got 0/);
  });

  test('--max-attempts must be a positive integer, named when it is not', async () => {
    const executor = spawn(['--max-attempts', '0']);
    const exit = await executor.exited;
    assert.equal(exit.code, 2);
    assert.ok(
      executor.lines.some((line) => /--max-attempts must be an integer from 1/.test(line)),
      executor.lines.join('\n'),
    );
  });
});
