/**
 * jobctl's job API commands on a real stack (ZooKeeper, the job API, `job-executor` and `jobctl` as
 * child processes): list with filters, show, retry, delete one or by filter (with its confirmation),
 * human and --json output; and the one-line errors with their exit codes: bad ids, bad filters,
 * refused credentials, an unreachable API or ZooKeeper, a missing --zk-hosts.
 */
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, test } from 'node:test';
import { freePort } from '../src/harness/free-port.js';
import { waitFor } from '../src/harness/wait-for.js';
import { isRecord } from '../src/util/is-record.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';
import { isOneLine, runJobctl } from './fixtures/jobctl-process.js';
import { useJobctl } from './fixtures/jobctl-stack.js';

const bed = useExecutorTestbed();
const jobctl = useJobctl(bed);

function field(value: unknown, name: string): unknown {
  return isRecord(value) ? value[name] : undefined;
}

async function makeJobs(action: string, count: number): Promise<string[]> {
  const ids: string[] = [];
  for (let index = 0; index < count; index += 1) ids.push((await bed().client.create({ action, priority: 10 * (index + 1) })).id);
  return ids;
}

describe('jobctl list and show', () => {
  test('list filters by state, action and CIMI filter, newest first, as a table or JSON', async () => {
    const alpha = await makeJobs('alpha', 3);
    await makeJobs('beta', 2);
    await bed().client.cancel(alpha[0] ?? '');

    const table = await jobctl.run(['list', '--action', 'alpha']);
    assert.equal(table.code, 0, table.stderr);
    const lines = table.stdout.trimEnd().split('\n');
    assert.match(lines[0] ?? '', /^ID +ACTION +STATE +PRI +PROGRESS +RC +CREATED +TIME +MESSAGE$/);
    assert.deepEqual(
      lines.slice(1, 4).map((line) => line.split(/ +/)[0]),
      [...alpha].reverse(),
    );
    // Canceled while QUEUED: it keeps the progress it had (none), and its whole-second duration has no tenths.
    assert.match(lines[3] ?? '', /^job\/\S+ +alpha +CANCELED +10 +0% +- +(just now|\d+ s ago) +(< 1 s|\d+ s) /);
    assert.equal(lines[4], '3 of 3 jobs');

    const canceled = await jobctl.run(['list', '--state', 'canceled,failed', '--json']);
    const parsed = JSON.parse(canceled.stdout) as unknown;
    assert.equal(field(parsed, 'count'), 1);
    const jobs = field(parsed, 'jobs');
    assert.ok(Array.isArray(jobs) && jobs.length === 1 && field(jobs[0], 'id') === alpha[0]);

    const paged = await jobctl.run(['list', '--filter', "action='beta' and priority>=10", '--last', '1']);
    assert.equal(paged.code, 0, paged.stderr);
    assert.match(paged.stdout, /\n1 of 2 jobs \(--last 1\)\n$/);
    assert.equal((await jobctl.run(['list', '--action', 'nothing_like_it'])).stdout, "no jobs match action='nothing_like_it'\n");
  });

  test('bad filters, states and ids are usage errors (exit 2); a missing job is a failure (exit 1); one line each', async () => {
    const cases: [string[], number, RegExp][] = [
      [['list', '--filter', "action=='x'"], 2, /filter syntax error at position \d+/],
      [['list', '--state', 'DONE'], 2, /--state "DONE" is not a job state: one of QUEUED, RUNNING, SUCCESS, FAILED, CANCELED/],
      [['list', '--last', '0'], 2, /--last must be an integer from 1 to 10000, got 0/],
      [['show', 'job/42'], 2, /"job\/42" is not a job id: expected job\/<uuid> or <uuid>/],
      [['cancel', 'nope'], 2, /"nope" is not a job id/],
      [['show', '0192f0c4-0000-7000-8000-000000000000'], 1, /job\/0192f0c4-0000-7000-8000-000000000000 not found/],
      [['create', 'noop', '--payload', '{not json'], 2, /--payload is not JSON/],
      [['create', 'noop', '--priority', '1000'], 2, /--priority must be an integer from 0 to 999, got 1000/],
      [['show'], 2, /Not enough non-option arguments/],
      [['frobnicate'], 2, /Unknown argument: frobnicate/],
      [['events', '--job', 'last-one'], 2, /"last-one" is not a job id/],
    ];
    const results = await Promise.all(cases.map(([args]) => jobctl.run(args)));
    cases.forEach(([args, code, message], index) => {
      const result = results[index];
      assert.equal(result?.code, code, `${args.join(' ')}: ${result?.stderr ?? ''}`);
      assert.ok(isOneLine(result.stderr), `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, message);
      assert.equal(result.stdout, '');
    });
  });

  test('every command answers --help with its usage; show --follow stops on Ctrl-C with 130', async () => {
    const commands = ['create', 'list', 'show', 'cancel', 'retry', 'delete', 'queue', 'leaders', 'events'];
    const helps = await Promise.all(
      [[], ...commands.map((command) => [command])].map((args) => runJobctl([...args, '--help'], { cwd: jobctl.scratch })),
    );
    helps.forEach((help, index) => {
      assert.equal(help.code, 0, help.stderr);
      assert.match(help.stdout, index === 0 ? /^jobctl <command> \[options\]/ : new RegExp(`^jobctl ${commands[index - 1] ?? ''}`));
      assert.match(help.stdout, /--api-url/);
    });

    const [queued] = await makeJobs('never_run', 1);
    const following = jobctl.spawn(['show', queued ?? '', '--follow']);
    await following.waitForLine(/^state +QUEUED$/);
    following.signal('SIGINT');
    const stopped = await following.result;
    assert.equal(stopped.code, 130, stopped.stderr);
    assert.equal(stopped.stderr, '');
  });

  test('the API key: from .local-stack/admin.key by default, or a --config file; refused credentials in one line', async () => {
    const [id] = await makeJobs('gamma', 1);
    const dir = path.join(jobctl.scratch, 'checkout');
    await mkdir(path.join(dir, '.local-stack'), { recursive: true });
    const { key, secret } = bed().api.adminKey;
    await writeFile(path.join(dir, '.local-stack', 'admin.key'), `key: ${key}\nsecret: ${secret}\n`, { mode: 0o600 });
    const shown = await jobctl.run(['show', id ?? '', '--json'], { key: false, cwd: dir });
    assert.equal(shown.code, 0, shown.stderr);
    assert.equal(field(JSON.parse(shown.stdout), 'action'), 'gamma');

    // Options from a JSON file: the URL and the key file, and --json.
    const config = path.join(dir, 'jobctl.json');
    await writeFile(
      config,
      JSON.stringify({ 'api-url': bed().api.baseUrl, 'api-key-file': path.join(dir, '.local-stack', 'admin.key'), json: true }),
    );
    const configured = await runJobctl(['show', id ?? '', '--config', config], { cwd: jobctl.scratch });
    assert.equal(configured.code, 0, configured.stderr);
    assert.equal(field(JSON.parse(configured.stdout), 'id'), id);

    const refused = await jobctl.run(['show', id ?? '', '--api-key', key, '--api-secret', 'wrong'], { key: false });
    assert.equal(refused.code, 1);
    // Secrets on the command line are warned about first (each its own line); the refusal is one line.
    const refusal = refused.stderr
      .split('\n')
      .filter((line) => line !== '' && !/warning: --api-(key|secret) on the command line/.test(line))
      .join('\n');
    assert.ok(isOneLine(refusal), refused.stderr);
    assert.match(refused.stderr, /refused the credentials/);
  });
});

describe('jobctl retry and delete', () => {
  test('retry puts a final job back in the queue as a new attempt; a job that is not final is refused', async () => {
    bed().spawnExecutor({ threads: 1 });
    const id = await bed().createJob('noop', { payload: { returnCode: 2 }, priority: 40 });
    await bed().waitForState(id, ['FAILED']);

    const retried = await jobctl.run(['retry', id]);
    assert.equal(retried.code, 0, retried.stderr);
    assert.match(retried.stdout, new RegExp(`^retried ${id}: QUEUED again, enqueued as entry-040-\\d{10}\\n$`));
    const again = await waitFor(
      async () => {
        const { job } = await bed().client.get(id);
        return job.attempt === 2 && job.state === 'FAILED' ? job : undefined;
      },
      { message: 'the second attempt to end' },
    );
    assert.equal(again['return-code'], 2);

    const json = await jobctl.run(['retry', id, '--json']);
    assert.equal(json.code, 0, json.stderr);
    assert.equal(field(JSON.parse(json.stdout), 'state'), 'QUEUED');
    await waitFor(async () => (await bed().client.get(id)).job.attempt === 3, { message: 'the third attempt' });

    const [queued] = await makeJobs('not_final', 1);
    const refused = await jobctl.run(['retry', queued ?? '']);
    assert.equal(refused.code, 1);
    assert.ok(isOneLine(refused.stderr), refused.stderr);
    assert.match(refused.stderr, /QUEUED/);

    const noZk = await jobctl.run(['retry', id], { zk: false });
    assert.equal(noZk.code, 2);
    assert.match(noZk.stderr, /^jobctl: --zk-hosts is required to enqueue the retried job/);
  });

  test('delete one job, or many by filter after a confirmation that --yes skips; no terminal and no --yes refuses', async () => {
    const [one] = await makeJobs('delta', 1);
    const deleted = await jobctl.run(['delete', one ?? '']);
    assert.equal(deleted.code, 0, deleted.stderr);
    assert.equal(deleted.stdout, `deleted ${one}\n`);
    const missing = await jobctl.run(['delete', one ?? '']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /not found/);

    await makeJobs('epsilon', 3);
    const unconfirmed = await jobctl.run(['delete', '--action', 'epsilon']);
    assert.equal(unconfirmed.code, 2);
    assert.ok(isOneLine(unconfirmed.stderr), unconfirmed.stderr);
    assert.match(
      unconfirmed.stderr,
      /refusing to delete 3 jobs matching action='epsilon' \(3 QUEUED\) without a confirmation: stdin is not a terminal \(add --yes\)/,
    );
    assert.equal(await bed().client.count("action='epsilon'"), 3);

    const declined = await jobctl.terminal(['delete', '--filter', "action='epsilon'"], { input: 'n\n' });
    assert.equal(declined.code, 1, declined.stdout);
    assert.match(declined.stdout, /delete 3 jobs matching action='epsilon' \(3 QUEUED\)\? \[y\/N\]/);
    assert.equal(await bed().client.count("action='epsilon'"), 3);

    const confirmed = await jobctl.terminal(['delete', '--filter', "action='epsilon'"], { input: 'y\n' });
    assert.equal(confirmed.code, 0, confirmed.stdout);
    assert.match(confirmed.stdout, /deleted 3 jobs/);
    assert.equal(await bed().client.count("action='epsilon'"), 0);

    await makeJobs('zeta', 2);
    const bulk = await jobctl.run(['delete', '--state', 'QUEUED', '--filter', "action='zeta'", '--yes', '--json']);
    assert.equal(bulk.code, 0, bulk.stderr);
    assert.deepEqual(JSON.parse(bulk.stdout), { deleted: 2, filter: "state='QUEUED' and (action='zeta')" });

    const both = await jobctl.run(['delete', one ?? '', '--action', 'zeta']);
    assert.equal(both.code, 2);
    const neither = await jobctl.run(['delete']);
    assert.equal(neither.code, 2);
    assert.match(neither.stderr, /give a job id, or --filter, --state or --action/);
  });
});

describe('jobctl when a server is unreachable', () => {
  test('the API or ZooKeeper down, or --zk-hosts missing: one line and exit 1 (2 for the missing option)', async () => {
    const port = await freePort();
    const env = { JOBCTL_API_KEY: 'k', JOBCTL_API_SECRET: 's' };
    const down = `http://127.0.0.1:${String(port)}`;
    const apiDown = [
      ['list'],
      ['show', '0192f0c4-0000-7000-8000-000000000000'],
      ['events'],
      ['create', 'noop', '--zk-hosts', bed().zk.connectionString, '--queue-path', bed().queuePath],
    ];
    const zkMissing = [['create', 'noop'], ['queue'], ['leaders']];
    const [downResults, missingResults, zkDown] = await Promise.all([
      Promise.all(apiDown.map((args) => runJobctl([...args, '--api-url', down], { cwd: jobctl.scratch, env }))),
      Promise.all(zkMissing.map((args) => jobctl.run(args, { zk: false }))),
      runJobctl(['queue', '--zk-hosts', `127.0.0.1:${String(port)}`, '--connect-timeout', '1'], { cwd: jobctl.scratch, env }),
    ]);
    downResults.forEach((result, index) => {
      const what = `${apiDown[index]?.join(' ') ?? ''}: ${result.stderr}`;
      assert.equal(result.code, 1, what);
      assert.ok(isOneLine(result.stderr), what);
      assert.match(result.stderr, new RegExp(`cannot reach the job API at ${down}: .*ECONNREFUSED`));
    });
    assert.equal(await bed().queue.length(), 0, 'a job that could not be created is not enqueued');

    assert.equal(zkDown.code, 1);
    assert.ok(isOneLine(zkDown.stderr), zkDown.stderr);
    assert.match(zkDown.stderr, /could not connect to ZooKeeper at 127\.0\.0\.1:\d+ within 1000 ms/);

    missingResults.forEach((result, index) => {
      assert.equal(result.code, 2, `${zkMissing[index]?.join(' ') ?? ''}: ${result.stderr}`);
      assert.match(result.stderr, /^jobctl: --zk-hosts is required to /);
    });
  });
});
