/**
 * A job RUNNING under a kazoo consumer (Nuvla's Python executor, holding `<queue>/taken/<entry>`)
 * is owned for as long as that consumer's session holds the taken node, whatever wrote the job's
 * `executor` field: job-executor must not run it a second time from a duplicate entry.
 */
import assert from 'node:assert/strict';
import { afterEach, describe, test } from 'node:test';
import { decide } from '../src/executor/disposition.js';
import { waitFor } from '../src/harness/wait-for.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';
import { KazooProcess, killKazooProcesses } from './fixtures/kazoo-process.js';

describe('decide: a foreign holder', () => {
  const job = {
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
    executor: 'nuvla-executor-7f3a',
    attempt: 1,
  } as const;
  const knownAction = (name: string): boolean => name === 'noop';

  test('a RUNNING job another live session holds is owned elsewhere, whatever its executor field says', () => {
    const disposition = decide({ lookup: { found: true, job }, knownAction, ownerAlive: false, foreignHolder: 'queue consumer abc' });
    assert.equal(disposition.kind, 'consume');
    assert.equal(Reflect.get(disposition, 'reason'), 'owned-elsewhere');
    assert.match(Reflect.get(disposition, 'detail'), /RUNNING under queue consumer abc/);
  });

  test('without a holder it runs again', () => {
    assert.equal(decide({ lookup: { found: true, job }, knownAction, ownerAlive: false }).kind, 'claim');
  });
});

describe('a job held by a kazoo consumer', () => {
  const bed = useExecutorTestbed();
  afterEach(killKazooProcesses);

  function holdWithKazoo(): KazooProcess {
    return KazooProcess.start('kazoo_queue.py', [bed().zk.connectionString, bed().queuePath, 'hold', '--deadline', '60']);
  }

  for (const executorField of [undefined, 'nuvla-executor-7f3a']) {
    test(`is not run again from a duplicate entry (executor field: ${executorField ?? 'none'})`, async () => {
      const id = (await bed().client.create({ action: 'noop' })).id;
      const first = await bed().queue.put(id);
      const kazoo = holdWithKazoo();
      const held = await kazoo.next('held');
      assert.equal(held.entry, first);
      // What Nuvla's executor writes when it starts the job it took.
      await bed().client.edit(id, { state: 'RUNNING', ...(executorField === undefined ? {} : { executor: executorField }) });
      const before = (await bed().client.get(id)).job;

      const duplicate = await bed().queue.put(id);
      const executor = bed().spawnExecutor({ threads: 1 });
      await executor.waitForLine(new RegExp(`"entry":"${duplicate}".*owned-elsewhere|owned-elsewhere.*"entry":"${duplicate}"`));
      await waitFor(async () => (await bed().queue.length()) === 1, { message: 'the duplicate entry consumed, the held one kept' });
      const after = (await bed().client.get(id)).job;
      assert.equal(after.state, 'RUNNING');
      assert.equal(after.revision, before.revision, 'the job was not touched');
      assert.ok(!executor.lines.some((line) => line.includes('job re-run')), 'no re-run was logged');

      // The consumer goes away without a result: the job is ownerless now and runs again here.
      kazoo.send('release');
      await kazoo.finished();
      const rerun = await bed().waitForState(id, ['SUCCESS', 'FAILED']);
      assert.equal(rerun.state, 'SUCCESS');
      await waitFor(async () => (await bed().queue.length()) === 0, { message: 'the held entry consumed after its release' });
    });
  }
});
