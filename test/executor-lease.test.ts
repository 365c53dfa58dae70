import assert from 'node:assert/strict';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { after, describe, test } from 'node:test';
import { waitFor } from '../src/harness/wait-for.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';
import { startFaultProxy, type FaultProxy } from './fixtures/zk-fault-proxy.js';

const bed = useExecutorTestbed();
const proxies: FaultProxy[] = [];
after(async () => {
  await Promise.all(proxies.map((proxy) => proxy.close()));
});

interface RunSpan {
  readonly run: string;
  readonly start: number;
  /** The run's last line (a heartbeat or its end): it was live until then at least. */
  readonly last: number;
}

async function runsIn(file: string): Promise<RunSpan[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  const spans = new Map<string, { start: number; last: number }>();
  for (const line of text.split('\n')) {
    const [run, what, at] = line.split(' ');
    if (run === undefined || what === undefined || at === undefined) continue;
    const time = Number(at);
    const span = spans.get(run);
    if (span === undefined) spans.set(run, { start: what === 'start' ? time : Number.NaN, last: time });
    else span.last = Math.max(span.last, time);
  }
  return [...spans].map(([run, span]) => ({ run, ...span })).sort((a, b) => a.start - b.start);
}

describe('an executor cut off from ZooKeeper (docs/contracts.md, invariant 2)', () => {
  test('its running action stops before the server can expire its session: two runs of a job never overlap', async () => {
    const file = join(tmpdir(), `side-effects-${randomUUID()}.log`);
    const proxy = await startFaultProxy(bed().zk);
    proxies.push(proxy);
    try {
      // The cancel poll through the (reachable) job API is made too slow to be what stops the run.
      const cutOff = bed().spawnExecutor({
        threads: 1,
        name: 'cut-off',
        sessionTimeoutSeconds: 4,
        zkHosts: proxy.connectionString,
        extraArgs: ['--cancel-poll', '60'],
      });
      const id = await bed().createJob('side-effects', { payload: { file, ms: 60_000 } });
      await bed().waitForState(id, ['RUNNING']);
      await waitFor(async () => (await runsIn(file)).length === 1, { message: 'the first run to start' });
      const rescuer = bed().spawnExecutor({ threads: 1, name: 'rescuer', sessionTimeoutSeconds: 4, extraArgs: ['--cancel-poll', '60'] });
      await rescuer.waitForLine(/executor started/);

      proxy.partition();
      await waitFor(async () => (await runsIn(file)).length === 2, { timeoutMs: 30_000, message: 'the rescuer to re-run the job' });
      await cutOff.waitForLine(new RegExp(`stopping the action.*${id}|${id}.*stopping the action`), 30_000);
      // Let the first run's last lines reach the file: it stops within its kill grace at the latest.
      const [first, second] = await waitFor(
        async () => {
          const spans = await runsIn(file);
          const [a, b] = spans;
          return a !== undefined && b !== undefined && Date.now() - a.last > 1500 ? [a, b] : undefined;
        },
        { timeoutMs: 30_000, message: 'the first run to stop' },
      );
      assert.ok(
        first.last <= second.start,
        `the first run was still live ${String(first.last - second.start)} ms after the second run started`,
      );
    } finally {
      await rm(file, { force: true });
    }
  });
});
