/**
 * The job API server's lifecycle in-process: a start that fails half-way releases what it had opened
 * (the database file closed, the metrics port free again), stop() releases everything and may be
 * called twice, and bad options are refused in the words the command line has always used.
 */
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, readdir, readlink, rm } from 'node:fs/promises';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { JobApiServer } from '../src/api/server/job-api-server.js';
import { compileJobApiServerOptions } from '../src/api/server/options.js';
import { freePort } from '../src/harness/free-port.js';
import { silentLogger } from '../src/util/logger.js';

let dir: string;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'job-api-server-'));
});

after(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** The files this process holds open whose path starts with `prefix` (the database and its -wal/-shm). */
async function openFilesUnder(prefix: string): Promise<string[]> {
  const links = await Promise.all((await readdir('/proc/self/fd')).map((fd) => readlink(`/proc/self/fd/${fd}`).catch(() => '')));
  return links.filter((link) => link.startsWith(prefix));
}

async function listen(port: number): Promise<Server> {
  const server = createServer();
  server.listen({ host: '127.0.0.1', port });
  await once(server, 'listening');
  return server;
}

async function close(server: Server): Promise<void> {
  await new Promise<void>((resolve, reject) => {
    server.close((error) => {
      if (error === undefined) resolve();
      else reject(error);
    });
  });
}

/** Whether a TCP port on loopback can be bound right now. */
async function isFree(port: number): Promise<boolean> {
  try {
    await close(await listen(port));
    return true;
  } catch {
    return false;
  }
}

describe('JobApiServer', () => {
  it('releases the database and the metrics port when listening fails half-way through the start', async () => {
    const taken = await listen(0);
    try {
      const apiPort = (taken.address() as AddressInfo).port;
      const metricsPort = await freePort();
      const database = join(dir, 'failed-start.sqlite');
      const options = await compileJobApiServerOptions({ database, port: apiPort, 'metrics-port': metricsPort });
      await assert.rejects(JobApiServer.start(options, silentLogger), (error: unknown) => {
        assert.ok(error instanceof Error);
        assert.equal((error as NodeJS.ErrnoException).code, 'EADDRINUSE', 'the start fails with its own error, unchanged');
        return true;
      });
      assert.deepEqual(await openFilesUnder(database), [], 'the database file is closed');
      assert.ok(await isFree(metricsPort), 'the metrics port is free again');
    } finally {
      await close(taken);
    }
  });

  it('stops once however often it is asked, releasing the listener, the metrics port and the database', async () => {
    const metricsPort = await freePort();
    const database = join(dir, 'stop-twice.sqlite');
    const options = await compileJobApiServerOptions({ database, port: 0, 'metrics-port': metricsPort });
    const server = await JobApiServer.start(options, silentLogger);
    assert.equal(server.state, 'RUNNING');
    assert.equal(server.address, `http://127.0.0.1:${String(server.port)}`);
    assert.equal((await fetch(`${server.address}/api/job`)).status, 401, 'the API answers');
    assert.notDeepEqual(await openFilesUnder(database), [], 'the database is open while running (the check can see it)');
    assert.equal(await isFree(metricsPort), false, 'the metrics port is held while running');

    const first = server.stop();
    const second = server.stop();
    assert.equal(second, first, 'a second caller gets the stop in flight');
    assert.equal(server.state, 'STOPPING');
    await first;
    await server.stop();
    assert.equal(server.state, 'STOPPED');
    assert.deepEqual(await openFilesUnder(database), [], 'the database file is closed');
    assert.ok(await isFree(metricsPort), 'the metrics port is free again');
    assert.ok(await isFree(server.port), 'the API port is free again');
  });

  it('refuses bad options in the words the command line has always used', async () => {
    await assert.rejects(compileJobApiServerOptions({ port: 70_000 }), { message: '--port must be 0-65535, got 70000' });
    await assert.rejects(compileJobApiServerOptions({ 'body-limit': 0 }), { message: '--body-limit must be a positive integer, got 0' });
    await assert.rejects(compileJobApiServerOptions({ 'max-bulk-create': Number.NaN }), {
      message: '--max-bulk-create must be a positive integer, got NaN',
    });
    await assert.rejects(compileJobApiServerOptions({ 'database-file': join(dir, 'nope') }), {
      message: /^database file .*nope cannot be read/,
    });
    await assert.rejects(compileJobApiServerOptions({ 'metrics-host': '0.0.0.0' }), { message: '--metrics-host needs --metrics-port' });
    const defaults = await compileJobApiServerOptions({});
    assert.ok(Object.isFrozen(defaults));
    assert.deepEqual(
      { database: defaults.database, host: defaults.host, port: defaults.port, metrics: defaults.metrics },
      { database: 'job-api.sqlite', host: '127.0.0.1', port: 8200, metrics: undefined },
    );
  });
});
