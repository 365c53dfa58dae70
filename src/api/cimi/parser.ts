/**
 * Nuvla's CIMI query parameters: `filter`, `orderby` and `select`.
 *
 *   filter     := or-expr
 *   or-expr    := and-expr ('or' and-expr)*          -- 'and' binds tighter than 'or'
 *   and-expr   := primary ('and' primary)*
 *   primary    := '(' or-expr ')' | attribute operator (value | '[' value (',' value)* ']')
 *   value      := 'string' | "string" | number | date | true | false | null
 *
 * Keywords are case-insensitive. Chains of 'and'/'or' nest to the left: `a and b and c` is
 * `(a and b) and c`.
 */
import { badRequest, type ApiError } from '../errors.js';
import type { Comparison, FilterNode, FilterValue, OrderBy } from './ast.js';
import { Lexer, describeToken, syntaxError, type Token } from './lexer.js';

const COMPARISONS: ReadonlySet<string> = new Set<Comparison>(['=', '!=', '<', '>', '<=', '>=', '^=']);
const SUPPORTED = '= != < > <= >= ^=';
/** What people coming from other query languages type, and what they mean here. */
const SUGGESTIONS: Readonly<Record<string, string>> = {
  '==': '=',
  '===': '=',
  '!==': '!=',
  '<>': '!=',
  '=<': '<=',
  '=>': '>=',
  '&&': 'and',
  '&': 'and',
  '||': 'or',
  '|': 'or',
};
const RESERVED = new Set(['and', 'or', 'true', 'false', 'null']);

/**
 * A filter is the caller's text turned into SQL: these bound what one request can make the database
 * parse, so that no filter reaches SQLite's or PostgreSQL's own limits (expression depth 1000 in
 * SQLite, 32,766 bound parameters, path lengths) and fails there as a 500. Each is far above what a
 * client sends: an executor's watch asks for 200 ids at once, jobctl combines a handful of terms.
 */
export const FILTER_LIMITS = Object.freeze({
  /** Characters in the whole filter. */
  maxLength: 65_536,
  /** Comparisons (`a='x'`), whatever joins them. */
  maxComparisons: 256,
  /** Values over all comparisons, those in lists included. */
  maxValues: 5_000,
  /** Names in one attribute path (`a/b/c` has 3). */
  maxAttributeNames: 16,
  /** Parentheses inside each other; also bounds the parser's recursion (and the compiler's after it). */
  maxNesting: 64,
});
const MAX_NESTING = FILTER_LIMITS.maxNesting;
const ATTRIBUTE = /^[A-Za-z_][A-Za-z0-9_-]*(?:\/[A-Za-z0-9_-]+)*$/;

export function parseFilter(text: string): FilterNode {
  if (text.length > FILTER_LIMITS.maxLength) {
    throw limitExceeded(`a filter has at most ${FILTER_LIMITS.maxLength} characters, this one has ${text.length}`, 'maxLength');
  }
  return new FilterParser(text).parse();
}

/** The filter itself stays out of the details: echoing a filter this large is what the limit avoids. */
function limitExceeded(problem: string, limit: keyof typeof FILTER_LIMITS): ApiError {
  return badRequest(`filter too large: ${problem}`, { limit, max: FILTER_LIMITS[limit] });
}

/** The `filter` parameter as a request gives it: absent or blank means no filter. */
export function parseOptionalFilter(text: string | undefined): FilterNode | undefined {
  return text === undefined || text.trim() === '' ? undefined : parseFilter(text);
}

class FilterParser {
  private readonly lexer: Lexer;
  private depth = 0;
  private comparisons = 0;
  private values = 0;

  constructor(private readonly text: string) {
    this.lexer = new Lexer(text);
  }

  parse(): FilterNode {
    if (this.lexer.peek().kind === 'end') throw syntaxError(this.text, 0, 'the filter is empty');
    const node = this.orExpression();
    const token = this.lexer.peek();
    if (token.kind === ')') throw syntaxError(this.text, token.position, "found ')' without a matching '('");
    if (token.kind !== 'end') throw this.unexpected(token, "'and', 'or' or the end of the filter");
    return node;
  }

  private orExpression(): FilterNode {
    let left = this.andExpression();
    while (this.keyword('or')) left = { kind: 'or', left, right: this.andExpression() };
    return left;
  }

  private andExpression(): FilterNode {
    let left = this.primary();
    while (this.keyword('and')) left = { kind: 'and', left, right: this.primary() };
    return left;
  }

  private keyword(word: 'and' | 'or'): boolean {
    const token = this.lexer.peek();
    if (token.kind !== 'word' || token.text.toLowerCase() !== word) return false;
    this.lexer.next();
    return true;
  }

  private primary(): FilterNode {
    const token = this.lexer.next();
    if (token.kind === '(') {
      if (++this.depth > MAX_NESTING) {
        throw syntaxError(this.text, token.position, `parentheses nest deeper than ${MAX_NESTING} levels`);
      }
      const inner = this.orExpression();
      const close = this.lexer.next();
      if (close.kind !== ')') {
        throw this.unexpected(close, `'and', 'or' or ')' to close the '(' at position ${token.position}`);
      }
      this.depth--;
      return inner;
    }
    if (token.kind !== 'word' || RESERVED.has(token.text.toLowerCase())) {
      throw this.unexpected(token, "an attribute or '('");
    }
    if (++this.comparisons > FILTER_LIMITS.maxComparisons) {
      throw limitExceeded(
        `a filter has at most ${FILTER_LIMITS.maxComparisons} comparisons; the next one is at position ${token.position}`,
        'maxComparisons',
      );
    }
    const attribute = this.attribute(token);
    const op = this.operator(token);
    const value = this.lexer.peek().kind === '[' ? this.list(op) : this.value(op);
    return { kind: 'compare', attribute, op: op.op, value };
  }

  private attribute(token: Token): string[] {
    const segments = token.text.split('/');
    if (segments.length > FILTER_LIMITS.maxAttributeNames) {
      throw limitExceeded(
        `an attribute has at most ${FILTER_LIMITS.maxAttributeNames} names, the one at position ${token.position} has ${segments.length}`,
        'maxAttributeNames',
      );
    }
    let offset = token.position;
    for (const segment of segments) {
      if (segment === '') throw syntaxError(this.text, offset, `empty name in attribute '${token.text}'`);
      offset += segment.length + 1;
    }
    return segments;
  }

  private operator(attribute: Token): { op: Comparison; token: Token } {
    const token = this.lexer.next();
    if (token.kind === 'operator' && COMPARISONS.has(token.text)) return { op: token.text as Comparison, token };
    if (token.kind === 'operator' || token.kind === 'word') {
      const suggestion = SUGGESTIONS[token.text.toLowerCase()];
      const hint = suggestion === undefined ? '' : ` (did you mean '${suggestion}'?)`;
      throw syntaxError(
        this.text,
        token.position,
        `unsupported operator '${token.text}' after '${attribute.text}'${hint}; the operators are ${SUPPORTED}`,
      );
    }
    throw this.unexpected(token, `an operator (${SUPPORTED}) after '${attribute.text}'`);
  }

  private list(op: { op: Comparison; token: Token }): FilterValue[] {
    const open = this.lexer.next();
    if (op.op !== '=' && op.op !== '!=') {
      throw syntaxError(this.text, open.position, `a list is only allowed after '=' or '!=', not after '${op.op}'`);
    }
    if (this.lexer.peek().kind === ']') throw syntaxError(this.text, open.position, 'the list is empty');
    const values: FilterValue[] = [];
    for (;;) {
      values.push(this.scalar(`in the list at position ${open.position}`));
      const token = this.lexer.next();
      if (token.kind === ']') return values;
      if (token.kind !== ',') throw this.unexpected(token, `',' or ']' to close the list at position ${open.position}`);
    }
  }

  private value(op: { op: Comparison; token: Token }): FilterValue {
    const token = this.lexer.peek();
    const value = this.scalar(`after '${op.op}'`);
    if (op.op === '^=' && typeof value !== 'string') {
      throw syntaxError(this.text, token.position, `'^=' needs a quoted string but found ${describeToken(token)}`);
    }
    if (op.op !== '=' && op.op !== '!=' && (value === null || typeof value === 'boolean')) {
      throw syntaxError(this.text, token.position, `'${op.op}' needs a string, a number or a date, not ${token.text}`);
    }
    return value;
  }

  private scalar(where: string): FilterValue {
    const token = this.lexer.next();
    if (++this.values > FILTER_LIMITS.maxValues) {
      throw limitExceeded(
        `a filter has at most ${FILTER_LIMITS.maxValues} values; the next one is at position ${token.position}`,
        'maxValues',
      );
    }
    switch (token.kind) {
      case 'string':
      case 'date':
      case 'number':
        return token.value;
      case 'word': {
        const word = token.text.toLowerCase();
        if (word === 'true') return true;
        if (word === 'false') return false;
        if (word === 'null') return null;
        const hint = RESERVED.has(word) ? '' : ` (strings need quotes: '${token.text}')`;
        throw syntaxError(this.text, token.position, `expected a value ${where} but found '${token.text}'${hint}`);
      }
      default:
        throw this.unexpected(token, `a value ${where}`);
    }
  }

  private unexpected(token: Token, expected: string): Error {
    const suggestion = token.kind === 'operator' ? SUGGESTIONS[token.text] : undefined;
    const hint = suggestion === 'and' || suggestion === 'or' ? ` (did you mean '${suggestion}'?)` : '';
    return syntaxError(this.text, token.position, `expected ${expected} but found ${describeToken(token)}${hint}`);
  }
}

/** Nuvla's `orderby=created:desc,priority:asc,id`; the direction defaults to ascending. */
export function parseOrderBy(text: string | undefined): OrderBy[] {
  if (text === undefined || text.trim() === '') return [];
  return text.split(',').map((entry) => {
    const [name = '', direction = 'asc', ...rest] = entry.split(':').map((part) => part.trim());
    const attribute = checkAttribute(name, 'orderby', text);
    const normalised = direction.toLowerCase();
    if (rest.length > 0 || (normalised !== 'asc' && normalised !== 'desc')) {
      const written = entry.slice(entry.indexOf(':') + 1).trim();
      throw badRequest(`orderby direction '${written}' for ${name} is not asc or desc`, { orderby: text });
    }
    return { attribute, direction: normalised };
  });
}

/** Nuvla's `select=id,state,target-resource`: the attributes to return, in the order given. */
export function parseSelect(text: string | undefined): string[] | undefined {
  if (text === undefined || text.trim() === '') return undefined;
  const names = text.split(',').map((name) => name.trim());
  for (const name of names) checkAttribute(name, 'select', text);
  return [...new Set(names)];
}

function checkAttribute(name: string, parameter: 'orderby' | 'select', text: string): string[] {
  if (name === '') throw badRequest(`${parameter} has an empty attribute name`, { [parameter]: text });
  if (name.split('/').length > FILTER_LIMITS.maxAttributeNames) {
    throw badRequest(`${parameter}: an attribute has at most ${FILTER_LIMITS.maxAttributeNames} names, '${name.slice(0, 60)}...' has more`);
  }
  if (!ATTRIBUTE.test(name)) {
    throw badRequest(`${parameter} attribute '${name}' is not a name of letters, digits, '-' and '_' with '/' between nested names`, {
      [parameter]: text,
    });
  }
  return name.split('/');
}
