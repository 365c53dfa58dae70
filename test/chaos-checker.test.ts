/**
 * The chaos suite's judge (chaos/checker.ts) on made-up histories: each violation it exists to catch
 * is caught, and an orderly history passes. Without this, a checker that never complains would pass
 * every chaos run.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { judge, type ObservedJob, type WorkloadRecord } from '../chaos/checker.js';
import { parseSideEffects } from '../chaos/side-effects.js';

const NOTHING_DONE: WorkloadRecord = { cancelled: new Set(), retried: new Set() };

function job(id: string, fields: Partial<ObservedJob> = {}): ObservedJob {
  return {
    id,
    state: 'SUCCESS',
    returnCode: 0,
    statusMessage: undefined,
    outcome: 'succeed',
    tick: undefined,
    target: undefined,
    ...fields,
  };
}

/** Effect lines for one run: start at `from`, beats every 20 ms, end at `to` (unless cut). */
function run(jobId: string, runId: string, pid: number, from: number, to: number, ended = true): string {
  const lines = [`${jobId} ${runId} ${String(pid)} start ${String(from)}`];
  for (let at = from + 20; at < to; at += 20) lines.push(`${jobId} ${runId} ${String(pid)} beat ${String(at)}`);
  lines.push(`${jobId} ${runId} ${String(pid)} ${ended ? 'end' : 'beat'} ${String(to)}`);
  return lines.join('\n');
}

describe('the chaos checker', () => {
  test('an orderly history passes, re-runs after a fault counted but allowed', () => {
    const effects = parseSideEffects(
      [run('job/a', 'r1', 1, 1000, 1500, false), run('job/a', 'r2', 2, 6000, 6400), run('job/b', 'r3', 2, 1000, 1200)].join('\n'),
    );
    const verdict = judge([job('job/a'), job('job/b')], effects, NOTHING_DONE, [
      { kind: 'executor kill -9', target: 'e1', at: 1400, heldMs: 800 },
    ]);
    assert.equal(verdict.ok, true, verdict.violations.join('; '));
    assert.equal(verdict.reRuns, 1);
    assert.deepEqual(verdict.faultsByKind, { 'executor kill -9': 1 });
  });

  test('two runs of one job with effects at the same time are a concurrent double run', () => {
    const effects = parseSideEffects([run('job/a', 'r1', 1, 1000, 3000, false), run('job/a', 'r2', 2, 2500, 3500)].join('\n'));
    const verdict = judge([job('job/a')], effects, NOTHING_DONE, []);
    assert.equal(verdict.ok, false);
    assert.equal(verdict.concurrentDoubleRuns.length, 1);
    assert.equal(verdict.concurrentDoubleRuns[0]?.overlapMs, 500);
  });

  test('one effect of a stale run inside another run counts too (a beat after SIGCONT)', () => {
    const effects = parseSideEffects([run('job/a', 'r2', 2, 2000, 3000), 'job/a r1 1 start 1000', 'job/a r1 1 beat 2500'].join('\n'));
    assert.equal(judge([job('job/a')], effects, NOTHING_DONE, []).concurrentDoubleRuns.length, 1);
  });

  test('a job that is not final after the drain is lost', () => {
    const verdict = judge([job('job/a', { state: 'QUEUED' }), job('job/b', { state: 'RUNNING' })], parseSideEffects(''), NOTHING_DONE, []);
    assert.deepEqual(verdict.lost, ['job/a', 'job/b']);
    assert.equal(verdict.ok, false);
  });

  test("a final state that is not the action's own is an engine failure, unless someone cancelled the job", () => {
    const jobs = [
      job('job/stopped', { state: 'FAILED', returnCode: 1, statusMessage: 'the action was stopped' }),
      job('job/canceled-by-nobody', { state: 'CANCELED', returnCode: undefined }),
      job('job/canceled-by-us', { state: 'CANCELED', returnCode: undefined }),
      job('job/asked-to-fail', { state: 'FAILED', returnCode: 3, outcome: 'fail' }),
      job('job/asked-to-fail-but-succeeded', { state: 'SUCCESS', returnCode: 0, outcome: 'fail' }),
      job('job/timed-out', { state: 'FAILED', returnCode: 124, outcome: 'hang' }),
      job('job/timeout-failed-otherwise', { state: 'FAILED', returnCode: 1, outcome: 'timeout' }),
    ];
    const verdict = judge(jobs, parseSideEffects(''), { cancelled: new Set(['job/canceled-by-us']), retried: new Set() }, []);
    assert.deepEqual(
      verdict.engineFailures.map((failure) => failure.job),
      ['job/stopped', 'job/canceled-by-nobody', 'job/asked-to-fail-but-succeeded', 'job/timeout-failed-otherwise'],
    );
  });

  test('two jobs for one target of one tick are a duplicate tick job; other ticks and targets are not', () => {
    const tick = '2026-12-05T06:00:03.000Z';
    const jobs = [
      job('job/1', { tick, target: 'chaos-tick/0' }),
      job('job/2', { tick, target: 'chaos-tick/0' }),
      job('job/3', { tick, target: 'chaos-tick/1' }),
      job('job/4', { tick: '2026-12-05T06:00:06.000Z', target: 'chaos-tick/0' }),
    ];
    const verdict = judge(jobs, parseSideEffects(''), NOTHING_DONE, []);
    assert.deepEqual(verdict.duplicateTickJobs, [{ tick, target: 'chaos-tick/0', jobs: ['job/1', 'job/2'] }]);
  });

  test('runs a retry asked for are not re-runs, and a torn line is reported', () => {
    const effects = parseSideEffects([run('job/a', 'r1', 1, 1000, 1200), run('job/a', 'r2', 1, 5000, 5200), 'job/a r3 1 sta'].join('\n'));
    const verdict = judge([job('job/a')], effects, { cancelled: new Set(), retried: new Set(['job/a']) }, []);
    assert.equal(verdict.reRuns, 0);
    assert.equal(verdict.malformedEffects, 1);
    assert.equal(verdict.ok, false);
  });
});
