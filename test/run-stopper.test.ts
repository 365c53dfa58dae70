/**
 * A run only ever stops itself (issue 13, defect 1): a ThreadRun's abort and terminate reach nothing
 * once that run has ended, whatever the thread runs next, and a RunStopper arms no kill timer after
 * the run's end. The thread tests use real worker threads and the test actions.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import type { JobDocument } from '../src/api/job/document.js';
import { ActionThread, type RunHooks, type ThreadResult, type ThreadRun } from '../src/executor/action-thread.js';
import { RunStopper } from '../src/executor/run-stopper.js';
import type { WorkerSettings } from '../src/executor/worker-protocol.js';
import type { Logger } from '../src/util/logger.js';

const ACTION = (name: string): string => fileURLToPath(new URL(`./fixtures/executor-actions/${name}.ts`, import.meta.url));

// The test actions used here never call the job API.
const SETTINGS: WorkerSettings = {
  api: { baseUrls: ['http://127.0.0.1:9'], credentials: undefined, compatibility: 'engine', timeoutMs: 1000 },
  progressIntervalMs: 1000,
};

const IGNORE_HOOKS: RunHooks = { onProgress: () => undefined, onLog: () => undefined };

let jobs = 0;
function jobOf(action: string, payload?: unknown): JobDocument {
  jobs += 1;
  const now = new Date().toISOString();
  return {
    id: `job/run-stopper-${jobs}`,
    'resource-type': 'job',
    created: now,
    updated: now,
    state: 'RUNNING',
    action,
    progress: 0,
    priority: 100,
    version: 2,
    revision: 1,
    ...(payload === undefined ? {} : { payload: JSON.stringify(payload) }),
  };
}

describe('a ThreadRun', () => {
  test("its abort and terminate, once it has ended, leave the thread's next run alone", async () => {
    const thread = new ActionThread(SETTINGS, 'run-stopper-test');
    try {
      const first = thread.run(ACTION('noop'), jobOf('noop'), IGNORE_HOOKS);
      assert.deepEqual(await first.result, { kind: 'returned', returnCode: 0 });
      const next = thread.run(ACTION('sleep'), jobOf('sleep', { ms: 300 }), IGNORE_HOOKS);
      first.abort('a late stop of the first run');
      await first.terminate();
      assert.deepEqual(await next.result, { kind: 'returned', returnCode: 0, message: 'slept 300 ms' });
      assert.ok(thread.usable, 'the thread was not terminated');
    } finally {
      await thread.terminate();
    }
  });

  test('while it runs, its abort reaches its action and its terminate ends it killed', async () => {
    const thread = new ActionThread(SETTINGS, 'run-stopper-test');
    try {
      const aborted = thread.run(ACTION('sleep'), jobOf('sleep', { ms: 60_000 }), IGNORE_HOOKS);
      aborted.abort('stopped by the test');
      const result = await aborted.result;
      assert.equal(result.kind, 'threw');
      const spinning = thread.run(ACTION('spin'), jobOf('spin'), IGNORE_HOOKS);
      await spinning.terminate();
      assert.deepEqual(await spinning.result, { kind: 'killed' });
      assert.equal(thread.usable, false);
    } finally {
      await thread.terminate();
    }
  });
});

/** A ThreadRun that counts what reached it. */
function fakeRun(): ThreadRun & { readonly aborts: string[]; terminations: number } {
  const aborts: string[] = [];
  const fake = {
    result: new Promise<ThreadResult>(() => undefined),
    aborts,
    terminations: 0,
    abort: (reason: string) => {
      aborts.push(reason);
    },
    terminate: () => {
      fake.terminations += 1;
      return Promise.resolve();
    },
  };
  return fake;
}

const quiet: Logger = { error: () => undefined, warn: () => undefined, info: () => undefined, debug: () => undefined };
const GRACE_MS = 5000;

describe('a RunStopper', () => {
  beforeEach(() => {
    mock.timers.enable({ apis: ['setTimeout'] });
  });
  afterEach(() => {
    mock.timers.reset();
  });

  test('stops a running action once: its signal, then its thread terminated after the grace period', () => {
    const stopper = new RunStopper(GRACE_MS, quiet);
    const run = fakeRun();
    stopper.started(run);
    stopper.stop('canceled', 'job x was canceled');
    stopper.stop('timeout', 'timed out after 1 s');
    assert.deepEqual(run.aborts, ['job x was canceled']);
    assert.deepEqual(stopper.stopped, { reason: 'canceled', detail: 'job x was canceled' });
    mock.timers.tick(GRACE_MS - 1);
    assert.equal(run.terminations, 0);
    mock.timers.tick(1);
    assert.equal(run.terminations, 1);
  });

  test('a stop asked for before the action started takes effect when it starts', () => {
    const stopper = new RunStopper(GRACE_MS, quiet);
    stopper.stop('shutdown', 'the executor is stopping');
    const run = fakeRun();
    stopper.started(run);
    assert.deepEqual(run.aborts, ['the executor is stopping']);
  });

  test('the end of the run clears its kill timer', () => {
    const stopper = new RunStopper(GRACE_MS, quiet);
    const run = fakeRun();
    stopper.started(run);
    stopper.stop('taken-over', "job x is no longer this executor's");
    stopper.ended();
    mock.timers.tick(GRACE_MS * 2);
    assert.equal(run.terminations, 0);
  });

  test('after the end of the run, a stop reaches nothing and arms no kill timer', () => {
    const stopper = new RunStopper(GRACE_MS, quiet);
    const run = fakeRun();
    stopper.started(run);
    stopper.ended();
    stopper.stop('canceled', 'job x was canceled');
    mock.timers.tick(GRACE_MS * 2);
    assert.deepEqual(run.aborts, []);
    assert.equal(run.terminations, 0);
    assert.equal(stopper.stopped, undefined);
  });
});
