/**
 * The daemons' metrics endpoints (--metrics-port), scraped over HTTP and parsed as Prometheus would:
 * counters and histograms move by exactly what the jobs, ticks and requests did; gauges follow the
 * slots, the queue, the ZooKeeper session and leadership; /readyz follows ZooKeeper and the job API.
 */
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, test } from 'node:test';
import { JobApiClient } from '../src/api/client/index.js';
import { compileExecutorOptions } from '../src/executor/options.js';
import { waitFor } from '../src/harness/wait-for.js';
import { spawnDaemon, type DaemonProcess } from './fixtures/daemon-process.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';
import { samplesOf, scrape, valueOf, type Exposition } from './fixtures/prometheus-text.js';

const bed = useExecutorTestbed();
const JOB_API_BIN = fileURLToPath(new URL('../src/bin/job-api.ts', import.meta.url));
const execFileAsync = promisify(execFile);

/** The metrics endpoint a daemon started with --metrics-port 0 logged. */
async function metricsUrl(daemon: DaemonProcess): Promise<string> {
  const line = await daemon.waitForLine(/metrics listening/);
  const url = /"url":"(http:\/\/[^"]+)"/.exec(line)?.[1];
  assert.ok(url !== undefined, `a metrics URL in: ${line}`);
  return url;
}

async function readyz(
  url: string,
): Promise<{ status: number; body: { ready: boolean; failed: string[]; checks: Record<string, string> } }> {
  const response = await fetch(`${url}/readyz`);
  return { status: response.status, body: (await response.json()) as { ready: boolean; failed: string[]; checks: Record<string, string> } };
}

/** Every series of a counter, as `label=value,...` -> value, for exact comparisons. */
function seriesOf(exposition: Exposition, name: string): Record<string, number> {
  return Object.fromEntries(
    samplesOf(exposition, name).map((sample) => [
      Object.entries(sample.labels)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([key, value]) => `${key}=${value}`)
        .join(','),
      sample.value,
    ]),
  );
}

const ENDED = 'zkje_executor_jobs_ended_total';
const DURATION = 'zkje_executor_job_duration_seconds';

describe('metrics', () => {
  test('options: the metrics port is off by default, checked, and needs a port for a host', async () => {
    assert.equal((await compileExecutorOptions({ 'zk-hosts': 'h:1' })).metrics, undefined);
    assert.deepEqual((await compileExecutorOptions({ 'zk-hosts': 'h:1', 'metrics-port': '9464' })).metrics, {
      host: '127.0.0.1',
      port: 9464,
    });
    await assert.rejects(
      compileExecutorOptions({ 'zk-hosts': 'h:1', 'metrics-port': 70_000 }),
      /--metrics-port must be an integer from 0 to 65535, got 70000/,
    );
    await assert.rejects(compileExecutorOptions({ 'zk-hosts': 'h:1', 'metrics-host': '0.0.0.0' }), /--metrics-host needs --metrics-port/);
  });

  test('executor: job counters and durations per action and outcome, slots, queue, session; /healthz; /readyz follows the job API', async () => {
    const { client, queue, api } = bed();
    const executor = bed().spawnExecutor({ threads: 1, extraArgs: ['--metrics-port', '0'] });
    const url = await metricsUrl(executor);
    await executor.waitForLine(/executor started/);

    const before = await scrape(`${url}/metrics`);
    assert.equal(before.types.get('zkje_executor_jobs_taken_total'), 'counter');
    assert.equal(before.types.get(DURATION), 'histogram');
    assert.equal(samplesOf(before, 'zkje_executor_jobs_taken_total').length, 0, 'no job taken yet');
    assert.equal(valueOf(before, 'zkje_executor_slots', { state: 'free' }, -1), 1);
    assert.equal(valueOf(before, 'zkje_executor_slots', { state: 'busy' }, -1), 0);
    assert.equal(valueOf(before, 'zkje_zookeeper_session_state', { state: 'CONNECTED' }, -1), 1);
    assert.equal(valueOf(before, 'zkje_zookeeper_session_state', { state: 'SUSPENDED' }, -1), 0);
    assert.equal(valueOf(before, 'zkje_zookeeper_reconnects_total', {}, -1), 0);
    assert.ok(samplesOf(before, 'process_cpu_user_seconds_total').length === 1, 'Node process metrics are there');

    // One slot: a long job holds it while three more wait in the queue.
    const long = await bed().createJob('sleep', { payload: { ms: 60_000 } });
    await bed().waitForState(long, ['RUNNING']);
    const succeeds = await bed().createJob('noop');
    const fails = await bed().createJob('noop', { payload: { returnCode: 3 } });
    const timesOut = await bed().createJob('sleep', { payload: { ms: 30_000 }, timeout: 1 });

    // The queue gauges are read at most every 5 s: wait for a read that saw the three.
    const busy = await waitFor(
      async () => {
        const now = await scrape(`${url}/metrics`);
        return valueOf(now, 'zkje_queue_entries', { queue: 'default', state: 'waiting' }, -1) === 3 ? now : undefined;
      },
      { timeoutMs: 10_000, message: 'the queue gauges to show three waiting entries' },
    );
    assert.equal(valueOf(busy, 'zkje_queue_entries', { queue: 'default', state: 'taken' }), 1);
    const age = valueOf(busy, 'zkje_queue_oldest_entry_age_seconds', { queue: 'default' }, -1);
    assert.ok(age >= 0 && age < 30, `oldest waiting entry age ${age} s`);
    assert.equal(valueOf(busy, 'zkje_executor_slots', { state: 'busy' }), 1);
    assert.equal(valueOf(busy, 'zkje_executor_slots', { state: 'free' }), 0);
    assert.deepEqual(seriesOf(busy, 'zkje_executor_jobs_taken_total'), { 'action=sleep': 1 });

    await client.cancel(long);
    await Promise.all([
      bed().waitForState(succeeds, ['SUCCESS']),
      bed().waitForState(fails, ['FAILED']),
      bed().waitForState(timesOut, ['FAILED']),
    ]);
    // A job's final state is written before its entry is consumed and its slot freed.
    const after = await waitFor(
      async () => {
        const now = await scrape(`${url}/metrics`);
        return valueOf(now, 'zkje_executor_slots', { state: 'busy' }, -1) === 0 &&
          Object.values(seriesOf(now, ENDED)).reduce((a, b) => a + b, 0) === 4
          ? now
          : undefined;
      },
      { message: 'four ended jobs and a free slot' },
    );

    assert.deepEqual(seriesOf(after, 'zkje_executor_jobs_taken_total'), { 'action=noop': 2, 'action=sleep': 2 });
    assert.deepEqual(seriesOf(after, ENDED), {
      'action=sleep,outcome=cancelled': 1,
      'action=noop,outcome=succeeded': 1,
      'action=noop,outcome=failed': 1,
      'action=sleep,outcome=timed_out': 1,
    });
    for (const [action, outcome] of [
      ['sleep', 'cancelled'],
      ['noop', 'succeeded'],
      ['noop', 'failed'],
      ['sleep', 'timed_out'],
    ] as const) {
      const labels = { action, outcome };
      assert.equal(valueOf(after, `${DURATION}_count`, labels), 1, `one ${action} ${outcome} duration`);
      assert.equal(valueOf(after, `${DURATION}_bucket`, { ...labels, le: '+Inf' }), 1);
    }
    const timedOutSeconds = valueOf(after, `${DURATION}_sum`, { action: 'sleep', outcome: 'timed_out' });
    assert.ok(timedOutSeconds >= 1 && timedOutSeconds < 10, `the timed-out run took ${timedOutSeconds} s (timeout 1 s)`);
    assert.equal(valueOf(after, `${DURATION}_bucket`, { action: 'noop', outcome: 'succeeded', le: '0.01' }) <= 1, true);
    assert.equal(valueOf(after, 'zkje_executor_slots', { state: 'free' }), 1);
    assert.deepEqual(seriesOf(after, 'zkje_executor_entries_skipped_total'), {});

    assert.equal((await fetch(`${url}/healthz`)).status, 200);
    const ready = await readyz(url);
    assert.equal(ready.status, 200);
    assert.deepEqual(ready.body, { ready: true, failed: [], checks: { zookeeper: 'ok', api: 'ok' } });

    // The executor learns the API is down when it next needs it: a job whose entry comes while it is.
    const later = (await client.create({ action: 'noop' })).id;
    await api.stop();
    await queue.put(later, 100);
    const down = await waitFor(
      async () => {
        const answer = await readyz(url);
        return answer.status === 503 ? answer : undefined;
      },
      { message: '/readyz to answer 503 with the API down' },
    );
    assert.deepEqual(down.body.failed, ['api']);
    assert.equal(down.body.checks.zookeeper, 'ok');
    const whileDown = await scrape(`${url}/metrics`);
    assert.equal(valueOf(whileDown, 'zkje_executor_api_reachable', {}, -1), 0);
    assert.ok(valueOf(whileDown, 'zkje_executor_entries_skipped_total', { reason: 'api_unreachable' }) >= 1);

    await api.restart();
    await waitFor(async () => (await readyz(url)).status === 200, { timeoutMs: 20_000, message: '/readyz to answer 200 again' });
    await bed().waitForState(later, ['SUCCESS']);

    // The endpoint closes with the executor: it exits by itself.
    executor.signal('SIGTERM');
    assert.deepEqual(await executor.exited, { code: 0, signal: null });
  });

  test('distributor: leader gauge 1 on the leader and 0 on a standby; ticks and created jobs counted', async () => {
    const startedAt = Date.now() / 1000;
    const leader = bed().spawnDistributor({ names: ['ticker'], extraArgs: ['--metrics-port', '0'] });
    await leader.waitForLine(/distribution leading/);
    const standby = bed().spawnDistributor({ names: ['ticker'], extraArgs: ['--metrics-port', '0'] });
    await standby.waitForLine(/distribution campaigning/);
    const [leaderUrl, standbyUrl] = await Promise.all([metricsUrl(leader), metricsUrl(standby)]);

    const leading = await waitFor(
      async () => {
        const now = await scrape(`${leaderUrl}/metrics`);
        return valueOf(now, 'zkje_distributor_ticks_total', { distribution: 'ticker', result: 'done' }) >= 2 ? now : undefined;
      },
      { message: 'two ticks done by the leader' },
    );
    const done = valueOf(leading, 'zkje_distributor_ticks_total', { distribution: 'ticker', result: 'done' });
    assert.equal(valueOf(leading, 'zkje_distributor_leader', { distribution: 'ticker' }, -1), 1);
    // Every tick of `ticker` creates one job for each of its three targets.
    assert.equal(valueOf(leading, 'zkje_distributor_jobs_total', { distribution: 'ticker', result: 'created' }), 3 * done);
    assert.equal(valueOf(leading, 'zkje_distributor_jobs_total', { distribution: 'ticker', result: 'existing' }), 0);
    assert.equal(valueOf(leading, 'zkje_distributor_tick_duration_seconds_count', { distribution: 'ticker' }), done);
    assert.ok(valueOf(leading, 'zkje_distributor_last_tick_timestamp_seconds', { distribution: 'ticker' }) >= startedAt);
    assert.equal(valueOf(leading, 'zkje_zookeeper_session_state', { state: 'CONNECTED' }), 1);
    assert.equal((await readyz(leaderUrl)).status, 200);

    const standing = await scrape(`${standbyUrl}/metrics`);
    assert.equal(valueOf(standing, 'zkje_distributor_leader', { distribution: 'ticker' }, -1), 0);
    assert.deepEqual(seriesOf(standing, 'zkje_distributor_ticks_total'), {});
    assert.deepEqual(seriesOf(standing, 'zkje_distributor_jobs_total'), {});
    assert.equal((await readyz(standbyUrl)).status, 200);

    // The leader resigns on SIGTERM: the standby's gauge and counters take over.
    leader.signal('SIGTERM');
    assert.equal((await leader.exited).code, 0);
    const tookOver = await waitFor(
      async () => {
        const now = await scrape(`${standbyUrl}/metrics`);
        return valueOf(now, 'zkje_distributor_ticks_total', { distribution: 'ticker', result: 'done' }) >= 1 ? now : undefined;
      },
      { message: 'the standby to lead and tick' },
    );
    assert.equal(valueOf(tookOver, 'zkje_distributor_leader', { distribution: 'ticker' }), 1);
    assert.equal(valueOf(tookOver, 'zkje_distributor_jobs_total', { distribution: 'ticker', result: 'created' }) % 3, 0);
  });

  test('job-api serve: requests by route pattern and status, latency histogram, jobs per state; a metrics port in use fails the start', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'metrics-api-'));
    const daemons: DaemonProcess[] = [];
    let client: JobApiClient | undefined;
    try {
      const database = path.join(dir, 'jobs.sqlite');
      // The secret is printed once, on stdout.
      const { stdout } = await execFileAsync(process.execPath, [
        '--import',
        'tsx',
        JOB_API_BIN,
        'create-admin-key',
        '--database',
        database,
      ]);
      const keyId = /^\s*key:\s+(\S+)/m.exec(stdout)?.[1];
      const secret = /^\s*secret:\s+(\S+)/m.exec(stdout)?.[1];
      assert.ok(keyId !== undefined && secret !== undefined, `a key and its secret in: ${stdout}`);
      const server = spawnDaemon(JOB_API_BIN, ['serve', '--database', database, '--port', '0', '--metrics-port', '0'], {});
      daemons.push(server);
      const url = await metricsUrl(server);
      const apiUrl = /"address":"(http:\/\/[^"]+)"/.exec(await server.waitForLine(/job api listening/))?.[1];
      assert.ok(apiUrl !== undefined);

      const before = await scrape(`${url}/metrics`);
      assert.deepEqual(seriesOf(before, 'zkje_api_requests_total'), {}, 'the metrics port does not count as API requests');
      client = await JobApiClient.create({ baseUrl: apiUrl, credentials: { key: keyId, secret }, compatibility: 'engine' });
      const first = await client.create({ action: 'noop' });
      await client.create({ action: 'noop' });
      await client.get(first.id);
      await assert.rejects(client.get('job/00000000-0000-7000-8000-000000000000'));

      const after = await waitFor(
        async () => {
          const now = await scrape(`${url}/metrics`);
          return valueOf(now, 'zkje_api_jobs', { state: 'QUEUED' }, -1) === 2 ? now : undefined;
        },
        { message: 'the jobs gauge to count two QUEUED jobs' },
      );
      assert.equal(valueOf(after, 'zkje_api_requests_total', { method: 'POST', route: '/api/job', status: '201' }), 2);
      assert.equal(valueOf(after, 'zkje_api_requests_total', { method: 'GET', route: '/api/job/:uuid', status: '200' }), 1);
      assert.equal(valueOf(after, 'zkje_api_requests_total', { method: 'GET', route: '/api/job/:uuid', status: '404' }), 1);
      assert.equal(valueOf(after, 'zkje_api_request_duration_seconds_count', { method: 'GET', route: '/api/job/:uuid' }), 2);
      assert.equal(valueOf(after, 'zkje_api_request_duration_seconds_count', { method: 'POST', route: '/api/job' }), 2);
      assert.ok(valueOf(after, 'zkje_api_request_duration_seconds_sum', { method: 'POST', route: '/api/job' }) > 0);
      assert.equal(valueOf(after, 'zkje_api_jobs', { state: 'SUCCESS' }, -1), 0);
      assert.ok(
        samplesOf(after, 'zkje_api_requests_total').every((sample) => !sample.labels.route?.includes(first.id.slice(4))),
        'no job id in a label',
      );
      assert.deepEqual((await readyz(url)).body, { ready: true, failed: [], checks: { store: 'ok' } });

      const port = new URL(url).port;
      const clash = spawnDaemon(
        JOB_API_BIN,
        ['serve', '--database', path.join(dir, 'other.sqlite'), '--port', '0', '--metrics-port', port],
        {},
      );
      daemons.push(clash);
      assert.notEqual((await clash.exited).code, 0);
      assert.equal(clash.lines.at(-1), `job-api: metrics port 127.0.0.1:${port} is already in use`);

      const executorClash = bed().spawnExecutor({ extraArgs: ['--metrics-port', port] });
      assert.equal((await executorClash.exited).code, 1);
      assert.equal(executorClash.lines.at(-1), `job-executor: metrics port 127.0.0.1:${port} is already in use`);

      server.signal('SIGTERM');
      assert.equal((await server.exited).code, 0);
    } finally {
      await client?.close();
      await Promise.all(daemons.map((daemon) => daemon.kill()));
      await rm(dir, { recursive: true, force: true });
    }
  });
});
