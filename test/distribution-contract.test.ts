/**
 * The distribution contract without any server: definitions, schedules and their ticks, job specs,
 * idempotency keys, the drop-in loader and the choice of distributions a process runs.
 */
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { describe, it } from 'node:test';
import { defineDistribution, distributionSpecProblems } from '../src/sdk/distribution.js';
import { jobSpecProblems } from '../src/sdk/job-spec.js';
import { scheduleProblems } from '../src/sdk/schedule-spec.js';
import { loadDistributions } from '../src/distributor/distribution-loader.js';
import { DistributorStartError, selectDistributions } from '../src/distributor/distributor.js';
import { BUNDLED_DISTRIBUTORS_DIR } from '../src/distributor/options.js';
import { compileSchedule, parseScheduleText } from '../src/distributor/schedule.js';
import { idempotencyKeyOf, newJobOf } from '../src/distributor/tick.js';
import { silentLogger } from '../src/util/logger.js';

const BROKEN = fileURLToPath(new URL('./fixtures/distributions-broken', import.meta.url));
const TEST_DISTRIBUTIONS = fileURLToPath(new URL('./fixtures/distributions', import.meta.url));

describe('defineDistribution', () => {
  it('accepts a definition, fills in the defaults and freezes a copy', () => {
    const spec = { name: 'nightly', schedule: { cron: '0 3 * * *', timezone: 'UTC' }, jobs: () => [{ action: 'x' }] };
    const definition = defineDistribution(spec);
    assert.equal(definition.enabledByDefault, true);
    assert.equal(definition.catchUpSeconds, 300);
    assert.ok(Object.isFrozen(definition));
    spec.name = 'changed';
    assert.equal(definition.name, 'nightly');
  });

  it('names every problem of a bad definition at once', () => {
    const problems = distributionSpecProblems({
      name: 'has space',
      schedule: { cron: '61 * * * *', timezone: 'Mars/Olympus' },
      enabledByDefault: 'yes',
      tick: 1,
    });
    const text = problems.join('\n');
    assert.match(text, /name must be 1-128 characters/);
    assert.match(text, /schedule.cron "61 \* \* \* \*" is not a valid cron expression \(minute: /);
    assert.match(text, /schedule.timezone must be an IANA time zone/);
    assert.match(text, /enabledByDefault must be true or false/);
    assert.match(text, /give exactly one of jobs .* or run/);
    assert.match(text, /unknown field\(s\) tick/);
    assert.throws(
      () => defineDistribution({ name: 'both', schedule: { everySeconds: 0 }, jobs: () => [], run: () => undefined }),
      /invalid distribution "both" definition: schedule.everySeconds must be a whole number of seconds from 1 .*; give exactly one of jobs/,
    );
  });

  it('checks job specs field by field', () => {
    assert.deepEqual(
      jobSpecProblems({ action: 'cleanup_jobs', target: 'nuvlabox/1', priority: 5, payload: { a: 1 }, timeoutSeconds: 60, tags: ['t'] }),
      [],
    );
    const text = jobSpecProblems({ action: 'bad action', priority: 1000, payload: () => 1, timeoutSeconds: 0.5, colour: 'red' }).join('\n');
    assert.match(text, /action must be an action name, got "bad action"/);
    assert.match(text, /priority must be an integer from 0 to 999, got 1000/);
    assert.match(text, /payload must be a JSON value/);
    assert.match(text, /timeoutSeconds must be a whole number of seconds/);
    assert.match(text, /unknown field\(s\) colour/);
    assert.deepEqual(jobSpecProblems('x'), ['a job spec must be an object, got "x"']);
  });
});

describe('schedules', () => {
  it('ticks an interval at its multiples since the epoch, the same in every process', () => {
    const schedule = compileSchedule({ everySeconds: 15 });
    assert.equal(schedule.description, 'every 15 s');
    assert.equal(schedule.next(new Date('2026-11-29T10:00:07.300Z')).toISOString(), '2026-11-29T10:00:15.000Z');
    assert.equal(schedule.next(new Date('2026-11-29T10:00:15.000Z')).toISOString(), '2026-11-29T10:00:30.000Z');
    assert.equal(schedule.latestWithin(new Date('2026-11-29T10:00:20.000Z'), 5000)?.toISOString(), '2026-11-29T10:00:15.000Z');
    assert.equal(schedule.latestWithin(new Date('2026-11-29T10:00:20.000Z'), 4999), undefined);
  });

  it('ticks a cron expression strictly after the current second, and finds the latest tick within a window', () => {
    const schedule = compileSchedule({ cron: '*/2 * * * * *' });
    assert.equal(schedule.description, 'cron "*/2 * * * * *" (UTC)');
    const now = new Date();
    const next = schedule.next(now);
    assert.ok(next.getTime() > now.getTime() && next.getTime() - now.getTime() <= 2000, `${next.toISOString()} after ${now.toISOString()}`);
    assert.equal(next.getUTCSeconds() % 2, 0);
    assert.equal(next.getUTCMilliseconds(), 0);
    const daily = compileSchedule({ cron: '0 3 * * *', timezone: 'UTC' });
    assert.equal(daily.latestWithin(new Date('2026-11-29T03:04:00.500Z'), 300_000)?.toISOString(), '2026-11-29T03:00:00.000Z');
    assert.equal(daily.latestWithin(new Date('2026-11-29T03:06:00.000Z'), 300_000), undefined);
    const zurich = compileSchedule({ cron: '0 3 * * *', timezone: 'Europe/Zurich' });
    assert.equal(zurich.latestWithin(new Date('2026-11-29T02:00:30.000Z'), 60_000)?.toISOString(), '2026-11-29T02:00:00.000Z');
    assert.match(zurich.description, /Europe\/Zurich/);
    // Without a zone, UTC whatever the machine's: 03:00 UTC, not 03:00 local.
    const unzoned = compileSchedule({ cron: '0 3 * * *' });
    assert.equal(unzoned.latestWithin(new Date('2026-11-29T03:00:30.000Z'), 60_000)?.toISOString(), '2026-11-29T03:00:00.000Z');
  });

  it('reads an operator override: 15s, 5m, 1h, 1d, or a cron expression with an optional @zone', () => {
    assert.deepEqual(parseScheduleText('15s'), { everySeconds: 15 });
    assert.deepEqual(parseScheduleText('5m'), { everySeconds: 300 });
    assert.deepEqual(parseScheduleText('1h'), { everySeconds: 3600 });
    assert.deepEqual(parseScheduleText('1d'), { everySeconds: 86_400 });
    assert.deepEqual(parseScheduleText('0 4 * * *'), { cron: '0 4 * * *' });
    assert.deepEqual(parseScheduleText('0 4 * * *@Europe/Zurich'), { cron: '0 4 * * *', timezone: 'Europe/Zurich' });
    assert.deepEqual(scheduleProblems(parseScheduleText('@daily')), []);
    assert.match(scheduleProblems(parseScheduleText('0s')).join(), /everySeconds must be a whole number of seconds from 1/);
  });
});

describe('ticks', () => {
  it('keys a job by distribution, tick and target, hashing a target too long for a key', () => {
    const tick = new Date('2026-11-29T03:00:00.000Z');
    assert.equal(idempotencyKeyOf('cleanup_jobs', tick, undefined), 'distribution/cleanup_jobs/2026-11-29T03:00:00.000Z/-');
    assert.equal(idempotencyKeyOf('monitor', tick, 'nuvlabox/42'), 'distribution/monitor/2026-11-29T03:00:00.000Z/nuvlabox/42');
    const long = idempotencyKeyOf('monitor', tick, `x/${'y'.repeat(600)}`);
    assert.ok(long.length <= 512);
    assert.match(long, /^distribution\/monitor\/2026-11-29T03:00:00.000Z\/sha256:[0-9a-f]{64}$/);
  });

  it('turns a job spec into the job document to create', () => {
    assert.deepEqual(newJobOf({ action: 'a', target: 't/1', priority: 3, payload: { n: 1 }, timeoutSeconds: 9, tags: ['x'] }, 'k'), {
      action: 'a',
      'target-resource': { href: 't/1' },
      priority: 3,
      payload: '{"n":1}',
      timeout: 9,
      tags: ['x'],
      'idempotency-key': 'k',
    });
    assert.deepEqual(newJobOf({ action: 'a' }, undefined), { action: 'a' });
  });
});

describe('loading and choosing distributions', () => {
  it('loads the good modules and names the file of each broken one', async () => {
    const loaded = await loadDistributions([BROKEN], silentLogger);
    assert.deepEqual([...loaded.definitions.keys()], ['good']);
    const failures = loaded.failures.map((failure) => `${failure.file.replace(`${BROKEN}/`, '')}: ${failure.error}`);
    assert.equal(failures.length, 2);
    assert.match(failures[0] ?? '', /^not-defined.ts: exported distribution is invalid: not made by defineDistribution/);
    assert.match(
      failures[1] ?? '',
      /^throws.ts: import failed: invalid distribution "bad cron" definition: name must be .*; schedule.cron "99 \* \* \* \*"/,
    );
  });

  it('runs the named distributions, and with --all those enabled by default', async () => {
    const loaded = await loadDistributions([BUNDLED_DISTRIBUTORS_DIR, TEST_DISTRIBUTIONS, BROKEN], silentLogger);
    const names = (options: { names?: string[]; all?: boolean; schedules?: string[] }): string[] =>
      selectDistributions(loaded, {
        names: options.names ?? [],
        all: options.all ?? false,
        schedules: new Map((options.schedules ?? []).map((name) => [name, { everySeconds: 1 }])),
      }).map((definition) => definition.name);
    assert.deepEqual(names({ names: ['dummy_test_action'] }), ['dummy_test_action']);
    const all = names({ all: true });
    assert.ok(all.includes('cleanup_jobs') && all.includes('queue_reconciler'));
    assert.equal(all.includes('dummy_test_action'), false, 'off unless named');
    assert.equal(all.includes('good'), false, 'off unless named');
    assert.ok(names({ all: true, names: ['dummy_test_action'] }).includes('dummy_test_action'));
    assert.throws(
      () => names({ names: ['nope'] }),
      (error: unknown) => {
        assert.ok(error instanceof DistributorStartError);
        assert.match(
          error.message,
          /unknown distribution nope; available: .*cleanup_jobs.*; modules that failed to load: .*not-defined.ts/,
        );
        return true;
      },
    );
    assert.throws(() => names({ names: ['ticker'], schedules: ['hourly'] }), /--schedule names hourly, which this process does not run/);
  });
});
