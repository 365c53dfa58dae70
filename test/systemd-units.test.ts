import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { EXECUTOR_DEFAULTS } from '../src/executor/options.js';

const SYSTEMD = fileURLToPath(new URL('../systemd/', import.meta.url));

function verify(unit: string, path = `${SYSTEMD}${unit}`): Promise<{ code: number; output: string }> {
  return new Promise((resolve) => {
    execFile('systemd-analyze', ['verify', path], { timeout: 60_000 }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, output: `${stdout}${stderr}` });
    });
  });
}

/** `[Section]` -> key -> values, in file order (a key may repeat). */
async function directives(unit: string): Promise<Map<string, string[]>> {
  const found = new Map<string, string[]>();
  for (const line of (await readFile(`${SYSTEMD}${unit}`, 'utf8')).split('\n')) {
    const match = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (match?.[1] === undefined || match[2] === undefined) continue;
    found.set(match[1], [...(found.get(match[1]) ?? []), match[2]]);
  }
  return found;
}

const one = (units: Map<string, string[]>, key: string): string => {
  const values = units.get(key) ?? [];
  assert.equal(values.length, 1, `${key} once, got ${JSON.stringify(values)}`);
  return values[0] ?? '';
};

const HARDENING = [
  'NoNewPrivileges=yes',
  'ProtectSystem=strict',
  'ProtectHome=yes',
  'PrivateTmp=yes',
  'PrivateDevices=yes',
  'RestrictSUIDSGID=yes',
];

describe('systemd units', () => {
  for (const [unit, name] of [
    ['job-executor.service', 'job-executor'],
    ['job-api.service', 'job-api'],
  ] as const) {
    test(`${unit} passes systemd-analyze verify and runs as a dedicated, confined user`, async () => {
      const result = await verify(unit);
      assert.equal(result.code, 0, result.output);
      assert.equal(result.output.trim(), '', result.output);
      const units = await directives(unit);
      assert.equal(one(units, 'User'), 'job-engine');
      assert.equal(one(units, 'Restart'), 'on-failure');
      assert.equal(one(units, 'EnvironmentFile'), `-/etc/default/${name}`);
      assert.match(one(units, 'ExecStart'), new RegExp(`^/usr/bin/env ${name}\\b.*\\$DAEMON_ARGS$`));
      for (const setting of HARDENING) {
        const [key, value] = setting.split('=');
        assert.equal(one(units, key ?? ''), value, setting);
      }
      assert.equal(units.has('MemoryDenyWriteExecute'), false, 'V8 needs writable executable memory');
    });
  }

  test('job-distributor@.service is a template whose instance runs the distribution it names, verified as an instance', async () => {
    // Verified as an instance (the way systemctl starts it), through a link named like one.
    const dir = await mkdtemp(path.join(tmpdir(), 'units-'));
    try {
      const instance = path.join(dir, 'job-distributor@cleanup_jobs.service');
      await symlink(`${SYSTEMD}job-distributor@.service`, instance);
      const result = await verify('job-distributor@.service', instance);
      assert.equal(result.code, 0, result.output);
      assert.equal(result.output.trim(), '', result.output);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
    const units = await directives('job-distributor@.service');
    assert.equal(one(units, 'User'), 'job-engine');
    assert.equal(one(units, 'Restart'), 'on-failure');
    assert.deepEqual(units.get('EnvironmentFile'), ['-/etc/default/job-distributor', '-/etc/default/job-distributor@%i']);
    assert.equal(one(units, 'ExecStart'), '/usr/bin/env job-distributor %i $DAEMON_ARGS $INSTANCE_ARGS');
    for (const setting of HARDENING) {
      const [key, value] = setting.split('=');
      assert.equal(one(units, key ?? ''), value, setting);
    }
    // The distributor stops within 10 s; systemd must not kill it sooner.
    assert.ok(Number(one(units, 'TimeoutStopSec')) > 10);
  });

  test('the executor unit waits longer than the executor takes to stop, and signals it alone', async () => {
    const units = await directives('job-executor.service');
    const stopSeconds = Number(one(units, 'TimeoutStopSec'));
    assert.ok(
      stopSeconds > EXECUTOR_DEFAULTS.shutdownTimeoutSeconds + EXECUTOR_DEFAULTS.killGraceSeconds + 10,
      `TimeoutStopSec=${String(stopSeconds)}`,
    );
    assert.equal(one(units, 'KillMode'), 'mixed');
  });
});
