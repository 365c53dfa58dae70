import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { describe, test } from 'node:test';
import type { JobDocument } from '../src/api/job/document.js';
import { RETURN_CODES, decide } from '../src/executor/disposition.js';
import { waitFor } from '../src/harness/wait-for.js';
import { ExecutorRegistry } from '../src/recipes/executor-registry.js';
import { useExecutorTestbed } from './fixtures/executor-testbed.js';

function job(fields: Partial<JobDocument> = {}): JobDocument {
  return {
    id: 'job/00000000-0000-7000-8000-000000000001',
    'resource-type': 'job',
    created: '2026-01-01T00:00:00.000Z',
    updated: '2026-01-01T00:00:00.000Z',
    state: 'QUEUED',
    action: 'noop',
    progress: 0,
    priority: 100,
    version: 2,
    revision: 1,
    ...fields,
  };
}

const known = (name: string): boolean => name === 'noop';

describe('decide: one answer for every case of a taken job', () => {
  const cases: [string, Parameters<typeof decide>[0], Partial<ReturnType<typeof decide>>][] = [
    ['no document', { lookup: { found: false }, knownAction: known, ownerAlive: undefined }, { kind: 'consume', reason: 'not-found' }],
    [
      'SUCCESS',
      { lookup: { found: true, job: job({ state: 'SUCCESS' }) }, knownAction: known, ownerAlive: undefined },
      { kind: 'consume', reason: 'final' },
    ],
    [
      'CANCELED',
      { lookup: { found: true, job: job({ state: 'CANCELED' }) }, knownAction: known, ownerAlive: undefined },
      { kind: 'consume', reason: 'final' },
    ],
    [
      'a newer schema',
      { lookup: { found: true, job: job({ version: 3 }) }, knownAction: known, ownerAlive: undefined },
      { kind: 'release', reason: 'newer-schema' },
    ],
    [
      'an unknown action',
      { lookup: { found: true, job: job({ action: 'nope' }) }, knownAction: known, ownerAlive: undefined },
      { kind: 'fail', reason: 'unknown-action', returnCode: RETURN_CODES.unknownAction },
    ],
    [
      'an action another live executor offers',
      {
        lookup: { found: true, job: job({ action: 'nope' }) },
        knownAction: known,
        ownerAlive: undefined,
        availability: { kind: 'elsewhere', executors: ['b'], setAsideMs: 5000 },
      },
      { kind: 'release', reason: 'action-elsewhere', setAsideMs: 5000 },
    ],
    [
      'an action offered nowhere, within the grace',
      {
        lookup: { found: true, job: job({ action: 'nope' }) },
        knownAction: known,
        ownerAlive: undefined,
        availability: { kind: 'nowhere', waitedMs: 1000, graceMs: 30_000, setAsideMs: 5000 },
      },
      { kind: 'release', reason: 'action-unoffered', setAsideMs: 5000 },
    ],
    [
      'an action offered nowhere for the whole grace',
      {
        lookup: { found: true, job: job({ action: 'nope' }) },
        knownAction: known,
        ownerAlive: undefined,
        availability: { kind: 'nowhere', waitedMs: 30_000, graceMs: 30_000, setAsideMs: undefined },
      },
      {
        kind: 'fail',
        reason: 'unknown-action',
        returnCode: RETURN_CODES.unknownAction,
        detail: 'unknown action "nope": no live executor offers action "nope" (none did for 30 s)',
      },
    ],
    [
      'QUEUED',
      { lookup: { found: true, job: job() }, knownAction: known, ownerAlive: undefined },
      { kind: 'claim', attempt: 1, previousOwner: undefined },
    ],
    [
      'QUEUED after an attempt',
      { lookup: { found: true, job: job({ attempt: 2 }) }, knownAction: known, ownerAlive: undefined },
      { kind: 'claim', attempt: 3 },
    ],
    [
      'RUNNING on a live owner',
      {
        lookup: { found: true, job: job({ state: 'RUNNING', executor: 'a@0000000000000001', attempt: 1 }) },
        knownAction: known,
        ownerAlive: true,
      },
      { kind: 'consume', reason: 'owned-elsewhere' },
    ],
    [
      'RUNNING on a live owner, with an action unknown here',
      {
        lookup: { found: true, job: job({ state: 'RUNNING', action: 'nope', executor: 'a@0000000000000001' }) },
        knownAction: known,
        ownerAlive: true,
      },
      { kind: 'consume', reason: 'owned-elsewhere' },
    ],
    [
      'RUNNING on a dead owner',
      {
        lookup: { found: true, job: job({ state: 'RUNNING', executor: 'a@0000000000000001', attempt: 1 }) },
        knownAction: known,
        ownerAlive: false,
      },
      { kind: 'claim', attempt: 2, previousOwner: 'a@0000000000000001' },
    ],
    [
      'RUNNING with no owner (Nuvla)',
      { lookup: { found: true, job: job({ state: 'RUNNING' }) }, knownAction: known, ownerAlive: undefined },
      { kind: 'claim', attempt: 1, previousOwner: undefined },
    ],
  ];
  for (const [what, facts, expected] of cases) {
    test(what, () => {
      const disposition = decide(facts);
      for (const [key, value] of Object.entries(expected))
        assert.deepEqual(Reflect.get(disposition, key), value, `${key} of ${JSON.stringify(disposition)}`);
    });
  }
});

describe('job-executor carries each disposition out', () => {
  const bed = useExecutorTestbed();

  async function entriesLeft(): Promise<number> {
    return bed().queue.length();
  }

  test('an id with no document is consumed after the retry window; a final job is consumed untouched', async () => {
    const executor = bed().spawnExecutor({ threads: 1 });
    const missing = `job/${randomUUID()}`;
    const done = await bed().createJob('noop');
    await bed().waitForState(done, ['SUCCESS']);
    const before = (await bed().client.get(done)).job;
    await bed().queue.put(missing);
    await bed().queue.put(done);
    await executor.waitForLine(new RegExp(`nothing to run: entry consumed.*not-found.*${missing}|${missing}.*not-found`));
    await waitFor(async () => (await entriesLeft()) === 0, { message: 'both entries consumed' });
    const afterwards = (await bed().client.get(done)).job;
    assert.equal(afterwards.revision, before.revision);
    assert.ok(executor.lines.some((line) => line.includes('"reason":"final"') && line.includes(done)));
  });

  test('an action no live executor offers fails the job after the grace, naming the action, with return code 127', async () => {
    bed().spawnExecutor({ threads: 1, extraArgs: ['--unknown-action-grace', '1'] });
    const id = await bed().createJob('no_such_action');
    const failed = await bed().waitForState(id, ['FAILED']);
    assert.equal(failed['return-code'], 127);
    assert.match(failed['status-message'] ?? '', /unknown action "no_such_action": no live executor offers action "no_such_action"/);
    await waitFor(async () => (await entriesLeft()) === 0, { message: 'entry consumed' });
  });

  test('a job of a newer schema version is released for another executor', async () => {
    const executor = bed().spawnExecutor({ threads: 1 });
    const id = (await bed().client.create({ action: 'noop' })).id;
    // As an engine of a later version would have written it.
    await bed().api.store.update(id, (current) => ({ ...current, version: 3, revision: current.revision + 1 }));
    await bed().queue.put(id);
    await executor.waitForLine(new RegExp(`job left for another executor.*newer-schema.*|${id}.*newer-schema`));
    assert.equal((await bed().client.get(id)).job.state, 'QUEUED');
    assert.equal(await entriesLeft(), 1);
  });

  test('a RUNNING job whose owner is alive is not run again; one whose owner is dead is, as a new attempt', async () => {
    const registry = new ExecutorRegistry(bed().zkClient, bed().queuePath);
    await registry.register(bed().zkClient.session, 'live-owner', {
      host: 'elsewhere',
      pid: 1,
      threads: 1,
      started: new Date().toISOString(),
    });
    const liveOwner = `live-owner@${bed().zkClient.session.sessionId}`;
    const owned = (await bed().client.create({ action: 'noop' })).id;
    await bed().client.edit(owned, { state: 'RUNNING', executor: liveOwner, attempt: 1 });
    const orphan = (await bed().client.create({ action: 'noop' })).id;
    await bed().client.edit(orphan, { state: 'RUNNING', executor: 'dead-owner@00000000deadbeef', attempt: 1 });

    const executor = bed().spawnExecutor({ threads: 1 });
    await bed().queue.put(owned);
    await bed().queue.put(orphan);
    const rerun = await bed().waitForState(orphan, ['SUCCESS', 'FAILED']);
    assert.equal(rerun.state, 'SUCCESS');
    assert.equal(rerun.attempt, 2);
    await executor.waitForLine(new RegExp(`owned-elsewhere.*${owned}|${owned}.*owned-elsewhere`));
    const untouched = (await bed().client.get(owned)).job;
    assert.equal(untouched.state, 'RUNNING');
    assert.equal(untouched.executor, liveOwner);
    await waitFor(async () => (await entriesLeft()) === 0, { message: 'both entries consumed' });
    await registry.deregister(bed().zkClient.session, 'live-owner');
  });

  test('a payload the action refuses fails the job with return code 65 before it runs', async () => {
    bed().spawnExecutor({ threads: 1 });
    const id = await bed().createJob('sleep', { payload: { seconds: 1 } });
    const failed = await bed().waitForState(id, ['FAILED']);
    assert.equal(failed['return-code'], 65);
    assert.match(failed['status-message'] ?? '', /rejected by action sleep: payload must be \{"ms": number\}/);
  });
});
