/**
 * The two mechanisms every daemon shares, without any server: releasers (closers last-opened-first,
 * all of them, also after a failed start) and the one back-off loop.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ReleaseError, Releasers, startOrRelease } from '../src/util/releasers.js';
import { exponentialDelays, retrying } from '../src/util/retrying.js';
import { errorJsonReplacer } from '../src/util/errors.js';

describe('Releasers', () => {
  it('runs every closer last-opened-first, also after one fails, and names the failures', async () => {
    const releasers = new Releasers();
    const order: string[] = [];
    releasers.add('database', () => order.push('database'));
    await releasers.open('session', Promise.resolve('s'), async (session) => {
      order.push(session);
      await Promise.reject(new Error('socket gone'));
    });
    releasers.add('server', async () => {
      await Promise.resolve();
      order.push('server');
    });
    const failure = await releasers.releaseAll().then(
      () => assert.fail('releaseAll should report the failed closer'),
      (error: unknown) => error,
    );
    assert.deepEqual(order, ['server', 's', 'database']);
    assert.ok(failure instanceof ReleaseError);
    assert.equal(failure.errors.length, 1);
    assert.match(failure.message, /session: socket gone/);
  });

  it('is idempotent and refuses to hold anything once released', async () => {
    const releasers = new Releasers();
    let closes = 0;
    releasers.add('thing', () => closes++);
    const first = releasers.releaseAll();
    assert.equal(releasers.releaseAll(), first);
    await first;
    assert.equal(closes, 1);
    assert.throws(() => {
      releasers.add('late', () => undefined);
    }, /late: its owner is already released/);
  });

  it('releases what a failed start had opened and rethrows the start error unchanged', async () => {
    const releasers = new Releasers();
    const closed: string[] = [];
    const reported: Error[] = [];
    class StartError extends Error {}
    const failure = await startOrRelease(
      releasers,
      async (held) => {
        held.add('first', () => closed.push('first'));
        held.add('second', () => {
          closed.push('second');
          throw new Error('cannot close');
        });
        await Promise.resolve();
        throw new StartError('port in use');
      },
      (error) => reported.push(error),
    ).then(
      () => assert.fail('the start should fail'),
      (error: unknown) => error,
    );
    assert.ok(failure instanceof StartError);
    assert.deepEqual(closed, ['second', 'first']);
    assert.equal(reported.length, 1);
    assert.match(reported[0]?.message ?? '', /second: cannot close/);
  });
});

describe('retrying', () => {
  it('retries with the given waits until the attempt succeeds', async () => {
    const waits: number[] = [];
    const result = await retrying(
      async (attempt) => {
        await Promise.resolve();
        if (attempt < 4) throw new Error(`failure ${attempt}`);
        return attempt;
      },
      { delays: () => 1, keepProcessAlive: true, onRetry: (_error, next) => waits.push(next.retry) },
    );
    assert.equal(result, 4);
    assert.deepEqual(waits, [1, 2, 3]);
  });

  it('rethrows a failure that retryIf refuses, without waiting', async () => {
    let attempts = 0;
    await assert.rejects(
      retrying(
        async () => {
          attempts++;
          await Promise.resolve();
          throw new Error('fatal');
        },
        { delays: () => 60_000, retryIf: (error) => error instanceof Error && error.message !== 'fatal' },
      ),
      /fatal/,
    );
    assert.equal(attempts, 1);
  });

  it('stops waiting when its signal aborts', async () => {
    const controller = new AbortController();
    const attempts = retrying(
      async () => {
        await Promise.resolve();
        throw new Error('down');
      },
      {
        delays: () => 60_000,
        signal: controller.signal,
        keepProcessAlive: true,
        onRetry: () => {
          setImmediate(() => {
            controller.abort(new Error('stopping'));
          });
        },
      },
    );
    await assert.rejects(attempts, /stopping/);
  });

  it('with abortOnlyCutsWaits, still attempts once after the abort, and only the wait is cut short', async () => {
    const controller = new AbortController();
    controller.abort(new Error('stopping'));
    const seen: string[] = [];
    await assert.rejects(
      retrying(
        async () => {
          seen.push('attempt');
          await Promise.resolve();
          throw new Error('down');
        },
        {
          delays: () => 60_000,
          signal: controller.signal,
          abortOnlyCutsWaits: true,
          onRetry: (_error, next) => seen.push(`wait ${next.waitMs}`),
        },
      ),
      /stopping/,
    );
    assert.deepEqual(seen, ['attempt', 'wait 60000']);
  });

  it('doubles its waits up to the cap', () => {
    const delays = exponentialDelays(100, 1000);
    assert.deepEqual([1, 2, 3, 4, 5, 80].map(delays), [100, 200, 400, 800, 1000, 1000]);
  });
});

describe('errorJsonReplacer', () => {
  it('keeps the message, code, stack, cause chain and gathered errors of an error', () => {
    const root = Object.assign(new Error('connection refused'), { code: 'ECONNREFUSED' });
    const wrapped = new AggregateError([new Error('first')], 'start failed', { cause: root });
    const logged = JSON.parse(JSON.stringify({ error: wrapped }, errorJsonReplacer)) as {
      error: { message: string; stack: string; cause: { message: string; code: string; stack: string }; errors: { message: string }[] };
    };
    assert.equal(logged.error.message, 'start failed');
    assert.match(logged.error.stack, /AggregateError: start failed/);
    assert.equal(logged.error.cause.message, 'connection refused');
    assert.equal(logged.error.cause.code, 'ECONNREFUSED');
    assert.match(logged.error.cause.stack, /Error: connection refused/);
    assert.deepEqual(
      logged.error.errors.map((error) => error.message),
      ['first'],
    );
  });
});
