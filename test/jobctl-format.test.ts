/**
 * jobctl's pure parts, in-process: durations, ages, progress bars and estimates, tables, the filters
 * `list` builds, job ids, the exit code of `create --wait`, failures as one line, and how the event
 * feed treats a stream that breaks.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApiError } from '../src/api/errors.js';
import type { JobEvent } from '../src/api/job/events.js';
import { OptionsError } from '../src/cli/option-readers.js';
import { exitCodeOf } from '../src/jobctl/create.js';
import { describeFailure } from '../src/jobctl/errors.js';
import { EventFeed } from '../src/jobctl/event-feed.js';
import { applyEvent } from '../src/jobctl/follow.js';
import { listFilter, quote } from '../src/jobctl/list-show.js';
import { parseJobId } from '../src/jobctl/options.js';
import { describeEstimate, estimate, progressBar } from '../src/jobctl/progress.js';
import { renderFields, renderTable } from '../src/jobctl/table.js';
import { formatAge, formatDuration, formatWholeSeconds } from '../src/jobctl/time-format.js';
import { ZkError } from '../src/zk/errors.js';

const NOW = Date.parse('2026-11-30T12:00:00.000Z');

function event(type: JobEvent['type'], fields: Partial<JobEvent> = {}): JobEvent {
  return {
    seq: 1,
    type,
    at: '2026-11-30T12:00:00.000Z',
    job: 'job/00000000-0000-7000-8000-000000000001',
    action: 'a',
    state: 'RUNNING',
    ...fields,
  };
}

describe('jobctl formatting', () => {
  test('durations and ages in the units that matter', () => {
    assert.deepEqual([420, 12_345, 61_000, 192_000, 7_500_000, 2 * 86_400_000 + 3_600_000].map(formatDuration), [
      '0.4 s',
      '12 s',
      '1 m 1 s',
      '3 m 12 s',
      '2 h 5 m',
      '2 d 1 h',
    ]);
    // A job's duration is whole seconds: no tenths it does not have.
    assert.deepEqual([0, 1, 3, 59, 192, 7500].map(formatWholeSeconds), ['< 1 s', '1 s', '3 s', '59 s', '3 m 12 s', '2 h 5 m']);
    assert.equal(formatAge('2026-11-30T11:57:00.000Z', NOW), '3 m ago');
    assert.equal(formatAge('2026-11-30T11:59:59.500Z', NOW), 'just now');
    assert.equal(formatAge('2026-11-30T12:00:05.000Z', NOW), 'in 5 s');
    assert.equal(formatAge(undefined, NOW), '-');
  });

  test('a progress bar, and a rate and time left only with progress since a start', () => {
    assert.equal(progressBar(58, 12), '[#######-----] 58%');
    assert.equal(progressBar(150, 4), '[####] 100%');
    const guess = estimate(50, NOW - 10_000, NOW);
    assert.deepEqual(guess, { ratePerSecond: 5, remainingMs: 10_000 });
    assert.equal(describeEstimate(guess), '5.0 %/s, about 10 s left');
    assert.equal(estimate(0, NOW - 10_000, NOW), undefined);
    assert.equal(estimate(30, undefined, NOW), undefined);
  });

  test('tables align columns without trailing spaces and clip long values; fields align labels', () => {
    const rows = [
      { a: 'x', n: 5, m: 'short' },
      { a: 'longer', n: 100, m: 'a message\nover two lines that is long' },
    ];
    assert.deepEqual(
      renderTable(
        [
          { header: 'A', value: (row) => row.a },
          { header: 'N', value: (row) => String(row.n), align: 'right' },
          { header: 'M', value: (row) => row.m, maxWidth: 20 },
        ],
        rows,
      ),
      ['A         N  M', 'x         5  short', 'longer  100  a message over two…'],
    );
    assert.deepEqual(
      renderFields([
        ['id', 'job/1'],
        ['owner', undefined],
        ['progress', '0%'],
      ]),
      ['id        job/1', 'progress  0%'],
    );
  });

  test('list options become one CIMI filter with quoted values', () => {
    assert.equal(
      listFilter({ state: ['queued,Running'], action: "it's", filter: "created<'now-1h' or priority<5" }),
      "state=['QUEUED','RUNNING'] and action='it\\'s' and (created<'now-1h' or priority<5)",
    );
    assert.equal(listFilter({ filter: "action='x'" }), "action='x'");
    assert.equal(listFilter({}), undefined);
    assert.equal(quote('a\\b'), "'a\\\\b'");
    assert.throws(() => listFilter({ state: ['done'] }), /--state "done" is not a job state/);
  });

  test('job ids: job/<uuid> or a bare uuid, lowercased; anything else is a usage error', () => {
    assert.equal(parseJobId('0192F0C4-0000-7000-8000-00000000000A'), 'job/0192f0c4-0000-7000-8000-00000000000a');
    assert.equal(parseJobId('job/0192f0c4-0000-7000-8000-00000000000a'), 'job/0192f0c4-0000-7000-8000-00000000000a');
    assert.throws(
      () => parseJobId('job/'),
      (error: unknown) => describeFailure(error, { apiUrl: '' }).exitCode === 2,
    );
  });

  test('create --wait exits 0 on SUCCESS, with the return code on FAILED (1 if none or out of range), 130 on CANCELED', () => {
    assert.equal(exitCodeOf({ state: 'SUCCESS', 'return-code': 0 }), 0);
    assert.equal(exitCodeOf({ state: 'FAILED', 'return-code': 124 }), 124);
    assert.equal(exitCodeOf({ state: 'FAILED' }), 1);
    assert.equal(exitCodeOf({ state: 'FAILED', 'return-code': 256 }), 1);
    assert.equal(exitCodeOf({ state: 'FAILED', 'return-code': 0 }), 1);
    assert.equal(exitCodeOf({ state: 'CANCELED' }), 130);
  });

  test('failures become one line with an exit code: usage 2, the rest 1', () => {
    const api = { apiUrl: 'http://api:8200' };
    assert.deepEqual(describeFailure(new OptionsError('--last must be'), api), { message: '--last must be', exitCode: 2 });
    assert.deepEqual(describeFailure(new ApiError('bad-request', 'filter syntax error\nat 3'), api), {
      message: 'filter syntax error at 3',
      exitCode: 2,
    });
    assert.equal(describeFailure(new ApiError('not-found', 'job/x not found'), api).exitCode, 1);
    assert.match(
      describeFailure(new ApiError('unavailable', 'GET /api/job: the job API did not answer: ECONNREFUSED'), api).message,
      /^cannot reach the job API at http:\/\/api:8200: GET \/api\/job: ECONNREFUSED$/,
    );
    assert.deepEqual(describeFailure(new ZkError('NO_AUTH', 'not allowed'), api), {
      message:
        "ZooKeeper refused access to a node (NO_AUTH): the engine's nodes are closed to this identity; give the engine's identity file with --zk-auth-file (or JOBCTL_ZK_AUTH_FILE)",
      exitCode: 1,
    });
  });

  test('events update what is known of a job; a new attempt restarts the rate', () => {
    const job = {
      id: 'job/1',
      action: 'a',
      state: 'QUEUED' as const,
      priority: 1,
      progress: 0,
      created: '2026-11-30T11:00:00.000Z',
      started: '2026-11-30T11:00:01.000Z',
    };
    const started = applyEvent(job, event('started', { executor: 'e@1', attempt: 2 }));
    assert.equal(started.state, 'RUNNING');
    assert.equal(started.started, '2026-11-30T12:00:00.000Z');
    assert.equal(started.attempt, 2);
    const progressed = applyEvent(started, event('progress', { progress: 40, 'status-message': 'copying' }));
    assert.equal(progressed.progress, 40);
    assert.equal(progressed['status-message'], 'copying');
  });
});

describe('jobctl event feed', () => {
  function source(streams: (() => AsyncGenerator<JobEvent>)[]) {
    let opened = 0;
    return {
      get opened() {
        return opened;
      },
      events: () => {
        const next = streams[opened] ?? streams.at(-1);
        opened += 1;
        if (next === undefined) throw new Error('no stream');
        return next();
      },
    };
  }

  test('a stream that worked and breaks is opened once more; a second break in a row fails the feed', async () => {
    const broken = new ApiError('unavailable', 'reset');
    const streams = source([
      async function* () {
        await Promise.resolve();
        yield event('started');
        throw broken;
      },
      async function* () {
        await Promise.resolve();
        yield* [];
        throw broken;
      },
    ]);
    const feed = EventFeed.open(streams, {}, new AbortController().signal);
    assert.equal(((await feed.next(1000)) as { kind: string }).kind, 'event');
    assert.deepEqual(await feed.next(1000), { kind: 'reopened', reason: 'reset' });
    await assert.rejects(feed.next(1000), /broke twice in a row: reset/);
    assert.equal(streams.opened, 2);
  });

  test('a refused stream fails at once; a quiet one says idle; an abort ends it', async () => {
    const refused = EventFeed.open(
      source([
        async function* () {
          await Promise.resolve();
          yield* [];
          throw new ApiError('bad-request', '"action" must be an action name');
        },
      ]),
      {},
      new AbortController().signal,
    );
    await assert.rejects(refused.next(1000), /"action" must be an action name/);

    const stop = new AbortController();
    const quiet = EventFeed.open(
      source([
        async function* () {
          await new Promise((resolve) => setTimeout(resolve, 60_000).unref());
          yield event('started');
        },
      ]),
      {},
      stop.signal,
    );
    assert.equal(await quiet.next(20), 'idle');
    stop.abort();
    assert.equal(await quiet.next(1000), 'ended');
  });
});
