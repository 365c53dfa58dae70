import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { after, before, describe, test } from 'node:test';
import type { JobDocument } from '../src/api/job/document.js';
import { ACTION_BRAND, ActionDefinitionError, defineAction, isActionDefinition, type ActionSpec } from '../src/sdk/action.js';
import { ActionPayloadError, parseJobPayload } from '../src/sdk/action-payload.js';
import { ActionDirectoryError, isActionModuleName, loadActions, type LoadedActions } from '../src/executor/action-loader.js';
import { silentLogger } from '../src/util/logger.js';

const fixtures = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fixtures');
const dir = (name: string): string => path.join(fixtures, name);

function failuresByFile(result: LoadedActions): Map<string, string> {
  return new Map(result.failures.map((f) => [path.basename(f.file), f.error]));
}

function job(payload?: string): JobDocument {
  return {
    id: 'job/00000000-0000-4000-8000-000000000000',
    'resource-type': 'job',
    created: '2025-01-01T00:00:00.000Z',
    updated: '2025-01-01T00:00:00.000Z',
    state: 'RUNNING',
    action: 'cleanup_jobs',
    progress: 0,
    priority: 999,
    version: 2,
    revision: 1,
    ...(payload === undefined ? {} : { payload }),
  };
}

/** defineAction as a plain-JS author would call it: no compile-time check of the spec. */
function defineUnchecked(spec: unknown): unknown {
  return defineAction(spec as ActionSpec);
}

describe('defineAction', () => {
  test('returns a frozen, branded copy', () => {
    const spec = { name: 'a.b:c-d_1', timeoutSeconds: 1, run: () => 0 };
    const definition = defineAction(spec);
    assert.equal(definition[ACTION_BRAND], true);
    assert.ok(Object.isFrozen(definition));
    assert.ok(isActionDefinition(definition));
    assert.equal(isActionDefinition(spec), false);
    assert.equal(definition.description, undefined);
    assert.equal('parsePayload' in definition, false);
  });

  const refusals: [string, unknown, RegExp][] = [
    [
      'a bad name',
      { name: 'has spaces', timeoutSeconds: 1, run: () => 0 },
      /invalid action "has spaces" definition: name must be .*got "has spaces"/,
    ],
    ['a name starting with punctuation', { name: '_x', timeoutSeconds: 1, run: () => 0 }, /name must be/],
    ['a name over 128 characters', { name: 'a'.repeat(129), timeoutSeconds: 1, run: () => 0 }, /name must be/],
    ['a missing name', { timeoutSeconds: 1, run: () => 0 }, /^invalid action definition: name must be .*got a value of type undefined/],
    ['a zero timeout', { name: 'x', timeoutSeconds: 0, run: () => 0 }, /timeoutSeconds must be a positive number of seconds, got 0/],
    ['a NaN timeout', { name: 'x', timeoutSeconds: Number.NaN, run: () => 0 }, /timeoutSeconds must be a positive number/],
    ['a timeout over 31 days', { name: 'x', timeoutSeconds: 31 * 86_400 + 1, run: () => 0 }, /at most 2678400 \(31 days\), got 2678401/],
    ['a string timeout', { name: 'x', timeoutSeconds: '10', run: () => 0 }, /timeoutSeconds must be .*got "10"/],
    ['a missing run', { name: 'x', timeoutSeconds: 1 }, /run must be a function, got a value of type undefined/],
    ['a non-function parsePayload', { name: 'x', timeoutSeconds: 1, parsePayload: {}, run: () => 0 }, /parsePayload must be a function/],
    ['a misspelt field', { name: 'x', timeout: 1, timeoutSeconds: 1, run: () => 0 }, /unknown field\(s\) timeout/],
    ['a non-object', 'cleanup', /must be an object, got "cleanup"/],
  ];
  for (const [what, spec, message] of refusals) {
    test(`refuses ${what}`, () => {
      assert.throws(
        () => defineUnchecked(spec),
        (error: unknown) => {
          assert.ok(error instanceof ActionDefinitionError);
          assert.equal(error.code, 'invalid-action-definition');
          assert.match(error.message, message);
          return true;
        },
      );
    });
  }

  test('lists every problem at once', () => {
    assert.throws(() => defineUnchecked({ name: '', timeoutSeconds: -1 }), /name must be.*; timeoutSeconds must be.*; run must be/);
  });
});

describe('parseJobPayload', () => {
  const typed = defineAction({
    name: 'typed',
    timeoutSeconds: 1,
    parsePayload: (raw: unknown): { n: number } => {
      if (typeof raw !== 'object' || raw === null || typeof (raw as { n?: unknown }).n !== 'number') throw new Error('n must be a number');
      return raw as { n: number };
    },
    run: ({ payload }) => payload.n,
  });

  test('passes the JSON value through parsePayload', () => {
    assert.deepEqual(parseJobPayload(typed, job('{"n":3}')), { n: 3 });
  });
  test('gives the raw JSON value, or undefined, to actions without parsePayload', () => {
    const untyped = defineAction({ name: 'untyped', timeoutSeconds: 1, run: () => 0 });
    assert.deepEqual(parseJobPayload(untyped, job('[1,2]')), [1, 2]);
    assert.equal(parseJobPayload(untyped, job()), undefined);
  });
  test('names the job and the action when the payload is refused', () => {
    assert.throws(
      () => parseJobPayload(typed, job('{"n":"x"}')),
      (error: unknown) => {
        assert.ok(error instanceof ActionPayloadError);
        assert.match(error.message, /payload of job\/0+.* rejected by action typed: n must be a number/);
        return true;
      },
    );
    assert.throws(() => parseJobPayload(typed, job('{n:')), /payload of job\/.* is not valid JSON/);
  });
});

describe('loadActions', () => {
  test('loads valid actions by default export and by named export `action`', async () => {
    const { actions, failures } = await loadActions([dir('actions-good')], silentLogger);
    assert.deepEqual(failures, []);
    assert.deepEqual([...actions.keys()], ['cleanup_jobs', 'dummy_test_action']);
    assert.equal(actions.get('dummy_test_action')?.definition.timeoutSeconds, 30);
    assert.equal(actions.get('dummy_test_action')?.definition.description, 'does nothing, successfully');
    const cleanup = actions.get('cleanup_jobs');
    assert.ok(cleanup);
    assert.equal(cleanup.definition.timeoutSeconds, 600);
    assert.equal(path.basename(cleanup.file), 'cleanup-jobs.ts');
    assert.ok(path.isAbsolute(cleanup.file));
    assert.deepEqual(parseJobPayload(cleanup.definition, job()), { olderThanDays: 7 });
    assert.throws(() => parseJobPayload(cleanup.definition, job('{"olderThanDays":0}')), /olderThanDays must be a positive integer/);
  });

  test('reports each broken module by file and still loads the valid one', async () => {
    const result = await loadActions([dir('actions-broken')], silentLogger);
    assert.deepEqual([...result.actions.keys()], ['survivor']);
    assert.equal(result.actions.get('survivor')?.definition.timeoutSeconds, 42);
    const failures = failuresByFile(result);
    assert.deepEqual([...failures.keys()], ['bad-name.ts', 'no-default-export.ts', 'syntax-error.mjs', 'throws-at-import.ts']);
    assert.match(failures.get('bad-name.ts') ?? '', /^import failed: invalid action "has spaces" definition: name must be/);
    assert.match(failures.get('no-default-export.ts') ?? '', /has no default export \(or export named `action`\)/);
    assert.match(failures.get('syntax-error.mjs') ?? '', /^import failed: Unexpected identifier 'timeoutSeconds' at line 2, column 45: /);
    assert.match(failures.get('throws-at-import.ts') ?? '', /^import failed: database unreachable at import$/);
    for (const failure of result.failures) assert.ok(path.isAbsolute(failure.file));
  });

  test('rejects an action name defined twice, naming both files, whatever the directory order', async () => {
    const forward = await loadActions([dir('actions-duplicate-a'), dir('actions-duplicate-b')], silentLogger);
    const backward = await loadActions([dir('actions-duplicate-b'), dir('actions-duplicate-a')], silentLogger);
    assert.deepEqual(forward, backward);
    assert.deepEqual([...forward.actions.keys()], ['unique']);
    const failures = failuresByFile(forward);
    assert.deepEqual([...failures.keys()], ['twin.ts', 'twin-too.ts']);
    for (const error of failures.values()) {
      assert.match(
        error,
        /action "twin" is defined by more than one module \(.*actions-duplicate-a\/twin\.ts and .*actions-duplicate-b\/twin-too\.ts\); none of them was loaded/,
      );
    }
  });

  test('treats the same directory given twice as one', async () => {
    const { actions, failures } = await loadActions([dir('actions-good'), `${dir('actions-good')}/`], silentLogger);
    assert.deepEqual(failures, []);
    assert.equal(actions.size, 2);
  });

  test('refuses a directory that does not exist, naming it', async () => {
    const missing = dir('actions-missing');
    await assert.rejects(loadActions([dir('actions-good'), missing], silentLogger), (error: unknown) => {
      assert.ok(error instanceof ActionDirectoryError);
      assert.ok(error.message.includes(`actions directory ${missing} is not usable`), error.message);
      return true;
    });
  });

  describe('with generated modules', () => {
    let scratch = '';
    before(async () => {
      scratch = await mkdtemp(path.join(tmpdir(), 'executor-actions-'));
    });
    after(async () => {
      await rm(scratch, { recursive: true, force: true });
    });

    test('imports only action module names', async () => {
      const skipped = ['_helper.ts', '.hidden.js', 'types.d.ts', 'thing.test.ts', 'thing.test.mjs', 'notes.md', 'x.cjs', 'x.json'];
      for (const name of skipped) {
        assert.equal(isActionModuleName(name), false, name);
        await writeFile(path.join(scratch, name), 'throw new Error("must not be imported");\n');
      }
      // A directory whose name looks like a module is not a module.
      await mkdir(path.join(scratch, 'folder.js'));
      for (const name of ['a.js', 'a.mjs', 'a.ts', 'cleanup-jobs.v2.ts']) assert.equal(isActionModuleName(name), true, name);
      const { actions, failures } = await loadActions([scratch], silentLogger);
      assert.equal(actions.size, 0);
      assert.deepEqual(failures, []);
    });

    test('gives up on a module whose import never settles', async () => {
      const sub = await mkdtemp(path.join(scratch, 'hang-'));
      await writeFile(path.join(sub, 'hangs.mjs'), 'await new Promise(() => {});\nexport default 1;\n');
      const { failures } = await loadActions([sub], silentLogger, { importTimeoutMs: 200 });
      assert.deepEqual(
        failuresByFile({ actions: new Map(), failures }),
        new Map([['hangs.mjs', 'import failed: import did not finish within 200 ms']]),
      );
    });

    test('refuses a path that is a file', async () => {
      const file = path.join(scratch, 'notes.md');
      await assert.rejects(loadActions([file], silentLogger), /actions directory .*notes\.md is not usable: not a directory/);
    });
  });
});
