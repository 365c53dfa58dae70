/**
 * A batch's `tasks-per-second` held over a minute (docs/batches.md, Feeding): the rate is read from
 * the tasks themselves, their `created` stamps (the API's) counted over a 60 s window after the first
 * seconds, and their `started` stamps likewise. The feeder's token bucket lives on the batch
 * (`paced-until`), so the feeder's 5 s ticks do not refill it: before, each tick started with a full
 * bucket and the rate ran about 15 % high.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { waitFor } from '../src/harness/wait-for.js';
import { EVERY_JOB, batchOf, spawnBatchExecutor, spawnFeeder } from './fixtures/batch-testbed.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';

const testbed = useExecutorTestbed();
const RATE = 50;
const WINDOW_MS = 60_000;
/** Past the first group and the executor's thread starts. */
const RAMP_TASKS = 250;

test('tasks-per-second 50 is held within 10 % over a minute, by the tasks created and started', async () => {
  const bed = testbed();
  await bed.client.deleteMatching(EVERY_JOB);
  spawnBatchExecutor(bed, 8);
  spawnFeeder(bed);
  const id = await bed.client.createBatch({
    action: 'batch_task',
    generator: 'range',
    args: { count: 100_000 },
    'tasks-per-second': RATE,
  });
  await waitFor(async () => ((await batchOf(bed, id)).batch?.sent ?? 0) >= RAMP_TASKS || undefined, {
    timeoutMs: 60_000,
    intervalMs: 100,
    message: `${String(RAMP_TASKS)} tasks sent`,
  });
  const from = new Date(Date.now()).toISOString();
  const windowEnd = Date.now() + WINDOW_MS;
  // The window plus a few seconds for its last tasks to start.
  await waitFor(() => (Date.now() >= windowEnd + 3000 ? true : undefined), { timeoutMs: WINDOW_MS + 10_000, intervalMs: 200 });
  const to = new Date(windowEnd).toISOString();
  const created = await bed.client.count(`parent-job='${id}' and created>='${from}' and created<'${to}'`);
  const started = await bed.client.count(`parent-job='${id}' and started>='${from}' and started<'${to}'`);
  await bed.client.cancel(id);
  const expected = (RATE * WINDOW_MS) / 1000;
  const createdRate = (created * 1000) / WINDOW_MS;
  const startedRate = (started * 1000) / WINDOW_MS;
  assert.ok(
    Math.abs(created - expected) <= expected * 0.1,
    `${createdRate.toFixed(1)} tasks/s created over the minute, not ${String(RATE)} ± 10 %`,
  );
  assert.ok(
    Math.abs(started - expected) <= expected * 0.1,
    `${startedRate.toFixed(1)} tasks/s started over the minute, not ${String(RATE)} ± 10 %`,
  );
});
