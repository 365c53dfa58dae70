/**
 * The SQL of one comparison, and how attributes read from the JSON document compare. These follow
 * Elasticsearch, on which Nuvla runs CIMI filters: an attribute's values are the elements of the list
 * it holds, or its one value otherwise, and a path through a list of objects collects the key from
 * each (`affected-resources/href`). `a='x'` (and `<`, `^=`, ...) matches when any value does;
 * `a!='x'` when none does, so also when `a` is missing; `a=null` when no value but JSON null is
 * there (missing, null or an empty list). A scalar is its own single value: for scalars all of this
 * is the plain comparison. Values travel as parameters; see sql.ts.
 */
import type { Comparison } from './ast.js';
import type { CompileOptions, SqlFragment } from './sql.js';

/** A filter value once the attribute it is compared with has decided its type. */
export type Literal =
  | { readonly type: 'text'; readonly value: string }
  | { readonly type: 'number'; readonly value: number }
  | { readonly type: 'boolean'; readonly value: boolean }
  | { readonly type: 'null' };

type ValueType = Exclude<Literal['type'], 'null'>;
type Dialect = CompileOptions['dialect'];

// A JSON value's text is only cast to numeric when it looks like a number: one stray string must
// not make the whole query fail. Written without `?` (see sql.ts) or backslashes.
export const NUMERIC_TEXT = `'^-{0,1}[0-9]+([.][0-9]+){0,1}([eE][-+]{0,1}[0-9]+){0,1}$'`;

/** The values of a JSON attribute as rows of a FROM clause. */
interface DocumentValues {
  readonly from: SqlFragment;
  /** A value as compared with a literal of the type. */
  readonly read: (type: ValueType) => string;
  /** True for a value that is not JSON null. */
  readonly present: string;
}

/**
 * A comparison of a JSON attribute with literals grouped by type: one EXISTS over its values for all
 * the non-null literals (NOT EXISTS for `!=`), and one for a null literal.
 */
export function compareDocument(
  path: readonly string[],
  op: Comparison,
  groups: ReadonlyMap<Literal['type'], readonly Literal[]>,
  options: CompileOptions,
): SqlFragment {
  const values = options.dialect === 'sqlite' ? sqliteValues(path, options.documentColumn) : postgresValues(path, options.documentColumn);
  const matches: SqlFragment[] = [];
  let withNull = false;
  for (const [type, literals] of groups) {
    if (type === 'null') withNull = true;
    else matches.push(condition({ sql: values.read(type), params: [] }, op === '!=' ? '=' : op, literals, options.dialect));
  }
  const parts: SqlFragment[] = [];
  if (matches.length > 0) parts.push(exists(values.from, join(matches, ' OR '), op !== '!='));
  if (withNull) parts.push(exists(values.from, { sql: values.present, params: [] }, op === '!='));
  return join(parts, op === '!=' ? ' AND ' : ' OR ');
}

function exists(from: SqlFragment, where: SqlFragment, holds: boolean): SqlFragment {
  return {
    sql: `${holds ? '' : 'NOT '}EXISTS (SELECT 1 FROM ${from.sql} WHERE ${where.sql})`,
    params: [...from.params, ...where.params],
  };
}

/**
 * One json_each per path segment (aliases e1, e2, ...), each over the list found there or over a
 * list of the one value found there; a segment after one that is not an object finds nothing.
 * `->` (SQLite 3.38) rather than json_extract, which would turn true into 1 in that list.
 */
function sqliteValues(path: readonly string[], doc: string): DocumentValues {
  const sources = path.map((_, index) => {
    const previous = `e${index}`;
    const json = index === 0 ? doc : `${previous}.value`;
    const guard = index === 0 ? '' : `WHEN ${previous}.type <> 'object' THEN NULL `;
    return `json_each(CASE ${guard}WHEN json_type(${json}, ?) = 'array' THEN ${json} -> ? ELSE json_array(${json} -> ?) END) AS e${index + 1}`;
  });
  const e = `e${path.length}`;
  return {
    from: {
      sql: sources.join(', '),
      params: path.flatMap((segment) => {
        const key = sqlitePath([segment]);
        return [key, key, key];
      }),
    },
    read: (type) => {
      switch (type) {
        case 'number':
          // Without the guard every string would sort above every number, so `a>5` would match 'x'.
          return `CASE WHEN ${e}.type IN ('integer', 'real') THEN ${e}.value END`;
        case 'boolean':
          return `${e}.type`;
        case 'text':
          return `${e}.value`;
      }
    },
    present: `${e}.type <> 'null'`,
  };
}

/** A path query in lax mode, where `[*]` lists an array's elements and takes any other value as itself. */
function postgresValues(path: readonly string[], doc: string): DocumentValues {
  const text = `(e.v #>> '{}')`;
  return {
    from: {
      sql: `jsonb_path_query(${doc}, ?::jsonpath) AS e(v)`,
      params: [`$${path.map((segment) => `.${JSON.stringify(segment)}[*]`).join('')}`],
    },
    read: (type) => {
      switch (type) {
        case 'number':
          return `CASE WHEN ${text} ~ ${NUMERIC_TEXT} THEN ${text}::numeric END`;
        case 'boolean':
          // The JSON text of the value itself, so the string "true" is not the boolean true.
          return 'e.v::text';
        case 'text':
          return text;
      }
    },
    present: `jsonb_typeof(e.v) <> 'null'`,
  };
}

/** `x op literals`; `=` and `!=` take several (IN), the others one. */
export function condition(x: SqlFragment, op: Comparison, literals: readonly Literal[], dialect: Dialect): SqlFragment {
  const values = literals.map(parameterOf);
  if (literals[0]?.type === 'null') return { sql: `${x.sql} IS ${op === '!=' ? 'NOT ' : ''}NULL`, params: x.params };
  const list = values.length === 1 ? '?' : `(${values.map(() => '?').join(', ')})`;
  switch (op) {
    case '=':
      return { sql: `${x.sql} ${values.length === 1 ? '=' : 'IN'} ${list}`, params: [...x.params, ...values] };
    case '!=':
      return {
        sql: `(${x.sql} IS NULL OR ${x.sql} ${values.length === 1 ? '<>' : 'NOT IN'} ${list})`,
        params: [...x.params, ...x.params, ...values],
      };
    case '^=': {
      const prefix = String(values[0]);
      // SQLite's LIKE ignores case, so it compares the leading characters instead; PostgreSQL's
      // LIKE is exact and can use an index.
      if (dialect === 'sqlite') {
        // length() counts characters as substr() does, which a JS string's length does not.
        return { sql: `substr(${x.sql}, 1, length(?)) = ?`, params: [...x.params, prefix, prefix] };
      }
      return { sql: `${x.sql} LIKE ? ESCAPE '\\'`, params: [...x.params, `${prefix.replace(/[\\%_]/g, '\\$&')}%`] };
    }
    default:
      return { sql: `${x.sql} ${op} ?`, params: [...x.params, ...values] };
  }
}

/** The bound value: SQLite binds no booleans, and json_each's type / jsonb's text spell them out anyway. */
function parameterOf(literal: Literal): string | number | null {
  switch (literal.type) {
    case 'null':
      return null;
    case 'boolean':
      return literal.value ? 'true' : 'false';
    default:
      return literal.value;
  }
}

/** SQLite's JSON path with every key quoted, so `-` and `/` in names need no thought. */
export function sqlitePath(path: readonly string[]): string {
  return `$${path.map((segment) => `."${segment.replace(/["\\]/g, '\\$&')}"`).join('')}`;
}

export function join(parts: readonly SqlFragment[], separator: string): SqlFragment {
  const [only] = parts;
  if (parts.length === 1 && only !== undefined) return only;
  return { sql: `(${parts.map((part) => part.sql).join(separator)})`, params: parts.flatMap((part) => part.params) };
}
