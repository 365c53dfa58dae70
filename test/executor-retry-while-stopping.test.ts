/**
 * A job cancelled while it runs, then retried at once: its first run may still be stopping (its
 * executor notices the cancel within --cancel-poll, the action within its grace), and the retry's
 * run must not start before it has. Found by `npm run chaos` (seed 1301): the operator's retry came
 * 0.5 s after the cancel and another executor ran the job while the cancelled run was still live.
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

interface Run {
  readonly start: number;
  readonly end: number | undefined;
}

/** Each run's start and end, from the side-effects action's lines. */
async function runsIn(file: string): Promise<Map<string, Run>> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const runs = new Map<string, Run>();
  for (const line of text.split('\n')) {
    const [run, what, at] = line.split(' ');
    if (run === undefined || at === undefined) continue;
    const time = Number(at);
    if (what === 'start') runs.set(run, { start: time, end: undefined });
    if (what === 'end') {
      const known = runs.get(run);
      if (known !== undefined) runs.set(run, { ...known, end: time });
    }
  }
  return runs;
}

describe('a job retried while its cancelled run is still stopping', () => {
  test('the retry runs only once the cancelled run has ended', async () => {
    const file = path.join(tmpdir(), `retry-while-stopping-${randomUUID()}.log`);
    try {
      // The first executor notices a cancel late: its run goes on for up to 4 s after it.
      const slow = bed().spawnExecutor({ threads: 1, extraArgs: ['--cancel-poll', '4'] });
      const created = await bed().client.create({ action: 'side-effects', payload: JSON.stringify({ file, ms: 20_000 }) });
      await bed().queue.putMany([{ jobId: created.id }]);
      await bed().waitForState(created.id, ['RUNNING'], 30_000);
      await waitFor(async () => (await runsIn(file)).size === 1, { timeoutMs: 10_000, message: 'the first run to start' });

      const other = bed().spawnExecutor({ threads: 1 });
      await bed().client.cancel(created.id);
      const retried = await bed().client.retry(created.id);
      await bed().queue.putMany([{ jobId: retried.id }]);
      await waitFor(async () => (await runsIn(file)).size === 2, { timeoutMs: 30_000, message: 'the retry to start' });

      const [first, second] = [...(await runsIn(file)).values()];
      assert.ok(first !== undefined && second !== undefined);
      await waitFor(async () => [...(await runsIn(file)).values()][0]?.end !== undefined, {
        timeoutMs: 10_000,
        message: 'the first run to end',
      });
      const firstEnd = [...(await runsIn(file)).values()][0]?.end ?? Number.NaN;
      assert.ok(
        second.start >= firstEnd,
        `the retry started ${String(firstEnd - second.start)} ms before the cancelled run ended;\n` +
          `first executor:\n${slow.lines.slice(-15).join('\n')}\nother executor:\n${other.lines.slice(-15).join('\n')}`,
      );
      await bed().client.cancel(created.id);
    } finally {
      await rm(file, { force: true });
    }
  });
});
