/**
 * jobctl's ZooKeeper views on a real stack: `queue` (entries per priority, taken entries and the live
 * executor holding each, the oldest waiting entry) and `leaders` (each distribution's leader and
 * standbys, with `job-distributor` processes and a kazoo-style contender), human and --json.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import { waitFor } from '../src/harness/wait-for.js';
import { LeaderElection } from '../src/recipes/election.js';
import { isRecord } from '../src/util/is-record.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';
import { useJobctl } from './fixtures/jobctl-stack.js';

const bed = useExecutorTestbed();
const jobctl = useJobctl(bed);

function field(value: unknown, name: string): unknown {
  return isRecord(value) ? value[name] : undefined;
}

describe('jobctl queue', () => {
  test('counts entries per priority, names the executor holding each taken entry, and the oldest wait', async () => {
    const empty = await jobctl.run(['queue']);
    assert.equal(empty.code, 0, empty.stderr);
    assert.match(empty.stdout, /: 0 entries, 0 waiting, 0 taken\n\nno live executors\n$/);

    bed().spawnExecutor({ threads: 1, name: 'exec-q' });
    const running = await bed().createJob('sleep', { payload: { ms: 30_000 }, priority: 100 });
    await bed().waitForState(running, ['RUNNING']);
    // The executor is busy with its one slot: these wait.
    await bed().queue.put('job/00000000-0000-7000-8000-000000000001', 50);
    await bed().queue.put('job/00000000-0000-7000-8000-000000000002', 50);
    await bed().queue.put('job/00000000-0000-7000-8000-000000000003', 500);

    const human = await jobctl.run(['queue']);
    assert.equal(human.code, 0, human.stderr);
    const text = human.stdout;
    assert.match(
      text,
      new RegExp(
        `^queue default \\(${bed().queuePath}\\): 4 entries, 3 waiting, 1 taken; oldest waiting \\d+\\.\\d s \\(entry-050-\\d{10}\\)$`,
        'm',
      ),
    );
    assert.match(text, /^PRIORITY +WAITING +TAKEN +OLDEST WAITING$/m);
    assert.match(text, /^050 +2 +0 +\d+\.\d s$/m);
    assert.match(text, /^100 +0 +1 +-$/m);
    assert.match(text, /^500 +1 +0 +\d+\.\d s$/m);
    assert.match(text, new RegExp(`^entry-100-\\d{10} +${running} +exec-q +[0-9a-f]{32} +\\d+\\.\\d s$`, 'm'));
    assert.match(text, /^live executors: exec-q \(1 thread\)$/m);

    const json = await jobctl.run(['queue', '--json']);
    const report = JSON.parse(json.stdout) as unknown;
    assert.equal(field(report, 'entries'), 4);
    assert.equal(field(report, 'waiting'), 3);
    assert.equal(field(field(report, 'oldestWaiting'), 'entry'), 'entry-050-0000000001');
    const priorities = field(report, 'priorities');
    assert.ok(Array.isArray(priorities));
    assert.deepEqual(
      priorities.map((band) => [field(band, 'priority'), field(band, 'waiting'), field(band, 'taken')]),
      [
        [50, 2, 0],
        [100, 0, 1],
        [500, 1, 0],
      ],
    );
    const taken = field(report, 'takenEntries');
    assert.ok(Array.isArray(taken) && taken.length === 1);
    assert.equal(field(taken[0], 'jobId'), running);
    assert.equal(field(taken[0], 'executor'), 'exec-q');
    assert.match(String(field(taken[0], 'consumerId')), /^[0-9a-f]{32}$/);
  });
});

describe('jobctl leaders', () => {
  test("shows each distribution's leader first, then its standbys", async () => {
    const none = await jobctl.run(['leaders']);
    assert.equal(none.code, 0, none.stderr);
    assert.equal(none.stdout, `no elections under ${bed().electionPath}\n`);

    const first = bed().spawnDistributor({ names: ['hourly'], extraArgs: ['--name', 'dist-one'] });
    await first.waitForLine(/distribution leading/);
    bed().spawnDistributor({ names: ['hourly'], extraArgs: ['--name', 'dist-two'] });
    const election = new LeaderElection(bed().zkClient, { path: `${bed().electionPath}/hourly` });
    await waitFor(async () => (await election.contenders()).length === 2, { message: 'the second distributor to stand' });
    // A kazoo contender that gave no identifier.
    await bed().zkClient.mkdirp(`${bed().electionPath}/kazoo_side`);
    await bed().zkClient.create(
      `${bed().electionPath}/kazoo_side/${randomUUID().replaceAll('-', '')}__lock__`,
      Buffer.alloc(0),
      'ephemeral-sequential',
    );

    const human = await jobctl.run(['leaders']);
    assert.equal(human.code, 0, human.stderr);
    const rows = human.stdout
      .trimEnd()
      .split('\n')
      .map((line) => line.split(/ {2,}/));
    // The leader publishes its next tick (the next full hour) and its last, none yet; a kazoo contender publishes nothing.
    const nextHour = new Date(Math.ceil(Date.now() / 3_600_000) * 3_600_000).toISOString();
    assert.deepEqual(rows, [
      ['DISTRIBUTION', 'LEADER', 'STANDBYS', 'NEXT TICK', 'LAST TICK'],
      ['hourly', 'dist-one', 'dist-two', nextHour, '-'],
      ['kazoo_side', '(no identifier)', '-', '-', '-'],
    ]);

    const json = await jobctl.run(['leaders', '--json']);
    const parsed = JSON.parse(json.stdout) as { distributions: { status: { at?: unknown } | null }[] };
    // The moment the status was published is the leader's; the rest is known.
    const hourlyStatus = parsed.distributions[0]?.status;
    assert.equal(typeof hourlyStatus?.at, 'string');
    assert.deepEqual(parsed, {
      path: bed().electionPath,
      distributions: [
        {
          distribution: 'hourly',
          leader: 'dist-one',
          standbys: ['dist-two'],
          status: { at: hourlyStatus?.at, current: true, lastTick: null, leader: 'dist-one', nextTick: nextHour, schedule: 'every 3600 s' },
        },
        { distribution: 'kazoo_side', leader: '', standbys: [], status: null },
      ],
    });
  });
});
