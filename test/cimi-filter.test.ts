/**
 * CIMI filter, orderby and select parsing; compilation to SQL for both stores' dialects (text and
 * parameters); and the SQLite SQL run against a real in-memory database, which proves it executes
 * and selects what Nuvla's semantics say. PostgreSQL execution is the store's test suite's job.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import Sqlite from 'better-sqlite3';

import type { FilterNode } from '../src/api/cimi/ast.js';
import { parseFilter, parseOptionalFilter, parseOrderBy, parseSelect } from '../src/api/cimi/parser.js';
import { compileFilter, compileOrderBy, toNumberedPlaceholders, type CompileOptions, type SqlFragment } from '../src/api/cimi/sql.js';
import { ApiError } from '../src/api/errors.js';

const NOW = new Date('2026-11-10T12:00:00.000Z');
const COLUMNS: CompileOptions['columns'] = {
  id: { column: 'id', type: 'text' },
  state: { column: 'state', type: 'text' },
  action: { column: 'action', type: 'text' },
  priority: { column: 'priority', type: 'number' },
  created: { column: 'created', type: 'date' },
  'target-resource/href': { column: 'target_href', type: 'text' },
};
const options = (dialect: CompileOptions['dialect']): CompileOptions => ({
  dialect,
  columns: COLUMNS,
  documentColumn: 'doc',
  now: NOW,
});
const SQLITE = options('sqlite');
const POSTGRES = options('postgres');

const cmp = (attribute: string, op: string, value: unknown): FilterNode =>
  ({ kind: 'compare', attribute: attribute.split('/'), op, value }) as FilterNode;
const and = (left: FilterNode, right: FilterNode): FilterNode => ({ kind: 'and', left, right });
const or = (left: FilterNode, right: FilterNode): FilterNode => ({ kind: 'or', left, right });

/** Compiles, checking the invariant the PostgreSQL store relies on: every `?` is a parameter. */
function compile(filter: string, compileOptions: CompileOptions): SqlFragment {
  const fragment = compileFilter(parseFilter(filter), compileOptions);
  assert.equal(fragment.sql.split('?').length - 1, fragment.params.length, fragment.sql);
  return fragment;
}

function rejects(run: () => unknown, message: RegExp): ApiError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof ApiError, `expected an ApiError matching ${String(message)}`);
  assert.equal(caught.code, 'bad-request');
  assert.equal(caught.status, 400);
  assert.match(caught.message, message);
  return caught;
}

function syntaxErrorAt(filter: string, position: number, problem: RegExp): void {
  const error = rejects(() => parseFilter(filter), problem);
  assert.ok(error.message.startsWith(`filter syntax error at position ${position}: `), error.message);
  assert.deepEqual(error.details, { position, filter });
}

describe('parseFilter', () => {
  test('every comparison operator', () => {
    for (const op of ['=', '!=', '<', '>', '<=', '>=']) assert.deepEqual(parseFilter(`priority${op}5`), cmp('priority', op, 5));
    assert.deepEqual(parseFilter("action^='start_'"), cmp('action', '^=', 'start_'));
  });

  test('values: quoted strings with escapes, numbers, booleans, null, unquoted dates', () => {
    const value = (literal: string): unknown => (parseFilter(`a=${literal}`) as { value: unknown }).value;
    assert.equal(value("'single'"), 'single');
    assert.equal(value('"double"'), 'double');
    assert.equal(value("'it\\'s'"), "it's");
    assert.equal(value('"say \\"hi\\""'), 'say "hi"');
    assert.equal(value('"it\'s"'), "it's");
    assert.equal(value("'back\\\\slash'"), 'back\\slash');
    assert.equal(value("''"), '');
    assert.equal(value("'a and b or (c)'"), 'a and b or (c)');
    assert.equal(value('42'), 42);
    assert.equal(value('-42'), -42);
    assert.equal(value('3.25'), 3.25);
    assert.equal(value('-0.5'), -0.5);
    assert.equal(value('true'), true);
    assert.equal(value('FALSE'), false);
    assert.equal(value('null'), null);
    assert.equal(value('2026-11-01'), '2026-11-01');
    assert.equal(value('2026-11-01T10:00:00.5+02:00'), '2026-11-01T10:00:00.5+02:00');
  });

  test('lists after = and !=', () => {
    assert.deepEqual(parseFilter("state=['QUEUED','RUNNING']"), cmp('state', '=', ['QUEUED', 'RUNNING']));
    assert.deepEqual(parseFilter('state != [ \'A\' , "B" ,3, null, true ]'), cmp('state', '!=', ['A', 'B', 3, null, true]));
  });

  test('nested attributes and names with - and _', () => {
    assert.deepEqual(parseFilter("target-resource/href='deployment/1'"), cmp('target-resource/href', '=', 'deployment/1'));
    assert.deepEqual(parseFilter('a_b/c-d/e2=1'), cmp('a_b/c-d/e2', '=', 1));
  });

  test('and binds tighter than or; chains nest to the left; parentheses override', () => {
    const [a, b, c] = [cmp('a', '=', 1), cmp('b', '=', 2), cmp('c', '=', 3)];
    assert.deepEqual(parseFilter('a=1 or b=2 and c=3'), or(a, and(b, c)));
    assert.deepEqual(parseFilter('a=1 and b=2 or c=3'), or(and(a, b), c));
    assert.deepEqual(parseFilter('(a=1 or b=2) and c=3'), and(or(a, b), c));
    assert.deepEqual(parseFilter('a=1 and b=2 and c=3'), and(and(a, b), c));
    assert.deepEqual(parseFilter('a=1 or (b=2 or c=3)'), or(a, or(b, c)));
    assert.deepEqual(parseFilter('((a=1))'), a);
    assert.deepEqual(parseFilter('a=1 AND b=2 Or c=3'), or(and(a, b), c));
  });

  test('whitespace is free, and optional next to quotes and parentheses', () => {
    const expected = and(cmp('a', '=', 'x'), cmp('b', '>', 1));
    assert.deepEqual(parseFilter("  a = 'x'   and\n\t( b >1 )  "), expected);
    assert.deepEqual(parseFilter("a='x'and(b>1)"), expected);
  });

  test('syntax errors name the problem and its 0-based position', () => {
    syntaxErrorAt("state='x' and a= and b=1", 17, /expected a value after '=' but found 'and'$/);
    syntaxErrorAt('priority=', 9, /expected a value after '=' but found the end of the filter/);
    syntaxErrorAt("state='QUEUED", 6, /unterminated string/);
    syntaxErrorAt("(state='x' or a=1", 17, /expected 'and', 'or' or '\)' to close the '\(' at position 0/);
    syntaxErrorAt("state='x')", 9, /found '\)' without a matching '\('/);
    syntaxErrorAt("state='x' action='y'", 10, /expected 'and', 'or' or the end of the filter but found 'action'/);
    syntaxErrorAt('state=QUEUED', 6, /found 'QUEUED' \(strings need quotes: 'QUEUED'\)/);
    syntaxErrorAt("a='x' and", 9, /expected an attribute or '\(' but found the end of the filter/);
    syntaxErrorAt("a='x' and or b=1", 10, /expected an attribute or '\(' but found 'or'/);
    syntaxErrorAt('a=1 or ()', 8, /expected an attribute or '\(' but found '\)'/);
    syntaxErrorAt("a=['x',]", 7, /expected a value in the list at position 2 but found '\]'/);
    syntaxErrorAt("a=['x' 'y']", 7, /expected ',' or '\]' to close the list/);
    syntaxErrorAt('a=[]', 2, /the list is empty/);
    syntaxErrorAt("a=1 and b='x' # c", 14, /unexpected character '#'/);
    syntaxErrorAt('target-resource//href=1', 16, /empty name in attribute/);
    syntaxErrorAt("'x'=a", 0, /expected an attribute or '\(' but found ''x''/);
    syntaxErrorAt('a=1 && b=2', 4, /found '&&' \(did you mean 'and'\?\)/);
    syntaxErrorAt('a', 1, /expected an operator .* after 'a' but found the end of the filter/);
    syntaxErrorAt(`${'('.repeat(65)}a=1${')'.repeat(65)}`, 64, /parentheses nest deeper than 64/);
  });

  test('unsupported operators are named, with the likely intended one', () => {
    syntaxErrorAt("a~'x'", 1, /unsupported operator '~' after 'a'; the operators are = != < > <= >= \^=$/);
    syntaxErrorAt("name=='x'", 4, /unsupported operator '==' after 'name' \(did you mean '='\?\)/);
    syntaxErrorAt('priority<>1', 8, /unsupported operator '<>' .*did you mean '!='/);
    syntaxErrorAt('priority=<1', 8, /unsupported operator '=<' .*did you mean '<='/);
    syntaxErrorAt("name contains 'x'", 5, /unsupported operator 'contains' after 'name'/);
    syntaxErrorAt("name like 'x%'", 5, /unsupported operator 'like'/);
    syntaxErrorAt("a=~'x'", 1, /unsupported operator '=~'/);
  });

  test('operators restrict their values', () => {
    syntaxErrorAt('action^=5', 8, /'\^=' needs a quoted string but found '5'/);
    syntaxErrorAt('action^=null', 8, /'\^=' needs a quoted string/);
    syntaxErrorAt("state<['A','B']", 6, /a list is only allowed after '=' or '!=', not after '<'/);
    syntaxErrorAt("state^=['A']", 7, /a list is only allowed/);
    syntaxErrorAt('priority<null', 9, /'<' needs a string, a number or a date, not null/);
    syntaxErrorAt('flag>=true', 6, /'>=' needs a string, a number or a date, not true/);
  });

  test('an empty filter is an error when parsed, absent when optional', () => {
    syntaxErrorAt('', 0, /the filter is empty/);
    syntaxErrorAt('   ', 0, /the filter is empty/);
    assert.equal(parseOptionalFilter(undefined), undefined);
    assert.equal(parseOptionalFilter(''), undefined);
    assert.equal(parseOptionalFilter(' \t '), undefined);
    assert.deepEqual(parseOptionalFilter('a=1'), cmp('a', '=', 1));
    assert.throws(() => parseOptionalFilter('a=='), ApiError);
  });
});

describe('parseOrderBy and parseSelect', () => {
  test('orderby: attributes with optional directions, ascending by default', () => {
    assert.deepEqual(parseOrderBy('created:desc,priority:asc,id'), [
      { attribute: ['created'], direction: 'desc' },
      { attribute: ['priority'], direction: 'asc' },
      { attribute: ['id'], direction: 'asc' },
    ]);
    assert.deepEqual(parseOrderBy(' target-resource/href : DESC '), [{ attribute: ['target-resource', 'href'], direction: 'desc' }]);
    assert.deepEqual(parseOrderBy(undefined), []);
    assert.deepEqual(parseOrderBy(''), []);
  });

  test('orderby: bad directions and names are rejected by name', () => {
    const error = rejects(() => parseOrderBy('created:up'), /orderby direction 'up' for created is not asc or desc/);
    assert.deepEqual(error.details, { orderby: 'created:up' });
    rejects(() => parseOrderBy('created:desc:asc'), /direction 'desc:asc'/);
    rejects(() => parseOrderBy('created,,id'), /orderby has an empty attribute name/);
    rejects(() => parseOrderBy('created;drop table jobs'), /orderby attribute 'created;drop table jobs' is not a name/);
    rejects(() => parseOrderBy('a//b'), /is not a name/);
  });

  test('select: attribute names in order, without repeats', () => {
    assert.deepEqual(parseSelect('id, state,target-resource/href,id'), ['id', 'state', 'target-resource/href']);
    assert.equal(parseSelect(undefined), undefined);
    assert.equal(parseSelect('  '), undefined);
    rejects(() => parseSelect('id,,state'), /select has an empty attribute name/);
    rejects(() => parseSelect('id,*'), /select attribute '\*' is not a name/);
  });
});

describe('compileFilter', () => {
  test('column comparisons, identical in both dialects', () => {
    for (const dialect of [SQLITE, POSTGRES]) {
      assert.deepEqual(compile("state='QUEUED'", dialect), { sql: 'state = ?', params: ['QUEUED'] });
      assert.deepEqual(compile('priority<=50', dialect), { sql: 'priority <= ?', params: [50] });
      assert.deepEqual(compile('priority>-1.5', dialect), { sql: 'priority > ?', params: [-1.5] });
      assert.deepEqual(compile("state!='QUEUED'", dialect), { sql: '(state IS NULL OR state <> ?)', params: ['QUEUED'] });
      assert.deepEqual(compile("state=['QUEUED','RUNNING','QUEUED']", dialect), {
        sql: 'state IN (?, ?)',
        params: ['QUEUED', 'RUNNING'],
      });
      assert.deepEqual(compile("state!=['SUCCESS','FAILED']", dialect), {
        sql: '(state IS NULL OR state NOT IN (?, ?))',
        params: ['SUCCESS', 'FAILED'],
      });
      assert.deepEqual(compile('target-resource/href=null', dialect), { sql: 'target_href IS NULL', params: [] });
      assert.deepEqual(compile('target-resource/href!=null', dialect), { sql: 'target_href IS NOT NULL', params: [] });
      assert.deepEqual(compile("state=['A',null]", dialect), { sql: '(state = ? OR state IS NULL)', params: ['A'] });
      assert.deepEqual(compile("state!=['A',null]", dialect), {
        sql: '((state IS NULL OR state <> ?) AND state IS NOT NULL)',
        params: ['A'],
      });
    }
  });

  test('and/or keep their grouping, and long chains are flattened', () => {
    assert.deepEqual(compile("state='A' or state='B' and (priority<5 or priority>9)", SQLITE), {
      sql: '(state = ? OR (state = ? AND (priority < ? OR priority > ?)))',
      params: ['A', 'B', 5, 9],
    });
    assert.deepEqual(compile('priority=1 and priority=2 and priority=3', POSTGRES), {
      sql: '(priority = ? AND priority = ? AND priority = ?)',
      params: [1, 2, 3],
    });
    // Built by hand: the parser refuses a filter this long (FILTER_LIMITS), the compiler must not overflow on it.
    let long = cmp('priority', '=', 0);
    for (let i = 1; i < 20_000; i++) long = or(long, cmp('priority', '=', i));
    const fragment = compileFilter(long, SQLITE);
    assert.equal(fragment.params.length, 20_000);
    assert.deepEqual(fragment.params.slice(0, 3), [0, 1, 2]);
  });

  test('prefix match treats % and _ as ordinary characters', () => {
    assert.deepEqual(compile("action^='100%_d\\\\'", SQLITE), {
      sql: 'substr(action, 1, length(?)) = ?',
      params: ['100%_d\\', '100%_d\\'],
    });
    assert.deepEqual(compile("action^='100%_d\\\\'", POSTGRES), {
      sql: "action LIKE ? ESCAPE '\\'",
      params: ['100\\%\\_d\\\\%'],
    });
  });

  // The values of a JSON attribute: the elements of its list, or its one value (see document-sql.ts).
  const each = (json: string, alias: string, guard = ''): string =>
    `json_each(CASE ${guard}WHEN json_type(${json}, ?) = 'array' THEN ${json} -> ? ELSE json_array(${json} -> ?) END) AS ${alias}`;
  const E1 = each('doc', 'e1');
  const E2 = each('e1.value', 'e2', "WHEN e1.type <> 'object' THEN NULL ");
  const key = (name: string): string[] => [`$."${name}"`, `$."${name}"`, `$."${name}"`];
  const sqliteAny = (where: string, from = E1): string => `EXISTS (SELECT 1 FROM ${from} WHERE ${where})`;
  const SQLITE_NUMBER = "CASE WHEN e1.type IN ('integer', 'real') THEN e1.value END";
  const PG_VALUES = 'jsonb_path_query(doc, ?::jsonpath) AS e(v)';
  const pgAny = (where: string): string => `EXISTS (SELECT 1 FROM ${PG_VALUES} WHERE ${where})`;
  const PG_NUMERIC = `'^-{0,1}[0-9]+([.][0-9]+){0,1}([eE][-+]{0,1}[0-9]+){0,1}$'`;
  const PG_NUMBER = `CASE WHEN (e.v #>> '{}') ~ ${PG_NUMERIC} THEN (e.v #>> '{}')::numeric END`;

  test('JSON attributes: sqlite lists their values with json_each and compares each', () => {
    assert.deepEqual(compile("parent-job='job/1'", SQLITE), { sql: sqliteAny('e1.value = ?'), params: [...key('parent-job'), 'job/1'] });
    assert.deepEqual(compile("a!='x'", SQLITE), { sql: `NOT ${sqliteAny('e1.value = ?')}`, params: [...key('a'), 'x'] });
    assert.deepEqual(compile("tags=['a','b']", SQLITE), { sql: sqliteAny('e1.value IN (?, ?)'), params: [...key('tags'), 'a', 'b'] });
    assert.deepEqual(compile("tags!=['a','b']", SQLITE), {
      sql: `NOT ${sqliteAny('e1.value IN (?, ?)')}`,
      params: [...key('tags'), 'a', 'b'],
    });
    assert.deepEqual(compile('progress>=50', SQLITE), { sql: sqliteAny(`${SQLITE_NUMBER} >= ?`), params: [...key('progress'), 50] });
    assert.deepEqual(compile('flag=true', SQLITE), { sql: sqliteAny('e1.type = ?'), params: [...key('flag'), 'true'] });
    assert.deepEqual(compile("tags^='urg'", SQLITE), {
      sql: sqliteAny('substr(e1.value, 1, length(?)) = ?'),
      params: [...key('tags'), 'urg', 'urg'],
    });
    // Mixed types share one EXISTS, each type reading the element its own way.
    assert.deepEqual(compile("tags=['a',1]", SQLITE), {
      sql: sqliteAny(`(e1.value = ? OR ${SQLITE_NUMBER} = ?)`),
      params: [...key('tags'), 'a', 1],
    });
    // null: no value but JSON null (missing, null, or an empty list).
    assert.deepEqual(compile('tags=null', SQLITE), { sql: `NOT ${sqliteAny("e1.type <> 'null'")}`, params: key('tags') });
    assert.deepEqual(compile('tags!=null', SQLITE), { sql: sqliteAny("e1.type <> 'null'"), params: key('tags') });
    assert.deepEqual(compile("tags!=['a',null]", SQLITE), {
      sql: `(NOT ${sqliteAny('e1.value = ?')} AND ${sqliteAny("e1.type <> 'null'")})`,
      params: [...key('tags'), 'a', ...key('tags')],
    });
    // One json_each per segment, so that a list of objects contributes the key of each.
    assert.deepEqual(compile("affected-resources/href='deployment/1'", SQLITE), {
      sql: sqliteAny('e2.value = ?', `${E1}, ${E2}`),
      params: [...key('affected-resources'), ...key('href'), 'deployment/1'],
    });
    assert.deepEqual(compile('a/b-c=null', SQLITE), {
      sql: `NOT ${sqliteAny("e2.type <> 'null'", `${E1}, ${E2}`)}`,
      params: [...key('a'), ...key('b-c')],
    });
    const quoted = compileFilter(cmp('we"ird/x', '=', 1), SQLITE);
    assert.deepEqual(quoted.params.slice(0, 4), ['$."we\\"ird"', '$."we\\"ird"', '$."we\\"ird"', '$."x"']);
  });

  test('JSON attributes: postgres lists their values with a lax path query and compares each', () => {
    assert.deepEqual(compile("target-resource/id='x'", POSTGRES), {
      sql: pgAny("(e.v #>> '{}') = ?"),
      params: ['$."target-resource"[*]."id"[*]', 'x'],
    });
    assert.deepEqual(compile("a!=['x','y']", POSTGRES), {
      sql: `NOT ${pgAny("(e.v #>> '{}') IN (?, ?)")}`,
      params: ['$."a"[*]', 'x', 'y'],
    });
    assert.deepEqual(compile('flag!=false', POSTGRES), { sql: `NOT ${pgAny('e.v::text = ?')}`, params: ['$."flag"[*]', 'false'] });
    assert.deepEqual(compile("tags^='100%_'", POSTGRES), {
      sql: pgAny("(e.v #>> '{}') LIKE ? ESCAPE '\\'"),
      params: ['$."tags"[*]', '100\\%\\_%'],
    });
    assert.deepEqual(compile("tags=['a',1,null]", POSTGRES), {
      sql: `(${pgAny(`((e.v #>> '{}') = ? OR ${PG_NUMBER} = ?)`)} OR NOT ${pgAny("jsonb_typeof(e.v) <> 'null'")})`,
      params: ['$."tags"[*]', 'a', 1, '$."tags"[*]'],
    });
    assert.deepEqual(compile('tags!=null', POSTGRES), { sql: pgAny("jsonb_typeof(e.v) <> 'null'"), params: ['$."tags"[*]'] });
    assert.deepEqual(compileFilter(cmp('we"ird/x', '=', 1), POSTGRES).params[0], '$."we\\"ird"[*]."x"[*]');
    const { sql, params } = compile('progress<50.5', POSTGRES);
    const guard =
      /^EXISTS \(SELECT 1 FROM jsonb_path_query\(doc, \?::jsonpath\) AS e\(v\) WHERE CASE WHEN \(e\.v #>> '\{\}'\) ~ '([^']+)' THEN \(e\.v #>> '\{\}'\)::numeric END < \?\)$/.exec(
        sql,
      );
    assert.ok(guard, sql);
    assert.deepEqual(params, ['$."progress"[*]', 50.5]);
    // The guard must accept what ::numeric accepts and refuse what would make it fail.
    const pattern = new RegExp(guard[1] ?? '');
    for (const text of ['5', '-5', '0.25', '1e5', '-2.5E-3']) assert.ok(pattern.test(text), text);
    for (const text of ['', 'abc', '5.', '.5', '1,5', '5 ', 'NaN', 'true']) assert.ok(!pattern.test(text), text);
  });

  test('toNumberedPlaceholders numbers each ? and leaves quoted ones alone', () => {
    assert.equal(toNumberedPlaceholders('a = ? AND b IN (?, ?)'), 'a = $1 AND b IN ($2, $3)');
    assert.equal(toNumberedPlaceholders('x = ? AND y = \'?\' AND "q?" = ?', 4), 'x = $4 AND y = \'?\' AND "q?" = $5');
    assert.equal(toNumberedPlaceholders("x LIKE ? ESCAPE '\\' AND y = ?"), "x LIKE $1 ESCAPE '\\' AND y = $2");
    const { sql } = compile("state='A' and progress>1 and flag=true and a^='b' and tags!=null", POSTGRES);
    assert.equal(toNumberedPlaceholders(sql).match(/\$\d+/g)?.join(','), '$1,$2,$3,$4,$5,$6,$7,$8');
  });

  test('date columns take ISO-8601 dates, normalised to toISOString()', () => {
    const date = (literal: string): unknown => compile(`created>=${literal}`, SQLITE).params[0];
    assert.equal(date("'2026-11-01'"), '2026-11-01T00:00:00.000Z');
    assert.equal(date('2026-11-01'), '2026-11-01T00:00:00.000Z');
    assert.equal(date("'2026-11-01T10:00:00Z'"), '2026-11-01T10:00:00.000Z');
    assert.equal(date("'2026-11-01T10:00Z'"), '2026-11-01T10:00:00.000Z');
    assert.equal(date("'2026-11-01T10:00:00'"), '2026-11-01T10:00:00.000Z');
    assert.equal(date("'2026-11-01T10:00:00.5Z'"), '2026-11-01T10:00:00.500Z');
    assert.equal(date("'2026-11-01T10:00:00.123456Z'"), '2026-11-01T10:00:00.123Z');
    assert.equal(date("'2026-11-01T10:00:00+02:00'"), '2026-11-01T08:00:00.000Z');
    assert.equal(date("'2026-11-01T01:00:00.250-0130'"), '2026-11-01T02:30:00.250Z');
    assert.equal(date("'2024-02-29'"), '2024-02-29T00:00:00.000Z');
    assert.deepEqual(compile("created=['2026-11-01','now']", POSTGRES).params, ['2026-11-01T00:00:00.000Z', NOW.toISOString()]);
  });

  test('date math is computed from the given clock, in every Elasticsearch unit', () => {
    const math = (expression: string, now = NOW): unknown =>
      compileFilter(parseFilter(`created<'${expression}'`), { ...SQLITE, now }).params[0];
    assert.equal(math('now'), '2026-11-10T12:00:00.000Z');
    assert.equal(math('now-7d'), '2026-11-03T12:00:00.000Z');
    assert.equal(math('now+1h'), '2026-11-10T13:00:00.000Z');
    assert.equal(math('now-2H'), '2026-11-10T10:00:00.000Z');
    assert.equal(math('now-30m'), '2026-11-10T11:30:00.000Z');
    assert.equal(math('now-10s'), '2026-11-10T11:59:50.000Z');
    assert.equal(math('now-2w'), '2026-10-27T12:00:00.000Z');
    assert.equal(math('now-1M'), '2026-10-10T12:00:00.000Z');
    assert.equal(math('now-1y'), '2025-11-10T12:00:00.000Z');
    assert.equal(math('now-1d+6h'), '2026-11-09T18:00:00.000Z');
    // Calendar months clamp to the month's last day, as Elasticsearch does.
    assert.equal(math('now-1M', new Date('2026-03-31T00:00:00Z')), '2026-02-28T00:00:00.000Z');
    assert.equal(math('now+1y', new Date('2024-02-29T00:00:00Z')), '2025-02-28T00:00:00.000Z');
  });

  test('a date column refuses what is not a date, naming attribute and value', () => {
    for (const literal of ["'yesterday'", "'2026-13-01'", "'2026-02-30'", "'2026-11-01T25:00:00Z'", "'now-7x'", "'now/d'", "'Now'", '5']) {
      const error = rejects(() => compile(`created<${literal}`, SQLITE), /^created is a date; .* is not \(use ISO-8601/);
      assert.equal(error.details?.['attribute'], 'created');
    }
    rejects(() => compile("created<'yesterday'", POSTGRES), /created is a date; 'yesterday' is not/);
    rejects(() => compile('created=true', POSTGRES), /created is a date; true is not/);
    rejects(() => compile("created^='2026'", SQLITE), /'\^=' needs a text attribute; created is a date/);
  });

  test('JSON attributes compute date math for orderings only', () => {
    const value = (filter: string, dialect: CompileOptions): unknown => compile(filter, dialect).params.at(-1);
    assert.equal(value("expiry<'now-1h'", SQLITE), '2026-11-10T11:00:00.000Z');
    assert.deepEqual(compile("expiry>='now'", POSTGRES).params, ['$."expiry"[*]', NOW.toISOString()]);
    assert.equal(value("status='now'", SQLITE), 'now');
    assert.equal(value("word<'nowhere'", POSTGRES), 'nowhere');
  });

  test('number columns refuse strings that are not numbers', () => {
    const error = rejects(() => compile("priority<'abc'", SQLITE), /^priority is a number; 'abc' is not$/);
    assert.deepEqual(error.details, { attribute: 'priority', value: 'abc' });
    rejects(() => compile('priority=true', POSTGRES), /priority is a number; true is not/);
    rejects(() => compile("priority=[1,'x']", POSTGRES), /priority is a number; 'x' is not/);
    rejects(() => compile("priority^='1'", POSTGRES), /'\^=' needs a text attribute; priority is a number/);
    assert.deepEqual(compile("priority<'50'", SQLITE), { sql: 'priority < ?', params: [50] });
    assert.deepEqual(compile('state=5', POSTGRES), { sql: 'state = ?', params: ['5'] });
  });

  test('a hand-built AST gets the same checks as a parsed one', () => {
    rejects(() => compileFilter(cmp('state', '<', ['A']), SQLITE), /a list of values for state needs '=' or '!='/);
    rejects(() => compileFilter(cmp('state', '=', []), SQLITE), /the list of values for state is empty/);
    rejects(() => compileFilter(cmp('state', '<', null), SQLITE), /'<' on state needs a string, a number or a date, not null/);
    rejects(() => compileFilter(cmp('a', '^=', 5), SQLITE), /'\^=' on a needs a string, not 5/);
    rejects(() => compileFilter(cmp('', '=', 5), SQLITE), /invalid attribute/);
  });
});

describe('compileOrderBy', () => {
  test('columns and JSON attributes (inlined and quoted) sort missing values last, id last as a tiebreak', () => {
    const orderBy = parseOrderBy('created:desc,target-resource/href,progress:desc');
    assert.equal(
      compileOrderBy(orderBy, SQLITE),
      `ORDER BY created DESC NULLS LAST, target_href ASC NULLS LAST, json_extract(doc, '$."progress"') DESC NULLS LAST, id ASC`,
    );
    const text = `(doc #>> '{"progress"}')`;
    assert.equal(
      compileOrderBy(orderBy, POSTGRES),
      `ORDER BY created DESC NULLS LAST, target_href ASC NULLS LAST, CASE WHEN ${text} ~ '^-{0,1}[0-9]+([.][0-9]+){0,1}([eE][-+]{0,1}[0-9]+){0,1}$' ` +
        `THEN ${text}::numeric END DESC NULLS LAST, ${text} DESC NULLS LAST, id ASC`,
    );
    assert.equal(compileOrderBy(parseOrderBy('a/b-c'), POSTGRES).includes(`(doc #>> '{"a","b-c"}')`), true);
  });

  test('the tiebreak is not repeated, and follows a qualified document column', () => {
    assert.equal(compileOrderBy([], SQLITE), 'ORDER BY id ASC');
    assert.equal(compileOrderBy(parseOrderBy('id:desc'), SQLITE), 'ORDER BY id DESC NULLS LAST');
    assert.equal(compileOrderBy(parseOrderBy('priority,id'), POSTGRES), 'ORDER BY priority ASC NULLS LAST, id ASC NULLS LAST');
    assert.equal(
      compileOrderBy(parseOrderBy('x'), { ...SQLITE, columns: {}, documentColumn: 'j.doc' }),
      `ORDER BY json_extract(j.doc, '$."x"') ASC NULLS LAST, j.id ASC`,
    );
  });

  test('names that cannot be inlined safely are refused', () => {
    rejects(() => compileOrderBy([{ attribute: ["x') --"], direction: 'asc' }], SQLITE), /cannot order by 'x'\) --'/);
    rejects(() => compileOrderBy([{ attribute: ['a', ''], direction: 'asc' }], POSTGRES), /cannot order by/);
  });
});

// --- the SQLite SQL against a real database -------------------------------------------------------

interface Row {
  id: string;
  state: string;
  action: string;
  priority: number;
  created: string;
  href: string | null;
  doc: Record<string, unknown>;
}
const ROWS: Row[] = [
  {
    id: 'j01',
    state: 'QUEUED',
    action: 'start_deployment',
    priority: 10,
    created: '2026-11-10T11:00:00.000Z',
    href: 'deployment/1',
    doc: {
      progress: 0,
      expiry: '2026-11-11T00:00:00.000Z',
      flag: true,
      note: '100%_done',
      tags: ['urgent', 'x'],
      'affected-resources': [{ href: 'deployment/1' }, { href: 'credential/1' }],
    },
  },
  {
    id: 'j02',
    state: 'RUNNING',
    action: 'stop_deployment',
    priority: 50,
    created: '2026-11-09T12:00:00.000Z',
    href: 'deployment/2',
    doc: { progress: 40, flag: false, 'parent-job': 'job/j01', note: '100x done', tags: ['x'], 'nested-jobs': ['job/j05'] },
  },
  {
    id: 'j03',
    state: 'SUCCESS',
    action: 'start_deployment',
    priority: 999,
    created: '2026-11-01T00:00:00.000Z',
    href: 'deployment/1',
    doc: { progress: 100, expiry: '2026-11-05T00:00:00.000Z', 'return-code': 0, tags: [], 'affected-resources': [] },
  },
  {
    id: 'j04',
    state: 'FAILED',
    action: 'update_nuvlabox',
    priority: 999,
    created: '2026-10-01T00:00:00.000Z',
    href: 'nuvlabox/9',
    doc: { progress: 100, 'return-code': 1, 'status-message': "it's broken", tags: ['y', null], scores: [1, 50] },
  },
  {
    id: 'j05',
    state: 'CANCELED',
    action: 'stop_deployment',
    priority: 20,
    created: '2026-11-10T11:59:00.000Z',
    href: 'deployment/3',
    doc: { progress: 5, 'parent-job': 'job/j02', scores: 20, 'affected-resources': { href: 'deployment/3' } },
  },
  {
    id: 'j06',
    state: 'QUEUED',
    action: "it's_odd",
    priority: 5,
    created: '2025-11-10T00:00:00.000Z',
    href: null,
    doc: {
      progress: 'n/a',
      'target-resource': { kind: 'x' },
      tags: null,
      'affected-resources': [{ href: ['nuvlabox/1', 'nuvlabox/2'] }, 'nuvlabox/3'],
    },
  },
  {
    id: 'j07',
    state: 'RUNNING',
    action: 'Start_Deployment',
    priority: 30,
    created: '2026-11-08T00:00:00.000Z',
    href: 'deployment/7',
    doc: { progress: 9, flag: 'true', flags: [true, 'false'] },
  },
  {
    id: 'j08',
    state: 'RUNNING',
    action: 'start_deployment',
    priority: 30,
    created: '2026-11-08T00:00:00.000Z',
    href: 'deployment/8',
    doc: { progress: 10, flag: null, tags: ['X'] },
  },
  {
    id: 'j09',
    state: 'SUCCESS',
    action: 'start_infrastructure',
    priority: 999,
    created: '2026-11-02T00:00:00.000Z',
    href: 'infrastructure/1',
    doc: { progress: 100.0, 'return-code': 0, expiry: '2026-11-09T00:00:00.000Z' },
  },
  {
    id: 'j10',
    state: 'QUEUED',
    action: 'start_deployment',
    priority: 999,
    created: '2026-11-10T12:00:00.000Z',
    href: 'deployment/10',
    doc: { progress: 0 },
  },
];

describe('compiled SQL on SQLite', () => {
  function withDatabase(run: (ids: (filter: string, orderby?: string) => string[]) => void): void {
    const db = new Sqlite(':memory:');
    try {
      db.exec(
        'CREATE TABLE jobs(id text primary key, state text, action text, priority integer, created text, target_href text, doc text)',
      );
      const insert = db.prepare('INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?, ?)');
      for (const row of ROWS) {
        insert.run(row.id, row.state, row.action, row.priority, row.created, row.href, JSON.stringify({ id: row.id, ...row.doc }));
      }
      run((filter, orderby) => {
        const where = compile(filter, SQLITE);
        const order = compileOrderBy(parseOrderBy(orderby), SQLITE);
        return db
          .prepare(`SELECT id FROM jobs WHERE ${where.sql} ${order}`)
          .all(...where.params)
          .map((row) => (row as { id: string }).id);
      });
    } finally {
      db.close();
    }
  }

  test('the SQLite of better-sqlite3 has what the SQL uses: NULLS LAST (3.30) and -> (3.38)', () => {
    const db = new Sqlite(':memory:');
    try {
      const version = db.prepare<[], { v: string }>('SELECT sqlite_version() AS v').get()?.v ?? '';
      const [major = 0, minor = 0] = version.split('.').map(Number);
      assert.ok(major > 3 || (major === 3 && minor >= 38), `SQLite ${version}`);
    } finally {
      db.close();
    }
  });

  test('filters select exactly the expected rows', () => {
    withDatabase((ids) => {
      const cases: [string, string[]][] = [
        ["state='QUEUED'", ['j01', 'j06', 'j10']],
        ["state=['QUEUED','RUNNING'] and priority<30", ['j01', 'j06']],
        ["state!=['QUEUED','RUNNING']", ['j03', 'j04', 'j05', 'j09']],
        ["action='x' or priority<=10 and state!='QUEUED'", []],
        ["(action='stop_deployment' or priority<=10) and state!='QUEUED'", ['j02', 'j05']],
        ["action^='start_'", ['j01', 'j03', 'j08', 'j09', 'j10']],
        ["action^='it\\'s'", ['j06']],
        ["note^='100%'", ['j01']],
        ["note^='100%_'", ['j01']],
        ["target-resource/href^='deployment/1'", ['j01', 'j03', 'j10']],
        ['target-resource/href=null', ['j06']],
        ["target-resource/href!='deployment/1'", ['j02', 'j04', 'j05', 'j06', 'j07', 'j08', 'j09', 'j10']],
        ["created<'now-7d'", ['j03', 'j04', 'j06', 'j09']],
        ["created>='now-1h'", ['j01', 'j05', 'j10']],
        ["created>'2026-11-08T00:00:00Z' and created<'2026-11-10'", ['j02']],
        ['created=2026-11-08', ['j07', 'j08']],
        ["expiry<'now'", ['j03', 'j09']],
        ['progress>=40', ['j02', 'j03', 'j04', 'j09']],
        ['progress<10', ['j01', 'j05', 'j07', 'j10']],
        ['progress!=100', ['j01', 'j02', 'j05', 'j06', 'j07', 'j08', 'j10']],
        ["progress='n/a'", ['j06']],
        ['flag=true', ['j01']],
        // Typed in SQLite; PostgreSQL's #>> reads the boolean as 'true' and matches j01 as well.
        ["flag='true'", ['j07']],
        ['flag!=true', ['j02', 'j03', 'j04', 'j05', 'j06', 'j07', 'j08', 'j09', 'j10']],
        ['flag=null', ['j03', 'j04', 'j05', 'j06', 'j08', 'j09', 'j10']],
        ['parent-job!=null', ['j02', 'j05']],
        ["parent-job!='job/j01'", ['j01', 'j03', 'j04', 'j05', 'j06', 'j07', 'j08', 'j09', 'j10']],
        ['return-code=[0,1]', ['j03', 'j04', 'j09']],
        ['status-message="it\'s broken"', ['j04']],
        ["target-resource/kind='x'", ['j06']],
        ["priority='999' and return-code!=1", ['j03', 'j09', 'j10']],
      ];
      for (const [filter, expected] of cases) assert.deepEqual(ids(filter), expected, filter);
    });
  });

  test('attributes holding lists match per element, as in Elasticsearch; paths run through lists of objects', () => {
    withDatabase((ids) => {
      const cases: [string, string[]][] = [
        ["tags='x'", ['j01', 'j02']],
        ["tags='urgent'", ['j01']],
        ["tags='X'", ['j08']],
        ["tags!='x'", ['j03', 'j04', 'j05', 'j06', 'j07', 'j08', 'j09', 'j10']],
        ["tags=['urgent','y']", ['j01', 'j04']],
        ["tags!=['x','y']", ['j03', 'j05', 'j06', 'j07', 'j08', 'j09', 'j10']],
        ["tags^='urg'", ['j01']],
        ["tags>'x'", ['j04']],
        // Missing, null, an empty list: no value; a list holding a null and a string has one.
        ['tags=null', ['j03', 'j05', 'j06', 'j07', 'j09', 'j10']],
        ['tags!=null', ['j01', 'j02', 'j04', 'j08']],
        ["tags=['x',null]", ['j01', 'j02', 'j03', 'j05', 'j06', 'j07', 'j09', 'j10']],
        ["tags!=['x',null]", ['j04', 'j08']],
        ["nested-jobs='job/j05'", ['j02']],
        ["affected-resources/href='deployment/1'", ['j01']],
        ["affected-resources/href='deployment/3'", ['j05']],
        ["affected-resources/href^='nuvlabox/'", ['j06']],
        ["affected-resources/href=['credential/1','nuvlabox/2']", ['j01', 'j06']],
        ["affected-resources/href!='deployment/1'", ['j02', 'j03', 'j04', 'j05', 'j06', 'j07', 'j08', 'j09', 'j10']],
        ['affected-resources/href=null', ['j02', 'j03', 'j04', 'j07', 'j08', 'j09', 'j10']],
        ['affected-resources!=null', ['j01', 'j05', 'j06']],
        // Each comparison asks for any element: 1 is below 10 and 50 above 40.
        ['scores<10 and scores>40', ['j04']],
        ['scores>=20 and scores<=20', ['j04', 'j05']],
        ['scores=20', ['j05']],
        ['scores!=1', ['j01', 'j02', 'j03', 'j05', 'j06', 'j07', 'j08', 'j09', 'j10']],
        ['flags=true', ['j07']],
        ['flags=false', []],
        ["flags='false'", ['j07']],
      ];
      for (const [filter, expected] of cases) assert.deepEqual(ids(filter), expected, filter);
    });
  });

  test('orderings run, with numbers numeric, missing values last and id breaking ties', () => {
    withDatabase((ids) => {
      assert.deepEqual(ids("state='RUNNING'", 'priority:desc'), ['j02', 'j07', 'j08']);
      assert.deepEqual(ids("state='RUNNING'", 'priority:desc,id:desc'), ['j02', 'j08', 'j07']);
      assert.deepEqual(ids('priority<=30', 'progress'), ['j01', 'j05', 'j07', 'j08', 'j06']);
      assert.deepEqual(ids('priority<=30', 'progress:desc'), ['j06', 'j08', 'j07', 'j05', 'j01']);
      assert.deepEqual(ids("created>='now-1h' or state='FAILED'", 'expiry:desc,created'), ['j01', 'j04', 'j05', 'j10']);
      // A column's NULL too sorts last both ways (SQLite's own order puts it first when ascending).
      assert.deepEqual(ids('priority<=30', 'target-resource/href'), ['j01', 'j05', 'j07', 'j08', 'j06']);
      assert.deepEqual(ids('priority<=30', 'target-resource/href:desc'), ['j08', 'j07', 'j05', 'j01', 'j06']);
    });
  });
});
