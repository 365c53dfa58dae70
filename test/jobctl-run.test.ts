/**
 * jobctl following jobs on a real stack (ZooKeeper, the job API, `job-executor` and `jobctl` as child
 * processes): `create --wait` exits with the job's return code, `show --follow` ends when the job
 * ends, `events` prints the live stream until Ctrl-C; human and --json output.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { waitFor } from '../src/harness/wait-for.js';
import { isRecord } from '../src/util/is-record.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';
import { isOneLine } from './fixtures/jobctl-process.js';
import { jsonLines, useJobctl } from './fixtures/jobctl-stack.js';

const bed = useExecutorTestbed();
const jobctl = useJobctl(bed);

const CREATED = /^created (job\/[0-9a-f-]{36}) \((\w+), priority (\d+)\), enqueued$/m;

function field(value: unknown, name: string): unknown {
  return isRecord(value) ? value[name] : undefined;
}

describe('jobctl create --wait', () => {
  test('persists, enqueues, follows the job to its end and exits with its return code', async () => {
    bed().spawnExecutor({ threads: 2 });

    const success = await jobctl.run(['create', 'noop', '--wait']);
    assert.equal(success.code, 0, success.stderr);
    const id = CREATED.exec(success.stdout)?.[1];
    assert.ok(id !== undefined, success.stdout);
    assert.match(success.stdout, /^SUCCESS after (< 1 s|\d+ s), return code 0(: .*)?$/m);
    assert.match(success.stdout, /started +RUNNING +by \S+ +attempt 1/);
    assert.equal((await bed().client.get(id)).job.state, 'SUCCESS');

    const failed = await jobctl.run([
      'create',
      'noop',
      '--payload',
      '{"returnCode": 3, "message": "three"}',
      '--priority',
      '5',
      '--target',
      'volume/1',
      '--wait',
      '--json',
    ]);
    assert.equal(failed.code, 3, failed.stderr);
    const lines = jsonLines(failed.stdout);
    const first = lines[0];
    const last = lines.at(-1);
    assert.equal(field(first, 'resource-type'), 'job');
    assert.equal(field(first, 'priority'), 5);
    assert.deepEqual(field(first, 'target-resource'), { href: 'volume/1' });
    assert.equal(field(last, 'state'), 'FAILED');
    assert.equal(field(last, 'return-code'), 3);
    assert.equal(field(last, 'status-message'), 'three');
    assert.ok(
      lines.some((line) => field(line, 'type') === 'finished' && field(line, 'job') === field(first, 'id')),
      failed.stdout,
    );
  });

  test('a job canceled while it is waited for makes create --wait exit 130; cancel says so', async () => {
    bed().spawnExecutor({ threads: 1 });
    const waiting = jobctl.spawn(['create', 'sleep', '--payload', '{"ms": 30000}', '--wait']);
    const id = CREATED.exec(await waiting.waitForLine(CREATED))?.[1] ?? '';
    await bed().waitForState(id, ['RUNNING']);

    const cancel = await jobctl.run(['cancel', id]);
    assert.equal(cancel.code, 0, cancel.stderr);
    assert.equal(cancel.stdout, `canceled ${id}\n`);
    const result = await waiting.result;
    assert.equal(result.code, 130, result.stderr);
    assert.match(result.stdout, /^CANCELED after /m);

    const again = await jobctl.run(['cancel', id, '--json']);
    assert.equal(again.code, 1);
    assert.ok(isOneLine(again.stderr), again.stderr);
    assert.match(again.stderr, /already CANCELED/);
    assert.equal(again.stdout, '');
  });
});

describe('jobctl show', () => {
  test('--follow ends when the job ends, with a line per event (or JSON lines); show gives progress, rate and time left', async () => {
    bed().spawnExecutor({ threads: 2 });
    const id = await bed().createJob('sleep', { payload: { ms: 1500 } });
    const human = jobctl.spawn(['show', id, '--follow']);
    const json = jobctl.spawn(['show', id.slice(4), '--follow', '--json']);

    const followed = await human.result;
    assert.equal(followed.code, 0, followed.stderr);
    assert.match(followed.stdout, new RegExp(`^id +${id}$`, 'm'));
    assert.match(followed.stdout, /^action +sleep$/m);
    assert.match(followed.stdout, /progress +RUNNING +\d+% +by \S+ +attempt 1 +"sleeping"/);
    assert.match(followed.stdout, /finished +SUCCESS +return code 0/);
    assert.match(followed.stdout, /^SUCCESS after (< 1 s|\d+ s), return code 0: slept 1500 ms$/m);

    const streamed = await json.result;
    assert.equal(streamed.code, 0, streamed.stderr);
    const lines = jsonLines(streamed.stdout);
    assert.equal(field(lines[0], 'id'), id);
    assert.ok(lines.some((line) => field(line, 'type') === 'progress'));
    assert.equal(field(lines.at(-1), 'state'), 'SUCCESS');

    const shown = await jobctl.run(['show', id]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^state +SUCCESS$/m);
    assert.match(shown.stdout, /^progress +\[#{24}\] 100%$/m);
    assert.match(shown.stdout, /^attempt +1$/m);
    assert.match(shown.stdout, /^duration +(< 1 s|\d+ s)$/m);
    const document = JSON.parse((await jobctl.run(['show', id, '--json'])).stdout) as unknown;
    assert.equal(field(document, 'id'), id);
    assert.equal(field(document, 'state'), 'SUCCESS');

    const running = await bed().createJob('sleep', { payload: { ms: 4000 } });
    await waitFor(async () => (await bed().client.get(running)).job.progress > 5, { message: 'the job to make progress' });
    const onTerminal = jobctl.terminal(['show', running, '--follow']);
    const live = await jobctl.run(['show', running]);
    assert.match(live.stdout, /^state +RUNNING$/m);
    assert.match(live.stdout, /^progress +\[#*-+\] \d+% +[\d.]+ %\/s, about [\d.]+ s left$/m);
    assert.match(live.stdout, /^owner +\S+@[0-9a-f]{16}$/m);
    assert.match(live.stdout, /^elapsed +\d+\.\d s$/m);

    const terminal = await onTerminal;
    assert.equal(terminal.code, 0, terminal.stdout);
    assert.ok(terminal.stdout.includes('\r\x1b[2KRUNNING  ['), 'the bar is redrawn in place');
    assert.match(terminal.stdout, /SUCCESS after (< 1 s|\d+ s), return code 0: slept 4000 ms/);
  });
});

describe('jobctl show and list of a job that ended early', () => {
  test('a job canceled at 74% shows 74%, and its whole-second duration as whole seconds, not 0.0 s', async () => {
    const { client } = bed();
    const { id } = await client.create({ action: 'noop' });
    await client.edit(id, { state: 'RUNNING' });
    await client.edit(id, { progress: 74 });
    const cancel = await jobctl.run(['cancel', id]);
    assert.equal(cancel.code, 0, cancel.stderr);

    const shown = await jobctl.run(['show', id]);
    assert.equal(shown.code, 0, shown.stderr);
    assert.match(shown.stdout, /^state +CANCELED$/m);
    assert.match(shown.stdout, /^progress +\[#{18}-{6}\] 74%$/m);
    // The API counts a duration in whole seconds: no tenths it does not have (`0.0 s`, `3.0 s`).
    assert.match(shown.stdout, /^duration +(< 1 s|\d+ s)$/m);

    const listed = await jobctl.run(['list', '--state', 'CANCELED']);
    assert.equal(listed.code, 0, listed.stderr);
    const row = listed.stdout.split('\n').find((line) => line.startsWith(id));
    assert.ok(row !== undefined, listed.stdout);
    assert.match(row, / CANCELED .* 74% .* (< 1 s|\d+ s) /);
  });
});

describe('jobctl events', () => {
  test('prints the live events one per line, or as JSON lines, until Ctrl-C', async () => {
    const human = jobctl.spawn(['events', '--action', 'noop']);
    const json = jobctl.spawn(['events', '--action', 'noop', '--json']);
    // Neither prints anything before its stream is open: create jobs until both have shown one.
    await waitFor(
      async () => {
        await bed().client.create({ action: 'noop' });
        return human.stdoutLines.some((line) => / created /.test(line)) && json.stdoutLines.length > 0;
      },
      { timeoutMs: 20_000, intervalMs: 200, message: 'both event streams to open' },
    );
    await bed().client.create({ action: 'other_action' });
    bed().spawnExecutor({ threads: 1 });
    const id = await bed().createJob('noop');
    await human.waitForLine(new RegExp(`finished +${id} +noop +SUCCESS +return code 0`));
    await waitFor(() => json.stdoutLines.some((line) => line.includes('"finished"') && line.includes(id)), {
      message: 'the JSON finished event',
    });
    assert.ok(
      human.stdoutLines.some((line) => new RegExp(`started +${id} +noop +RUNNING .*attempt 1`).test(line)),
      human.stdoutLines.join('\n'),
    );

    human.signal('SIGINT');
    json.signal('SIGINT');
    const [humanResult, jsonResult] = await Promise.all([human.result, json.result]);
    assert.equal(humanResult.code, 0, humanResult.stderr);
    assert.equal(jsonResult.code, 0, jsonResult.stderr);
    assert.ok(!humanResult.stdout.includes('other_action'));
    const events = jsonLines(jsonResult.stdout);
    assert.ok(events.every((event) => field(event, 'action') === 'noop'));
    const types = events.filter((event) => field(event, 'job') === id).map((event) => field(event, 'type'));
    assert.ok(types.includes('started') && types.at(-1) === 'finished', types.join(', '));
  });
});
