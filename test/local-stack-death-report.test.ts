/** The rules of the local stack's death reports and restarts, without a stack. */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { causeLines, nextRestart, restartDelayMs, STABLE_AFTER_MS } from '../src/local-stack/death-report.js';

describe('local stack death reports', () => {
  test('the cause is the warnings, errors and non-log lines, not the ordinary lines', () => {
    const log = [
      '--- 2026-12-05T07:05:38.741Z local stack: /usr/bin/node job-api.js serve',
      '2026-12-05T07:05:39.610Z info job api listening {"daemon":"job-api"}',
      '2026-12-05T07:05:40.000Z warn ZooKeeper not reachable {"daemon":"job-api"}',
      '2026-12-05T07:05:41.416Z info job created {"event":"job.created"}',
      '2026-12-05T07:05:41.500Z debug something {"daemon":"job-api"}',
      'file:///x/job-api.js:12',
      "TypeError: Cannot read properties of undefined (reading 'x')",
      '    at main (file:///x/job-api.js:12:3)',
      '2026-12-05T07:05:42.000Z error job api request failed {"daemon":"job-api"}',
      '',
    ].join('\n');
    assert.deepEqual(causeLines(log, 10), [
      '2026-12-05T07:05:40.000Z warn ZooKeeper not reachable {"daemon":"job-api"}',
      'file:///x/job-api.js:12',
      "TypeError: Cannot read properties of undefined (reading 'x')",
      '    at main (file:///x/job-api.js:12:3)',
      '2026-12-05T07:05:42.000Z error job api request failed {"daemon":"job-api"}',
    ]);
    assert.deepEqual(causeLines(log, 2), [
      '    at main (file:///x/job-api.js:12:3)',
      '2026-12-05T07:05:42.000Z error job api request failed {"daemon":"job-api"}',
    ]);
    assert.deepEqual(causeLines('2026-12-05T07:05:39.610Z info all is well\n', 5), []);
  });

  test('restarts back off while deaths come in a row, and start over after a healthy run', () => {
    assert.deepEqual([1, 2, 3, 4, 5, 6, 7].map(restartDelayMs), [1000, 2000, 4000, 8000, 16_000, 30_000, 30_000]);
    assert.equal(nextRestart(undefined, 0), 1);
    assert.equal(nextRestart({ restart: 3, startedAt: 1000 }, 1000 + STABLE_AFTER_MS - 1), 4);
    assert.equal(nextRestart({ restart: 3, startedAt: 1000 }, 1000 + STABLE_AFTER_MS), 1);
  });
});
