/**
 * The one enqueue path, without any server: `enqueued` announced before the entries exist (and a
 * failed announcement never failing the enqueue), ZooKeeper's passing failures retried, its other
 * failures and an abort ending in ZooKeeper's own error, and the first attempt made whatever the signal.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { PublishedJobEvent } from '../src/api/job/events.js';
import { JobEnqueuer, type QueueEntryWriter } from '../src/enqueue/job-enqueuer.js';
import type { PutRequest } from '../src/recipes/locking-queue.js';
import { silentLogger, type Logger } from '../src/util/logger.js';
import { ZkError } from '../src/zk/errors.js';

const JOBS = [
  { id: 'job/01234567-89ab-7def-8123-456789abcde1', priority: 5, action: 'a' },
  { id: 'job/01234567-89ab-7def-8123-456789abcde2', priority: 999, action: 'b' },
] as const;

/** A queue whose `putRouted` fails with `failures` first (one per call), then writes; it records every step. */
function fakeQueue(steps: string[], failures: Error[] = []): QueueEntryWriter & { calls: number } {
  const queue = {
    calls: 0,
    putRouted: (requests: readonly PutRequest[]): Promise<string[]> => {
      queue.calls += 1;
      const failure = failures.shift();
      if (failure !== undefined) {
        steps.push('put failed');
        return Promise.reject(failure);
      }
      steps.push(`put ${requests.map((request) => `${request.jobId}@${String(request.priority)}`).join(',')}`);
      return Promise.resolve(requests.map((_request, index) => `entry-${String(index)}`));
    },
  };
  return queue;
}

/**
 * The enqueuer's waits do not hold a process open (a stopping daemon must not wait for them), and
 * a fake queue holds nothing either: a ref'd timer keeps this test's process alive meanwhile.
 */
async function keptAlive(test: () => Promise<void>): Promise<void> {
  const handle = setInterval(() => undefined, 60_000);
  try {
    await test();
  } finally {
    clearInterval(handle);
  }
}

function warningsInto(warnings: string[]): Logger {
  return { ...silentLogger, warn: (message) => warnings.push(message) };
}

describe('JobEnqueuer', () => {
  it('announces every job as enqueued, then writes the entries, and answers their names in order', async () => {
    const steps: string[] = [];
    const published: PublishedJobEvent[] = [];
    const enqueuer = new JobEnqueuer({
      queue: fakeQueue(steps),
      logger: silentLogger,
      now: () => Date.parse('2026-01-02T03:04:05.678Z'),
      publish: (events) => {
        steps.push('publish');
        published.push(...events);
        return Promise.resolve();
      },
    });
    assert.deepEqual(await enqueuer.enqueue(JOBS), ['entry-0', 'entry-1']);
    assert.deepEqual(steps, ['publish', `put ${JOBS[0].id}@5,${JOBS[1].id}@999`]);
    assert.deepEqual(published, [
      { type: 'enqueued', at: '2026-01-02T03:04:05.678Z', job: JOBS[0].id, action: 'a', state: 'QUEUED', priority: 5 },
      { type: 'enqueued', at: '2026-01-02T03:04:05.678Z', job: JOBS[1].id, action: 'b', state: 'QUEUED', priority: 999 },
    ]);
    assert.deepEqual(await enqueuer.enqueue([]), []);
    assert.equal(steps.length, 2, 'nothing to enqueue: nothing published, nothing written');
  });

  it('writes the entries even when the announcement fails, and says so', async () => {
    const steps: string[] = [];
    const warnings: string[] = [];
    const enqueuer = new JobEnqueuer({
      queue: fakeQueue(steps),
      logger: warningsInto(warnings),
      publish: () => Promise.reject(new Error('API down')),
    });
    assert.deepEqual(await enqueuer.enqueue(JOBS.slice(0, 1)), ['entry-0']);
    assert.deepEqual(steps, [`put ${JOBS[0].id}@5`]);
    assert.deepEqual(warnings, ['enqueued events not published (the jobs are enqueued)']);
  });

  it('retries while ZooKeeper is out of reach, and rethrows any other failure unchanged', () =>
    keptAlive(async () => {
      const steps: string[] = [];
      const warnings: string[] = [];
      const away = fakeQueue(steps, [new ZkError('CONNECTION_LOSS', 'gone'), new ZkError('SESSION_EXPIRED', 'expired')]);
      assert.deepEqual(await new JobEnqueuer({ queue: away, logger: warningsInto(warnings) }).enqueue(JOBS.slice(0, 1)), ['entry-0']);
      assert.deepEqual(steps, ['put failed', 'put failed', `put ${JOBS[0].id}@5`]);
      assert.deepEqual(warnings, ['enqueue failed, retrying', 'enqueue failed, retrying']);

      const refused = new ZkError('NO_AUTH', 'not allowed');
      const refusing = fakeQueue([], [refused]);
      await assert.rejects(new JobEnqueuer({ queue: refusing, logger: silentLogger }).enqueue(JOBS), (error) => error === refused);
      assert.equal(refusing.calls, 1);
    }));

  it('makes the first attempt whatever the signal, and an abort while waiting ends with the last ZooKeeper failure', () =>
    keptAlive(async () => {
      const aborted = AbortSignal.abort(new Error('stopping'));
      const written = fakeQueue([]);
      assert.deepEqual(await new JobEnqueuer({ queue: written, logger: silentLogger }).enqueue(JOBS.slice(0, 1), aborted), ['entry-0']);
      const lost = new ZkError('CONNECTION_LOSS', 'gone');
      const once = fakeQueue([], [lost]);
      await assert.rejects(new JobEnqueuer({ queue: once, logger: silentLogger }).enqueue(JOBS, aborted), (error) => error === lost);
      assert.equal(once.calls, 1, 'an aborted signal allows no retry');

      const controller = new AbortController();
      const waiting = fakeQueue([], [new ZkError('CONNECTION_LOSS', 'first'), lost]);
      const logger: Logger = {
        ...silentLogger,
        // Aborted as the second retry is announced, so the abort lands in its wait.
        warn: () => {
          if (waiting.calls === 2) controller.abort(new Error('stopping'));
        },
      };
      await assert.rejects(new JobEnqueuer({ queue: waiting, logger }).enqueue(JOBS, controller.signal), (error) => error === lost);
      assert.equal(waiting.calls, 2);
    }));
});
