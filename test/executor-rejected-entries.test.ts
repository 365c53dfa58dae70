/**
 * Entries that are not a job id, as any producer may put them (here Python's kazoo): each is taken
 * once, logged once at error level, counted, and moved under `<queue>/rejected/<entry>` with its
 * bytes, where `jobctl queue` shows it and `jobctl queue remove` deletes it. `jobctl queue remove`
 * also deletes a waiting entry, and a taken one only with --force.
 */
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { afterEach, describe, test } from 'node:test';
import { waitFor } from '../src/harness/wait-for.js';
import { LockingQueue } from '../src/recipes/locking-queue.js';
import { isRecord } from '../src/util/is-record.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';
import { useJobctl } from './fixtures/jobctl-stack.js';
import { KazooProcess, killKazooProcesses } from './fixtures/kazoo-process.js';
import { scrape, valueOf } from './fixtures/prometheus-text.js';

const bed = useExecutorTestbed();
const jobctl = useJobctl(bed);
afterEach(killKazooProcesses);

function kazoo(mode: string, args: readonly string[]): KazooProcess {
  return KazooProcess.start('kazoo_queue.py', [bed().zk.connectionString, bed().queuePath, mode, ...args, '--deadline', '60']);
}

async function children(path: string): Promise<string[]> {
  return (await bed().zkClient.getChildren(path)).sort();
}

describe('entries that are not a job id', () => {
  test('are rejected once each: one error line, a metric, the bytes kept under rejected/, shown by jobctl queue', async () => {
    const executor = bed().spawnExecutor({ threads: 1, extraArgs: ['--metrics-port', '0'] });
    const existing = (await bed().client.create({ action: 'noop' })).id;
    const bad = [
      Buffer.from('not a job id'),
      Buffer.alloc(0),
      Buffer.concat([Buffer.from('job/'), Buffer.from([0xff, 0xfe, 0x80])]),
      Buffer.from(`${existing}\n`),
    ];
    const producer = kazoo(
      'put-raw',
      bad.map((data) => `${data.toString('hex')}:100`),
    );
    await producer.finished();
    const badEntries = await children(`${bed().queuePath}/entries`);
    assert.equal(badEntries.length, bad.length);
    // Behind them, a job that must still run.
    const good = await bed().createJob('noop');
    assert.equal((await bed().waitForState(good, ['SUCCESS', 'FAILED'])).state, 'SUCCESS');

    const rejectedPath = `${bed().queuePath}/rejected`;
    await waitFor(async () => (await children(rejectedPath).catch(() => [])).length === bad.length, {
      timeoutMs: 10_000,
      message: 'every bad entry moved under rejected/',
    });
    assert.deepEqual(await children(rejectedPath), badEntries);
    for (const [index, entry] of badEntries.entries()) {
      const { data } = await bed().zkClient.getData(`${rejectedPath}/${entry}`);
      assert.deepEqual(data, bad[index], `the bytes of ${entry}`);
      const errors = executor.lines.filter((line) => line.includes(` error `) && line.includes(`"entry":"${entry}"`));
      assert.equal(errors.length, 1, `one error line for ${entry}:\n${errors.join('\n')}`);
      assert.match(errors[0] ?? '', /not a job id/);
    }
    assert.deepEqual(await children(`${bed().queuePath}/entries`), []);
    assert.deepEqual(await children(`${bed().queuePath}/taken`), []);
    // The id with a newline was never taken for the job it resembles.
    assert.equal((await bed().client.get(existing)).job.state, 'QUEUED');

    const metricsLine = await executor.waitForLine(/metrics listening/);
    const url = /"url":"(http:\/\/[^"]+)"/.exec(metricsLine)?.[1];
    assert.ok(url !== undefined);
    assert.equal(valueOf(await scrape(`${url}/metrics`), 'zkje_executor_entries_rejected_total'), bad.length);

    const human = await jobctl.run(['queue']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /^rejected entries \(not a job id\): 4$/m);
    assert.match(human.stdout, new RegExp(`^${badEntries[0] ?? ''} +"not a job id" +12 B$`, 'm'));
    assert.match(human.stdout, new RegExp(`^${badEntries[1] ?? ''} +"" +0 B$`, 'm'));
    assert.match(human.stdout, new RegExp(`^${badEntries[2] ?? ''} +hex 6a6f622ffffe80 +7 B$`, 'm'));
    const json = JSON.parse((await jobctl.run(['queue', '--json'])).stdout) as unknown;
    assert.ok(isRecord(json) && Array.isArray(json.rejected));
    assert.deepEqual(
      json.rejected.map((entry) => (isRecord(entry) ? [entry.entry, entry.hex] : undefined)),
      badEntries.map((entry, index) => [entry, bad[index]?.toString('hex')]),
    );

    // An operator removes one once it has been looked at.
    const removed = await jobctl.run(['queue', 'remove', badEntries[0] ?? '']);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, new RegExp(`removed rejected entry ${badEntries[0] ?? ''}`));
    assert.deepEqual(await children(rejectedPath), badEntries.slice(1));
  });

  test('jobctl queue remove deletes a waiting entry, refuses a taken one without --force, and names what is missing', async () => {
    const waiting = await bed().queue.put(`job/${randomUUID()}`);
    const removed = await jobctl.run(['queue', 'remove', waiting]);
    assert.equal(removed.code, 0, removed.stderr);
    assert.match(removed.stdout, new RegExp(`removed entry ${waiting}`));
    assert.deepEqual(await children(`${bed().queuePath}/entries`), []);

    const heldId = `job/${randomUUID()}`;
    const held = await bed().queue.put(heldId);
    const holder = kazoo('hold', []);
    await holder.next('held');
    const refused = await jobctl.run(['queue', 'remove', held]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, new RegExp(`entry ${held} is taken by consumer [0-9a-f]{32}.*--force`));
    assert.deepEqual(await children(`${bed().queuePath}/entries`), [held]);
    const forced = await jobctl.run(['queue', 'remove', held, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.deepEqual(await children(`${bed().queuePath}/entries`), []);
    assert.deepEqual(await children(`${bed().queuePath}/taken`), []);

    const missing = await jobctl.run(['queue', 'remove', 'entry-100-0000009999']);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /no entry entry-100-0000009999 in .*\/entries or .*\/rejected/);
    const malformed = await jobctl.run(['queue', 'remove', '../taken']);
    assert.equal(malformed.code, 2);
    assert.match(malformed.stderr, /"\.\.\/taken" is not an entry name \(entry-PPP-SSSSSSSSSS\)/);
  });

  test('rejected/ keeps the newest entries only', async () => {
    const queue = new LockingQueue(bed().zkClient, { path: bed().queuePath, rejectedLimit: 3 });
    try {
      for (let i = 0; i < 5; i++) await queue.put(`not a job id ${String(i)}`);
      const names = await children(`${bed().queuePath}/entries`);
      for (let i = 0; i < 5; i++) await queue.reject(await queue.take(AbortSignal.timeout(5000)));
      assert.deepEqual(await children(`${bed().queuePath}/rejected`), names.slice(2));
      assert.deepEqual(await children(`${bed().queuePath}/entries`), []);
    } finally {
      await queue.close();
    }
  });

  test('a rejected node of the same name, left by an earlier incarnation of the queue, is replaced', async () => {
    const queue = new LockingQueue(bed().zkClient, { path: bed().queuePath });
    try {
      const name = await queue.put('not a job id, again');
      await bed().zkClient.mkdirp(`${bed().queuePath}/rejected`);
      await bed().zkClient.create(`${bed().queuePath}/rejected/${name}`, Buffer.from('stale'), 'persistent');
      await queue.reject(await queue.take(AbortSignal.timeout(5000)));
      assert.equal((await bed().zkClient.getData(`${bed().queuePath}/rejected/${name}`)).data.toString(), 'not a job id, again');
      assert.deepEqual(await children(`${bed().queuePath}/entries`), []);
      assert.deepEqual(await children(`${bed().queuePath}/taken`), []);
    } finally {
      await queue.close();
    }
  });
});
