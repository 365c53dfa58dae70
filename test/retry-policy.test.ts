/**
 * Retry policies, attempt history and dead letters (docs/contracts.md §3 and §5): the checks of a policy
 * (in an action module, on a job), the back-off, the decision after a failed attempt, and end to end
 * with the real job API, ZooKeeper, executors and the `job_scheduler` distribution (which enqueues a
 * retry when it is due) as child processes: a job failing twice then succeeding, one always failing (dead-lettered, listed
 * by `jobctl dead`, revived by `jobctl retry --dead`), a timed-out one retried, a cancelled one not.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { ApiError } from '../src/api/errors.js';
import type { JobEvent } from '../src/api/job/events.js';
import type { JobDocument } from '../src/api/job/document.js';
import { backoffMs, checkRetrySpec, resolveRetryPolicy } from '../src/api/job/retry-policy.js';
import { planAfterFailure } from '../src/executor/retry-plan.js';
import { waitFor } from '../src/harness/wait-for.js';
import { defineAction } from '../src/sdk/index.js';
import { useJobctl } from './fixtures/jobctl-stack.js';
import { TEST_ACTIONS, useExecutorTestbed, type ExecutorTestbed } from './fixtures/executor-testbed.js';

const RETRY_ACTIONS = fileURLToPath(new URL('./fixtures/actions-retry', import.meta.url));
const BAD_RETRY_ACTIONS = fileURLToPath(new URL('./fixtures/actions-retry-bad', import.meta.url));

describe('retry policies: checks', () => {
  test('a bad policy in defineAction names the action and every bad field', () => {
    assert.throws(
      () =>
        defineAction({
          name: 'bad_policy',
          timeoutSeconds: 5,
          retry: { attempts: 0, backoff: 'linear' as 'fixed', delaySeconds: 10, maxDelaySeconds: 5, jitter: 2, on: [0] },
          run: () => 0,
        }),
      (error: Error) => {
        assert.match(error.message, /^invalid action "bad_policy" definition: /);
        for (const part of [
          /retry\.attempts must be an integer from 1 to 1000, got number 0/,
          /retry\.backoff must be one of exponential, fixed, got "linear"/,
          /retry\.maxDelaySeconds \(5\) must not be less than retry\.delaySeconds \(10\)/,
          /retry\.jitter must be a fraction from 0 to 1, got number 2/,
          /retry\.on must be "any" or a non-empty list of non-zero integer return codes, got a list/,
        ])
          assert.match(error.message, part);
        return true;
      },
    );
    assert.throws(
      () => defineAction({ name: 'typo', timeoutSeconds: 5, retry: { attempt: 3 } as never, run: () => 0 }),
      /retry has unknown field\(s\) attempt; expected attempts, backoff, delaySeconds, maxDelaySeconds, jitter, on/,
    );
  });

  test('a job policy is kebab-case, and checked by the same rules', () => {
    const checked = checkRetrySpec({ attempts: 2, 'delay-seconds': 3, delaySeconds: 1 }, 'kebab', '"retry"');
    assert.ok('problems' in checked);
    assert.match(checked.problems.join('; '), /"retry" has unknown field\(s\) delaySeconds/);
    const good = checkRetrySpec({ attempts: 4, 'delay-seconds': 2, on: [1, 75] }, 'kebab', '"retry"');
    assert.deepEqual('spec' in good ? good.spec : undefined, { attempts: 4, delaySeconds: 2, on: [1, 75] });
  });

  test('the back-off: exponential doubles up to its cap, fixed does not, jitter only shortens', () => {
    const exponential = resolveRetryPolicy({ attempts: 10, delaySeconds: 2, maxDelaySeconds: 10 }, undefined);
    assert.deepEqual(
      [1, 2, 3, 4, 5].map((n) => backoffMs(exponential, n, 0)),
      [2000, 4000, 8000, 10_000, 10_000],
    );
    const fixed = resolveRetryPolicy({ attempts: 10, backoff: 'fixed', delaySeconds: 2 }, { 'delay-seconds': 3 });
    assert.deepEqual(
      [1, 5].map((n) => backoffMs(fixed, n, 0)),
      [3000, 3000],
    );
    const jittered = resolveRetryPolicy({ attempts: 3, delaySeconds: 10, jitter: 0.5 }, undefined);
    assert.equal(backoffMs(jittered, 1, 0), 10_000);
    assert.equal(backoffMs(jittered, 1, 0.999_999), 5000);
  });

  test('after a failed attempt: retried, dead-lettered on the last, never for a refused payload or an unlisted code', () => {
    const failed = { state: 'FAILED', 'return-code': 3, 'status-message': 'boom' } as const;
    const facts = { job: {}, actionPolicy: { attempts: 3, delaySeconds: 1 }, retryability: 'by-code', now: 0, random: 0 } as const;
    const first = planAfterFailure(failed, { ...facts, attempt: 1 });
    assert.equal(first.kind, 'retry');
    assert.equal(first.changes.state, 'QUEUED');
    assert.equal(first.changes['not-before'], '1970-01-01T00:00:01.000Z');
    assert.match(first.changes['status-message'] ?? '', /^attempt 1 of 3 failed with return code 3: boom; attempt 2 runs at /);
    assert.equal(planAfterFailure(failed, { ...facts, attempt: 2 }).changes['not-before'], '1970-01-01T00:00:02.000Z');
    const last = planAfterFailure(failed, { ...facts, attempt: 3 });
    assert.equal(last.kind, 'dead-letter');
    assert.match(last.changes['dead-letter']?.reason ?? '', /^gave up after 3 attempts/);
    // An operator's retry at attempt 3 starts a new round.
    assert.equal(planAfterFailure(failed, { ...facts, attempt: 4, job: { 'retried-at-attempt': 3 } }).kind, 'retry');
    assert.equal(planAfterFailure(failed, { ...facts, attempt: 1, retryability: 'never' }).kind, 'final');
    assert.equal(planAfterFailure(failed, { ...facts, attempt: 1, job: { retry: { on: [4] } } }).kind, 'final');
    assert.equal(planAfterFailure(failed, { ...facts, attempt: 1, job: { retry: { on: [4] } }, retryability: 'always' }).kind, 'retry');
    // No policy: one attempt, a plain FAILED.
    assert.equal(planAfterFailure(failed, { ...facts, actionPolicy: undefined, attempt: 1 }).kind, 'final');
  });
});

describe('retry policies end to end', () => {
  const bed = useExecutorTestbed();
  const jobctl = useJobctl(bed);

  function spawnExecutor(): void {
    bed().spawnExecutor({ threads: 2, actionsDirs: [TEST_ACTIONS, RETRY_ACTIONS] });
  }

  async function create(b: ExecutorTestbed, action: string, fields: Record<string, unknown> = {}): Promise<string> {
    const created = await b.client.create({ action, ...fields });
    await b.queue.put(created.id, 100);
    return created.id;
  }

  /** The job's events from now on, collected until `stop` aborts. */
  function collectEvents(b: ExecutorTestbed, job: string, stop: AbortSignal): { events: JobEvent[]; opened: Promise<void> } {
    const events: JobEvent[] = [];
    let open: () => void = () => undefined;
    const opened = new Promise<void>((resolve) => {
      open = resolve;
    });
    void (async () => {
      for await (const event of b.client.events({ job, signal: stop, onOpen: open })) events.push(event);
    })().catch(() => undefined);
    return { events, opened };
  }

  test('an action failing twice then succeeding ends SUCCESS at attempt 3, with back-off gaps of 1 s then 2 s', async () => {
    bed().spawnDistributor({ names: ['job_scheduler'] });
    spawnExecutor();
    const stop = new AbortController();
    const b = bed();
    const created = await b.client.create({ action: 'flaky', payload: JSON.stringify({ failUntil: 2 }) });
    const { events, opened } = collectEvents(b, created.id, stop.signal);
    await opened;
    await b.queue.put(created.id, 100);
    const job = await b.waitForState(created.id, ['SUCCESS', 'FAILED'], 40_000);
    stop.abort();
    assert.equal(job.state, 'SUCCESS');
    assert.equal(job.attempt, 3);
    assert.equal(job['dead-letter'], undefined);
    const history = job['attempt-history'] ?? [];
    assert.deepEqual(
      history.map((record) => [record.attempt, record.state, record['return-code']]),
      [
        [1, 'QUEUED', 3],
        [2, 'QUEUED', 3],
        [3, 'SUCCESS', 0],
      ],
    );
    // Back-off 1 s then 2 s (exponential from 1 s); the scheduler and a loaded machine may add to it.
    const gap = (from: number, to: number): number => Date.parse(history[to]?.started ?? '') - Date.parse(history[from]?.ended ?? '');
    const gaps = [gap(0, 1), gap(1, 2)];
    assert.ok(gaps[0] !== undefined && gaps[0] >= 1000 && gaps[0] < 1000 + 2500, `first gap ${String(gaps[0])} ms, 1 s wanted`);
    assert.ok(gaps[1] !== undefined && gaps[1] >= 2000 && gaps[1] < 2000 + 2500, `second gap ${String(gaps[1])} ms, 2 s wanted`);
    await waitFor(() => events.some((event) => event.type === 'finished'), { message: 'the finished event' });
    const scheduled = events.filter((event) => event.type === 'retry-scheduled');
    assert.equal(scheduled.length, 2);
    const [firstRetry] = scheduled;
    assert.equal(firstRetry?.['return-code'], 3);
    assert.ok(firstRetry['not-before'] !== undefined, 'retry-scheduled carries the next run time');
    assert.equal(events.filter((event) => event.type === 'released').length, 0);
  });

  test('a job always failing is dead-lettered after its attempts, listed by jobctl dead, and revived by jobctl retry --dead', async () => {
    bed().spawnDistributor({ names: ['job_scheduler'] });
    spawnExecutor();
    const b = bed();
    const stop = new AbortController();
    const created = await b.client.create({ action: 'always_fails' });
    const { events, opened } = collectEvents(b, created.id, stop.signal);
    await opened;
    await b.queue.put(created.id, 100);
    const dead = await b.waitForState(created.id, ['FAILED'], 30_000);
    assert.equal(dead.attempt, 3);
    assert.equal(dead['return-code'], 7);
    assert.match(
      dead['dead-letter']?.reason ?? '',
      /^gave up after 3 attempts \(retry policy attempts 3\): the last failed with return code 7/,
    );
    await waitFor(() => events.some((event) => event.type === 'dead-lettered'), { message: 'the dead-lettered event' });
    stop.abort();
    assert.match(events.find((event) => event.type === 'dead-lettered')?.reason ?? '', /^gave up after 3 attempts/);
    // A plain failure (no policy) is not a dead letter.
    const plain = await create(b, 'noop', { payload: JSON.stringify({ returnCode: 2 }) });
    assert.equal((await b.waitForState(plain, ['FAILED', 'SUCCESS'])).state, 'FAILED');

    const listed = await jobctl.run(['dead', '--json']);
    assert.equal(listed.code, 0, listed.stderr);
    const body = JSON.parse(listed.stdout) as { count: number; byAction: Record<string, number>; jobs: JobDocument[] };
    assert.equal(body.count, 1);
    assert.deepEqual(body.byAction, { always_fails: 1 });
    assert.equal(body.jobs[0]?.id, created.id);
    const table = await jobctl.run(['dead']);
    assert.match(table.stdout, /always_fails\s+1/);
    const shown = await jobctl.run(['show', created.id]);
    assert.match(shown.stdout, /dead letter\s+gave up after 3 attempts/);
    assert.match(shown.stdout, /^attempts\n {2}#1 .* QUEUED {2}rc 7 /m);
    const none = await jobctl.run(['dead', '--action', 'other', '--json']);
    assert.equal((JSON.parse(none.stdout) as { count: number }).count, 0);

    const revived = await jobctl.run(['retry', '--dead', '--action', 'always_fails', '--json']);
    assert.equal(revived.code, 0, revived.stderr);
    assert.equal((JSON.parse(revived.stdout) as { retried: number }).retried, 1);
    // A whole new round: three more attempts, then dead again.
    const again = await waitFor(
      async () => {
        const { job } = await b.client.get(created.id);
        return job.state === 'FAILED' && (job.attempt ?? 0) > 3 ? job : undefined;
      },
      { timeoutMs: 30_000, message: 'the revived job dead-lettered again' },
    );
    assert.equal(again.attempt, 6);
    assert.equal(again['retried-at-attempt'], 3);
    assert.ok(again['dead-letter'] !== undefined);
  });

  test('a timed-out attempt is retried (whatever `on` lists); a cancelled job is not', async () => {
    bed().spawnDistributor({ names: ['job_scheduler'] });
    spawnExecutor();
    const b = bed();
    const slow = await create(b, 'slow_first');
    const done = await b.waitForState(slow, ['SUCCESS', 'FAILED'], 30_000);
    assert.equal(done.state, 'SUCCESS');
    assert.equal(done.attempt, 2);
    assert.equal(done['attempt-history']?.[0]?.['return-code'], 124);

    const waiting = await create(b, 'wait_forever');
    await waitFor(async () => (await b.client.get(waiting)).job.progress >= 1, { message: 'wait_forever running' });
    await b.client.cancel(waiting);
    await waitFor(async () => (await b.queue.length()) === 0, { message: 'its entry consumed' });
    const { job } = await b.client.get(waiting);
    assert.equal(job.state, 'CANCELED');
    assert.equal(job.attempt, 1);
    assert.equal(job['not-before'], undefined);
    assert.equal(job['dead-letter'], undefined);
  });

  test('a bad retry policy on a job is refused naming the field; a bad one in a module is reported by the executor', async () => {
    const b = bed();
    await assert.rejects(
      b.client.create({ action: 'noop', retry: { attempts: 2, backoff: 'sometimes' } as never }),
      (error: unknown) =>
        error instanceof ApiError &&
        error.code === 'bad-request' &&
        /invalid retry policy: "retry"\.backoff must be one of exponential, fixed, got "sometimes"/.test(error.message),
    );
    const id = await create(b, 'noop');
    await assert.rejects(
      b.client.edit(id, { retry: { 'delay-seconds': -1 } }),
      /"retry"\.delay-seconds must be a number of seconds from 0 to/,
    );
    const refused = await jobctl.run(['create', 'noop', '--retry', '{"attempts": 2, "jitter": 3}']);
    assert.equal(refused.code, 2);
    assert.match(refused.stderr, /invalid retry policy: --retry\.jitter must be a fraction from 0 to 1/);

    const executor = b.spawnExecutor({ threads: 1, actionsDirs: [TEST_ACTIONS, BAD_RETRY_ACTIONS] });
    await executor.waitForLine(/bad-retry\.ts/, 20_000);
    const line = executor.lines.find((text) => text.includes('bad-retry.ts')) ?? '';
    assert.match(line, /invalid action \\?"bad_retry\\?" definition/);
    assert.match(line, /retry\.attempts must be an integer from 1 to 1000, got number 0/);
    assert.match(line, /retry\.backoff must be one of exponential, fixed, got \\?"linear\\?"/);
    assert.match(line, /retry\.delaySeconds must be a number of seconds from 0/);
  });
});
