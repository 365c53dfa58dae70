/**
 * Two entries for one job (a producer's retried put, the reconciler racing a producer) taken at once
 * by two slots of one executor: only one may run it. Found by `npm run chaos`: both slots claimed the
 * job under the same owner name, the second took the first's claim for its own lost answer, and the
 * job ran twice at once in one process.
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { waitFor } from '../src/harness/wait-for.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';

const bed = useExecutorTestbed();

/** The run ids the side-effects action wrote for each start. */
async function startsIn(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.split(' ')[1] === 'start')
    .map((line) => line.split(' ')[0] ?? '');
}

describe('duplicate entries of one job', () => {
  test('taken by two slots of one executor at once: the job runs once', async () => {
    const file = path.join(tmpdir(), `duplicate-entries-${randomUUID()}.log`);
    try {
      const created = await bed().client.create({ action: 'side-effects', payload: JSON.stringify({ file, ms: 1500 }) });
      // Both entries wait before the executor starts, so its two slots take them together.
      await bed().queue.putMany([{ jobId: created.id }, { jobId: created.id }]);
      const executor = bed().spawnExecutor({ threads: 2 });

      await bed().waitForState(created.id, ['SUCCESS'], 30_000);
      await waitFor(async () => (await bed().queue.length()) === 0, { timeoutMs: 20_000, message: 'both entries to be consumed' });
      const starts = await startsIn(file);
      assert.equal(starts.length, 1, `the job ran ${String(starts.length)} times; executor log:\n${executor.lines.slice(-30).join('\n')}`);
    } finally {
      await rm(file, { force: true });
    }
  });
});
