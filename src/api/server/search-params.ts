/**
 * Nuvla's collection query parameters, from a GET query string or a PUT form (the Nuvla clients use
 * both): filter, orderby, first, last, select, aggregation; and the engine's `count-limit`, which
 * Nuvla's clients never send. Parsed from `unknown` into a JobSearch.
 */
import { badRequest } from '../errors.js';
import { parseOptionalFilter, parseOrderBy, parseSelect } from '../cimi/parser.js';
import type { FilterNode } from '../cimi/ast.js';
import type { JobSearch } from '../store/job-store.js';

export interface CollectionQuery {
  readonly search: JobSearch;
  readonly select: readonly string[] | undefined;
  /** Nuvla's `aggregation=terms:state`: counts per state over the filter. */
  readonly countByState: boolean;
  /** Nuvla's `last=0`: only the count is wanted. */
  readonly countOnly: boolean;
}

const DEFAULT_PAGE = 10_000;
const KNOWN = new Set(['filter', 'orderby', 'first', 'last', 'select', 'aggregation', 'count-limit']);
/** The largest `count-limit`: beyond it, ask for the exact count. */
const MAX_COUNT_LIMIT = 1_000_000;
const REPEATABLE = new Set(['orderby', 'select']);

export function parseCollectionQuery(raw: unknown): CollectionQuery {
  const params = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  for (const key of Object.keys(params)) {
    if (!KNOWN.has(key)) throw badRequest(`unknown search parameter "${key}"; expected ${[...KNOWN].join(', ')}`);
  }
  const filter = parseOptionalFilter(single(params, 'filter'));
  const orderBy = parseOrderBy(single(params, 'orderby'));
  const first = positive(params, 'first') ?? 1;
  const lastGiven = positive(params, 'last', true);
  const countOnly = lastGiven === 0;
  const last = lastGiven === undefined || countOnly ? first + DEFAULT_PAGE - 1 : lastGiven;
  if (last < first) throw badRequest(`"last" (${String(last)}) is before "first" (${String(first)})`);
  const aggregation = single(params, 'aggregation');
  if (aggregation !== undefined && aggregation !== 'terms:state') {
    throw badRequest(`unsupported aggregation "${aggregation}"; only terms:state is available`);
  }
  const countLimit = positive(params, 'count-limit');
  if (countLimit !== undefined && countLimit > MAX_COUNT_LIMIT) {
    throw badRequest(`"count-limit" is at most ${String(MAX_COUNT_LIMIT)}, got ${String(countLimit)}; leave it out for the exact count`);
  }
  const search: JobSearch = { ...withFilter(filter), orderBy, first, last, ...(countLimit === undefined ? {} : { countLimit }) };
  return { search, select: parseSelect(single(params, 'select')), countByState: aggregation !== undefined, countOnly };
}

function withFilter(filter: FilterNode | undefined): { filter?: FilterNode } {
  return filter === undefined ? {} : { filter };
}

/**
 * One parameter as text. Nuvla's Python client repeats `select` and `orderby` for each attribute
 * (`select=a&select=b`): repeats of those are joined with commas; a JSON body may give numbers.
 */
function single(params: Record<string, unknown>, key: string): string | undefined {
  const value = params[key];
  if (value === undefined) return undefined;
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  if (Array.isArray(value) && REPEATABLE.has(key) && value.every((item): item is string => typeof item === 'string')) {
    return value.join(',');
  }
  throw badRequest(
    REPEATABLE.has(key)
      ? `search parameter "${key}" must be text (repeat it or separate attributes with commas)`
      : `search parameter "${key}" must be given once, as text or a number`,
  );
}

function positive(params: Record<string, unknown>, key: string, allowZero = false): number | undefined {
  const value = single(params, key);
  if (value === undefined || value === '') return undefined;
  const number = Number(value);
  if (!Number.isInteger(number) || number < (allowZero ? 0 : 1)) {
    throw badRequest(`"${key}" must be an integer of at least ${allowZero ? '0' : '1'}, got "${value}"`);
  }
  return number;
}
