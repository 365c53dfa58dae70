import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { ApiError } from '../src/api/errors.js';
import { parseJobCreate, parseJobEdit } from '../src/api/job/parse.js';
import { applyEdit, cancelJob, newJob, retryJob } from '../src/api/job/lifecycle.js';
import type { JobDocument } from '../src/api/job/document.js';

const T0 = new Date('2026-11-25T10:00:00.000Z');
const at = (seconds: number): Date => new Date(T0.getTime() + seconds * 1000);

function rejects(run: () => unknown, code: ApiError['code'], message: RegExp): void {
  assert.throws(run, (error: unknown) => error instanceof ApiError && error.code === code && message.test(error.message));
}

function job(fields: Record<string, unknown> = {}): JobDocument {
  return newJob(parseJobCreate({ action: 'dummy_test_action', ...fields }), T0);
}

function edit(current: JobDocument, body: Record<string, unknown>, seconds = 1): JobDocument {
  return applyEdit(current, parseJobEdit(body), at(seconds));
}

describe('create', () => {
  test('a new job is QUEUED with the server-owned fields set', () => {
    const created = job({ 'target-resource': { href: 'nuvlabox/1' }, payload: '{"x":1}', tags: ['a'] });
    assert.match(created.id, /^job\/[0-9a-f-]{36}$/);
    assert.equal(created['resource-type'], 'job');
    assert.equal(created.state, 'QUEUED');
    assert.equal(created.progress, 0);
    assert.equal(created.priority, 999, "Nuvla's default priority");
    assert.equal(created.version, 2);
    assert.equal(created.revision, 1);
    assert.equal(created.created, T0.toISOString());
    assert.equal(created.updated, T0.toISOString());
    assert.deepEqual(created['target-resource'], { href: 'nuvlabox/1' });
    assert.equal(created.started, undefined);
  });

  test('bad bodies are refused with the field named', () => {
    rejects(() => parseJobCreate('nope'), 'bad-request', /must be a JSON object/);
    rejects(() => parseJobCreate({}), 'bad-request', /needs an "action"/);
    rejects(() => parseJobCreate({ action: 'a b' }), 'bad-request', /"action" must be a name/);
    rejects(
      () => parseJobCreate({ action: 'x', priority: 1000 }),
      'bad-request',
      /"priority" must be an integer from 0 to 999, got number 1000/,
    );
    rejects(() => parseJobCreate({ action: 'x', priority: '5' }), 'bad-request', /"priority" must be an integer.*got "5"/);
    rejects(() => parseJobCreate({ action: 'x', state: 'RUNNING' }), 'bad-request', /created QUEUED/);
    rejects(() => parseJobCreate({ action: 'x', id: 'job/1' }), 'bad-request', /"id" is set by the server/);
    rejects(() => parseJobCreate({ action: 'x', colour: 'red' }), 'bad-request', /unknown field "colour"/);
    rejects(() => parseJobCreate({ action: 'x', payload: '{not json' }), 'bad-request', /"payload" must be JSON text/);
    rejects(
      () => parseJobCreate({ action: 'x', 'target-resource': 'nuvlabox/1' }),
      'bad-request',
      /"target-resource" must be an object like \{"href"/,
    );
    rejects(() => parseJobCreate({ action: 'x', 'execution-mode': 'fast' }), 'bad-request', /one of push, pull, mixed/);
    rejects(() => parseJobCreate({ action: 'x', expiry: 'tomorrow' }), 'bad-request', /"expiry" must be an ISO-8601 date/);
  });
});

describe('edit', () => {
  test('claim, progress and success derive started, duration, progress 100 and revisions', () => {
    const queued = job();
    const running = edit(queued, { state: 'RUNNING', executor: 'exec-1' }, 2);
    assert.equal(running.state, 'RUNNING');
    assert.equal(running.started, at(2).toISOString());
    assert.equal(running.attempt, 1);
    assert.equal(running.executor, 'exec-1');
    assert.equal(running.revision, 2);
    const progressed = edit(running, { progress: 40, 'status-message': 'working' }, 5);
    assert.equal(progressed.progress, 40);
    assert.equal(progressed['time-of-status-change'], at(5).toISOString());
    assert.equal(progressed.started, running.started, 'started is kept');
    const done = edit(progressed, { state: 'SUCCESS', 'return-code': 0 }, 12);
    assert.equal(done.progress, 100);
    assert.equal(done.duration, 10, 'seconds since started');
    assert.equal(done.updated, at(12).toISOString());
    assert.equal(done.revision, 4);
  });

  test('a final job cannot be changed (409)', () => {
    const failed = edit(edit(job(), { state: 'RUNNING' }), { state: 'FAILED', 'return-code': 3 });
    rejects(() => edit(failed, { progress: 10 }), 'conflict', /FAILED, a final state/);
    rejects(() => cancelJob(failed, T0), 'conflict', /already FAILED/);
  });

  test('transitions outside the state machine are refused (409)', () => {
    rejects(() => edit(job(), { state: 'SUCCESS' }), 'conflict', /cannot go from QUEUED to SUCCESS/);
  });

  test('a running job handed back is QUEUED again and its next run is a new attempt', () => {
    const running = edit(job(), { state: 'RUNNING', executor: 'a' });
    const requeued = edit(running, { state: 'QUEUED', executor: null, 'status-message': 'executor stopping' });
    assert.equal(requeued.executor, undefined);
    const again = edit(requeued, { state: 'RUNNING', executor: 'b' });
    assert.equal(again.attempt, 2);
  });

  test('immutable fields may be re-sent unchanged but not changed', () => {
    const queued = job({ 'target-resource': { href: 'x/1' } });
    assert.equal(edit(queued, { action: 'dummy_test_action', 'target-resource': { href: 'x/1' }, progress: 5 }).progress, 5);
    rejects(() => edit(queued, { action: 'other' }), 'bad-request', /"action" cannot be changed/);
    rejects(() => edit(queued, { 'target-resource': { href: 'x/2' } }), 'bad-request', /"target-resource" cannot be changed/);
  });

  test('server-owned fields in an edit are ignored, unknown ones refused', () => {
    const queued = job();
    const edited = edit(queued, { id: 'job/other', created: '2000-01-01T00:00:00Z', revision: 99, progress: 1 });
    assert.equal(edited.id, queued.id);
    assert.equal(edited.created, queued.created);
    assert.equal(edited.revision, 2);
    rejects(() => parseJobEdit({ colour: 'red' }), 'bad-request', /unknown field "colour"/);
    rejects(() => parseJobEdit({ state: 'DONE' }), 'bad-request', /"state" must be one of QUEUED, RUNNING, SUCCESS, FAILED, CANCELED/);
    rejects(() => parseJobEdit({ progress: 101 }), 'bad-request', /"progress" must be an integer from 0 to 100/);
  });

  test('a long status message is truncated, not refused', () => {
    const running = edit(job(), { state: 'RUNNING' });
    const failed = edit(running, { state: 'FAILED', 'status-message': 'x'.repeat(250_000) });
    const message = failed['status-message'] ?? '';
    assert.equal(message.length, 100_000);
    assert.match(message, /\(truncated\)$/);
  });

  test('cancel a queued or running job', () => {
    const canceled = cancelJob(job(), at(3));
    assert.equal(canceled.state, 'CANCELED');
    assert.equal(canceled.progress, 0, 'a job canceled before it ran made no progress');
    assert.equal(canceled.duration, 3);
  });

  test('a job that ends other than in SUCCESS keeps the progress it had reached', () => {
    const running = edit(edit(job(), { state: 'RUNNING', executor: 'exec-1' }), { progress: 74 }, 2);
    assert.equal(cancelJob(running, at(4)).progress, 74);
    assert.equal(edit(running, { state: 'FAILED', 'return-code': 1 }, 4).progress, 74);
    assert.equal(edit(running, { state: 'SUCCESS', 'return-code': 0 }, 4).progress, 100);
  });
});

describe('attempt-history', () => {
  const brief = (doc: JobDocument): unknown[] =>
    (doc['attempt-history'] ?? []).map((record) => [record.attempt, record.started, record.ended, record.state, record.executor]);

  test('a job run once carries none: the document is its attempt', () => {
    const done = edit(edit(job(), { state: 'RUNNING', executor: 'a' }, 1), { state: 'SUCCESS', 'return-code': 0 }, 2);
    assert.equal(done['attempt-history'], undefined);
  });

  test('the first attempt is recorded once the job moves past it, later ones from their start', () => {
    const first = edit(job(), { state: 'RUNNING', executor: 'a' }, 1);
    const requeued = edit(first, { state: 'QUEUED', executor: null, 'return-code': 3, 'status-message': 'failed' }, 2);
    assert.deepEqual(brief(requeued), [[1, at(1).toISOString(), at(2).toISOString(), 'QUEUED', 'a']]);
    assert.equal(requeued['attempt-history']?.[0]?.['return-code'], 3);
    const second = edit(requeued, { state: 'RUNNING', executor: 'b' }, 3);
    assert.deepEqual(brief(second).at(-1), [2, at(3).toISOString(), undefined, undefined, 'b']);
    const takenOver = edit(second, { state: 'RUNNING', executor: 'c', attempt: 3 }, 4);
    const done = edit(takenOver, { state: 'FAILED', 'return-code': 1 }, 5);
    assert.deepEqual(brief(done), [
      [1, at(1).toISOString(), at(2).toISOString(), 'QUEUED', 'a'],
      [2, at(3).toISOString(), at(4).toISOString(), undefined, 'b'],
      [3, at(4).toISOString(), at(5).toISOString(), 'FAILED', 'c'],
    ]);
  });

  test("an operator's retry records the attempt the job ended on, and starts a new round", () => {
    const failed = edit(edit(job(), { state: 'RUNNING', executor: 'a' }, 1), { state: 'FAILED', 'return-code': 2 }, 2);
    const retried = retryJob(failed, at(3));
    assert.deepEqual(brief(retried), [[1, at(1).toISOString(), at(2).toISOString(), 'FAILED', 'a']]);
    const rerun = edit(edit(retried, { state: 'RUNNING', executor: 'b' }, 4), { state: 'SUCCESS', 'return-code': 0 }, 5);
    // The new round's first attempt is the document's own again.
    assert.equal(rerun['attempt-history']?.length, 1);
    assert.equal(rerun.attempt, 2);
  });
});
