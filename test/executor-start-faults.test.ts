/**
 * An executor starting while ZooKeeper has a blip: a request of its start-up fails with
 * CONNECTION_LOSS (found by `npm run chaos`: the registration's mkdirp, during a ZooKeeper leader
 * restart). The executor must ride it out as it does once running, not exit 1 and wait for systemd.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { startFaultProxy } from './fixtures/zk-fault-proxy.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';

const bed = useExecutorTestbed();

/** ZooKeeper's error code for a lost connection, as a reply can carry it. */
const CONNECTION_LOSS = -4;

describe('an executor starting during a ZooKeeper blip', () => {
  test('CONNECTION_LOSS on its first request after connecting: it starts anyway and runs jobs', async () => {
    const proxy = await startFaultProxy(bed().zk);
    try {
      proxy.injectErrorCode(CONNECTION_LOSS);
      const executor = bed().spawnExecutor({ zkHosts: proxy.connectionString });
      const outcome = await Promise.race([
        executor.waitForLine(/executor started/, 30_000).then(() => 'started'),
        executor.exited.then((status) => `exited with ${JSON.stringify(status)}: ${executor.lines.slice(-5).join('\n')}`),
      ]);
      assert.equal(outcome, 'started');
      const id = await bed().createJob('noop');
      await bed().waitForState(id, ['SUCCESS'], 30_000);
    } finally {
      await proxy.close();
    }
  });
});
