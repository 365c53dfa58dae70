/**
 * CIMI filters and orderings as SQL for the job stores (SQLite and PostgreSQL). Values always travel
 * as parameters (`?`; PostgreSQL's store renumbers them with toNumberedPlaceholders), so the SQL text
 * never holds a `?` of its own. Attributes the store keeps in columns are compared there; the others
 * are read from the JSON document (document-sql.ts), per element of the lists it holds. Semantics
 * follow Nuvla's Elasticsearch queries: `a!='x'` also matches documents without `a`, and missing
 * values sort last in either direction.
 */
import { badRequest } from '../errors.js';
import type { Comparison, FilterNode, FilterValue, OrderBy } from './ast.js';
import { resolveDate } from './dates.js';
import { NUMERIC_TEXT, compareDocument, condition, join, sqlitePath, type Literal } from './document-sql.js';

export interface SqlFragment {
  sql: string;
  params: unknown[];
}

export interface ColumnSpec {
  /** Trusted SQL, inserted as given (it may be qualified, e.g. `j.state`). */
  readonly column: string;
  /** Dates are ISO-8601 UTC text as `toISOString()` writes it, so they compare as text. */
  readonly type: 'text' | 'number' | 'date';
  /**
   * False for NOT NULL columns: their orderings then omit NULLS LAST, which would stop PostgreSQL
   * from reading an index backwards (it does not infer that the clause is moot).
   */
  readonly nullable?: boolean;
}

export interface CompileOptions {
  readonly dialect: 'sqlite' | 'postgres';
  /** Keyed by attribute path joined with '/', e.g. 'target-resource/href'. */
  readonly columns: Readonly<Record<string, ColumnSpec>>;
  /** Trusted SQL naming the JSON document column; its neighbour `id` is the tiebreak of orderings. */
  readonly documentColumn: string;
  /** The clock of date math such as `now-7d`. */
  readonly now: Date;
}

type CompareNode = Extract<FilterNode, { kind: 'compare' }>;

interface Target {
  readonly name: string;
  readonly path: readonly string[];
  readonly column: ColumnSpec | undefined;
}

const NUMBER_STRING = /^\s*-?\d+(?:\.\d+)?\s*$/;
const ORDER_SEGMENT = /^[A-Za-z0-9_-]+$/;

/**
 * The filter as a WHERE condition. The SQL is either a single comparison or parenthesised, so it can
 * be ANDed with the store's own conditions as it is.
 */
export function compileFilter(node: FilterNode, options: CompileOptions): SqlFragment {
  if (node.kind === 'compare') return compileCompare(node, options);
  // Long chains (`a=1 or a=2 or ...`) are flattened iteratively: recursing down a left-nested
  // chain of thousands of operands would exhaust the stack.
  const operands: FilterNode[] = [];
  const pending: FilterNode[] = [node];
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (next.kind === node.kind) pending.push(next.right, next.left);
    else operands.push(next);
  }
  return join(
    operands.map((operand) => compileFilter(operand, options)),
    node.kind === 'and' ? ' AND ' : ' OR ',
  );
}

function compileCompare(node: CompareNode, options: CompileOptions): SqlFragment {
  const name = node.attribute.join('/');
  if (node.attribute.length === 0 || node.attribute.includes('')) throw badRequest(`invalid attribute '${name}'`);
  const target: Target = { name, path: node.attribute, column: options.columns[name] };
  const values: readonly FilterValue[] = isList(node.value) ? node.value : [node.value];
  if (isList(node.value) && node.op !== '=' && node.op !== '!=') {
    throw badRequest(`a list of values for ${name} needs '=' or '!=', not '${node.op}'`, { attribute: name });
  }
  if (values.length === 0) throw badRequest(`the list of values for ${name} is empty`, { attribute: name });

  // Values of one type share one condition (`IN (...)`); a list mixing types ORs (for `=`) or ANDs
  // (for `!=`) one condition per type, since each type reads a JSON value differently.
  const groups = new Map<Literal['type'], Literal[]>();
  for (const value of values) {
    const literal = toLiteral(target, node.op, value, options.now);
    const group = groups.get(literal.type);
    if (group === undefined) groups.set(literal.type, [literal]);
    else if (!group.some((known) => sameLiteral(known, literal))) group.push(literal);
  }
  const { column } = target;
  if (column === undefined) return compareDocument(target.path, node.op, groups, options);
  const conditions = [...groups.values()].map((literals) =>
    condition({ sql: column.column, params: [] }, node.op, literals, options.dialect),
  );
  return join(conditions, node.op === '!=' ? ' AND ' : ' OR ');
}

function toLiteral(target: Target, op: Comparison, value: FilterValue, now: Date): Literal {
  const { name, column } = target;
  const details = { attribute: name, value };
  if (op !== '=' && op !== '!=' && (value === null || typeof value === 'boolean')) {
    throw badRequest(`'${op}' on ${name} needs a string, a number or a date, not ${String(value)}`, details);
  }
  if (op === '^=' && typeof value !== 'string') {
    throw badRequest(`'^=' on ${name} needs a string, not ${String(value)}`, details);
  }
  if (value === null) return { type: 'null' };
  if (column === undefined) {
    if (typeof value === 'number') return { type: 'number', value };
    if (typeof value === 'boolean') return { type: 'boolean', value };
    // Date math only for orderings: `expiry<'now'` is the point, while `status='now'` stays a string.
    const ordering = op === '<' || op === '>' || op === '<=' || op === '>=';
    return { type: 'text', value: ordering && value.startsWith('now') ? (resolveDate(value, now) ?? value) : value };
  }
  if (op === '^=' && column.type !== 'text') {
    throw badRequest(`'^=' needs a text attribute; ${name} is a ${column.type}`, details);
  }
  switch (column.type) {
    case 'text':
      return { type: 'text', value: String(value) };
    case 'number':
      if (typeof value === 'number') return { type: 'number', value };
      if (typeof value === 'string' && NUMBER_STRING.test(value)) return { type: 'number', value: Number(value) };
      throw badRequest(`${name} is a number; ${show(value)} is not`, details);
    case 'date': {
      const date = typeof value === 'string' ? resolveDate(value, now) : undefined;
      if (date !== undefined) return { type: 'text', value: date };
      throw badRequest(
        `${name} is a date; ${show(value)} is not (use ISO-8601 such as '2026-11-01T10:00:00Z' or date math such as 'now-7d')`,
        details,
      );
    }
  }
}

/**
 * `ORDER BY ...` ending with the `id` column, so that pages of equal keys are stable. Missing values
 * sort last in either direction, as Elasticsearch does (SQLite's own order puts NULL first when
 * ascending, PostgreSQL's when descending). JSON attributes cannot be parameters here, so their
 * names are restricted and inlined.
 */
export function compileOrderBy(orderBy: readonly OrderBy[], options: CompileOptions): string {
  const doc = options.documentColumn;
  const dot = doc.lastIndexOf('.');
  const idColumn = dot < 0 ? 'id' : `${doc.slice(0, dot + 1)}id`;
  const keys: string[] = [];
  let tiebroken = false;
  for (const { attribute, direction } of orderBy) {
    const name = attribute.join('/');
    const dir = direction === 'desc' ? 'DESC' : 'ASC';
    const column = options.columns[name];
    if (column !== undefined) {
      keys.push(column.nullable === false ? `${column.column} ${dir}` : `${column.column} ${dir} NULLS LAST`);
      tiebroken ||= column.column === idColumn;
      continue;
    }
    if (attribute.length === 0 || !attribute.every((segment) => ORDER_SEGMENT.test(segment))) {
      throw badRequest(`cannot order by '${name}': names are letters, digits, '-' and '_'`, { attribute: name });
    }
    if (options.dialect === 'sqlite') {
      keys.push(`json_extract(${doc}, '${sqlitePath(attribute)}') ${dir} NULLS LAST`);
    } else {
      const text = `(${doc} #>> '{${attribute.map((segment) => `"${segment}"`).join(',')}}')`;
      // Numbers first and numerically (text order would put 10 before 9), then the rest as text.
      keys.push(`CASE WHEN ${text} ~ ${NUMERIC_TEXT} THEN ${text}::numeric END ${dir} NULLS LAST`);
      keys.push(`${text} ${dir} NULLS LAST`);
    }
  }
  if (!tiebroken) keys.push(`${idColumn} ASC`);
  return `ORDER BY ${keys.join(', ')}`;
}

/** `?` -> `$1, $2, ...` for PostgreSQL; a `?` inside a quoted literal or identifier is left alone. */
export function toNumberedPlaceholders(sql: string, firstIndex = 1): string {
  let index = firstIndex;
  let quote: string | undefined;
  let result = '';
  for (const char of sql) {
    if (quote !== undefined) {
      if (char === quote) quote = undefined;
    } else if (char === "'" || char === '"') {
      quote = char;
    } else if (char === '?') {
      result += `$${index++}`;
      continue;
    }
    result += char;
  }
  return result;
}

function isList(value: FilterValue | readonly FilterValue[]): value is readonly FilterValue[] {
  return Array.isArray(value);
}

function sameLiteral(a: Literal, b: Literal): boolean {
  return a.type === 'null' || b.type === 'null' ? a.type === b.type : a.type === b.type && a.value === b.value;
}

function show(value: FilterValue): string {
  return typeof value === 'string' ? `'${value}'` : String(value);
}
