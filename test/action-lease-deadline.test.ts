/**
 * An action's thread holds its job's lease deadline itself (issue 13, defect 2; docs/contracts.md,
 * invariant 2): it aborts the action once the deadline passes even while the executor's main thread
 * is stalled and cannot move the deadline on or send an abort.
 */
import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import type { JobDocument } from '../src/api/job/document.js';
import { ActionThread, type RunHooks } from '../src/executor/action-thread.js';
import { hrtimeMs, type WorkerSettings } from '../src/executor/worker-protocol.js';
import { waitFor } from '../src/harness/wait-for.js';

const ACTION = fileURLToPath(new URL('./fixtures/executor-actions/side-effects.ts', import.meta.url));
const STALLED_ACTION = fileURLToPath(new URL('./fixtures/executor-actions/stalled-thread.ts', import.meta.url));

// The side-effects action never calls the job API.
const SETTINGS: WorkerSettings = {
  api: { baseUrls: ['http://127.0.0.1:9'], credentials: undefined, compatibility: 'engine', timeoutMs: 1000 },
  progressIntervalMs: 1000,
};

const IGNORE_HOOKS: RunHooks = { onProgress: () => undefined, onLog: () => undefined };

function jobOf(payload: unknown): JobDocument {
  const now = new Date().toISOString();
  return {
    id: `job/lease-deadline-${randomUUID()}`,
    'resource-type': 'job',
    created: now,
    updated: now,
    state: 'RUNNING',
    action: 'side-effects',
    progress: 0,
    priority: 100,
    version: 2,
    revision: 1,
    payload: JSON.stringify(payload),
  };
}

/** Times (Date.now()) of the lines the action wrote. */
async function linesOf(file: string): Promise<{ what: string; at: number }[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => {
      const [, what = '', at = ''] = line.split(' ');
      return { what, at: Number(at) };
    });
}

describe("an action's lease deadline", () => {
  test('passes while the main thread is stalled: the thread aborts the action by itself', async () => {
    const file = join(tmpdir(), `lease-deadline-${randomUUID()}.log`);
    const buffer = new SharedArrayBuffer(Float64Array.BYTES_PER_ELEMENT);
    const deadline = new Float64Array(buffer);
    deadline[0] = hrtimeMs() + 60_000;
    const thread = new ActionThread(SETTINGS, 'lease-deadline-test');
    try {
      const run = thread.run(ACTION, jobOf({ file, ms: 30_000 }), IGNORE_HOOKS, buffer);
      await waitFor(async () => (await linesOf(file)).some((line) => line.what === 'start'), { message: 'the action to start' });

      const stalledAt = Date.now();
      deadline[0] = hrtimeMs() + 200;
      // The main thread stalls well past the deadline: nothing here can abort the action.
      while (Date.now() - stalledAt < 1500) {
        /* busy */
      }
      const result = await run.result;

      // The action reports its signal's abort as it likes (here AbortError); that it ended during the stall is what counts.
      assert.equal(result.kind, 'threw', `the action was not aborted: ${JSON.stringify(result)}`);
      const last = (await linesOf(file)).at(-1);
      if (last === undefined) assert.fail('the action wrote nothing');
      assert.equal(last.what, 'end');
      assert.ok(
        last.at < stalledAt + 700,
        `the action ended ${String(last.at - stalledAt)} ms into a 1500 ms stall, its deadline at 200 ms`,
      );
    } finally {
      await thread.terminate();
      await rm(file, { force: true });
    }
  });

  test('already passed when the run arrives: the action does not start', async () => {
    const file = join(tmpdir(), `lease-deadline-${randomUUID()}.log`);
    const buffer = new SharedArrayBuffer(Float64Array.BYTES_PER_ELEMENT);
    new Float64Array(buffer)[0] = hrtimeMs() - 1;
    const thread = new ActionThread(SETTINGS, 'lease-deadline-test');
    try {
      const result = await thread.run(ACTION, jobOf({ file, ms: 1000 }), IGNORE_HOOKS, buffer).result;
      assert.equal(result.kind, 'threw');
      assert.deepEqual(await linesOf(file), [], 'the action wrote nothing');
    } finally {
      await thread.terminate();
      await rm(file, { force: true });
    }
  });

  test('passed while the thread itself was held (SIGSTOP, then SIGCONT): the signal reads aborted before any timer runs', async () => {
    // Found by `npm run chaos`: after SIGCONT, an action's own timer could fire before the thread's
    // periodic lease check, so it saw its signal not aborted and had an effect while another executor
    // already ran the job. The signal must tell the truth whenever it is read.
    const buffer = new SharedArrayBuffer(Float64Array.BYTES_PER_ELEMENT);
    const deadline = new Float64Array(buffer);
    deadline[0] = hrtimeMs() + 60_000;
    const thread = new ActionThread(SETTINGS, 'lease-deadline-test');
    try {
      const job = { ...jobOf({ stallMs: 3000 }), action: 'stalled-thread' };
      const run = thread.run(STALLED_ACTION, job, IGNORE_HOOKS, buffer);
      // The deadline passes while the action holds its thread: no periodic check can run meanwhile.
      deadline[0] = hrtimeMs() + 1500;
      const result = await run.result;
      assert.deepEqual(result, { kind: 'returned', returnCode: 0, message: 'aborted=true' });
    } finally {
      await thread.terminate();
    }
  });
});
