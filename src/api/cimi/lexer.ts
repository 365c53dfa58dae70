/**
 * Tokens of a CIMI filter, read on demand so that the leftmost problem is the one reported: a
 * parser error at position 3 is not hidden by an unterminated string at position 40.
 */
import { badRequest, type ApiError } from '../errors.js';

export type Token =
  | {
      readonly kind: 'word' | 'operator' | '(' | ')' | '[' | ']' | ',' | 'end';
      /** As written, for error messages. */
      readonly text: string;
      /** 0-based offset in the filter. */
      readonly position: number;
    }
  | { readonly kind: 'string' | 'date'; readonly text: string; readonly position: number; readonly value: string }
  | { readonly kind: 'number'; readonly text: string; readonly position: number; readonly value: number };

export function syntaxError(filter: string, position: number, problem: string): ApiError {
  return badRequest(`filter syntax error at position ${position}: ${problem}`, { position, filter });
}

/** How a token reads in an error message. */
export function describeToken(token: Token): string {
  return token.kind === 'end' ? 'the end of the filter' : `'${token.text}'`;
}

const WORD_START = /[A-Za-z_]/;
const WORD_CHAR = /[A-Za-z0-9_/-]/;
// Runs of these are read as one operator so that `==`, `<>` or `=~` are reported whole rather
// than as a valid `=` followed by a puzzling error about the next character.
const OPERATOR_CHARS = new Set(['=', '!', '<', '>', '^', '~', '&', '|']);
const PUNCTUATION = new Set(['(', ')', '[', ']', ',']);
// Nuvla accepts unquoted dates; they must be read before numbers, or `2026-11-01` would lex as
// three numbers.
const DATE = /\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?/y;
const NUMBER = /-?\d+(?:\.\d+)?/y;

export class Lexer {
  private offset = 0;
  private lookahead: Token | undefined;

  constructor(readonly filter: string) {}

  peek(): Token {
    this.lookahead ??= this.read();
    return this.lookahead;
  }

  next(): Token {
    const token = this.peek();
    this.lookahead = undefined;
    return token;
  }

  private read(): Token {
    const text = this.filter;
    while (this.offset < text.length && /\s/.test(text.charAt(this.offset))) this.offset++;
    const start = this.offset;
    if (start >= text.length) return { kind: 'end', text: '', position: start };
    const char = text.charAt(start);

    if (char === "'" || char === '"') return this.readString(char);
    if (PUNCTUATION.has(char)) {
      this.offset++;
      return { kind: char as '(' | ')' | '[' | ']' | ',', text: char, position: start };
    }
    if (OPERATOR_CHARS.has(char)) {
      while (this.offset < text.length && OPERATOR_CHARS.has(text.charAt(this.offset))) this.offset++;
      return { kind: 'operator', text: text.slice(start, this.offset), position: start };
    }
    if (WORD_START.test(char)) {
      while (this.offset < text.length && WORD_CHAR.test(text.charAt(this.offset))) this.offset++;
      return { kind: 'word', text: text.slice(start, this.offset), position: start };
    }
    const date = this.match(DATE);
    if (date !== undefined) return { kind: 'date', text: date, position: start, value: date };
    const number = this.match(NUMBER);
    if (number !== undefined) {
      const value = Number(number);
      if (!Number.isFinite(value)) throw syntaxError(text, start, `number ${number} is out of range`);
      return { kind: 'number', text: number, position: start, value };
    }
    throw syntaxError(text, start, `unexpected character '${char}'`);
  }

  private match(pattern: RegExp): string | undefined {
    pattern.lastIndex = this.offset;
    const found = pattern.exec(this.filter)?.[0];
    if (found !== undefined) this.offset += found.length;
    return found;
  }

  /** A backslash takes the next character literally, so `\'` and `\\` are a quote and a backslash. */
  private readString(quote: string): Token {
    const text = this.filter;
    const start = this.offset;
    let value = '';
    let i = start + 1;
    while (i < text.length) {
      const char = text.charAt(i);
      if (char === quote) {
        this.offset = i + 1;
        return { kind: 'string', text: text.slice(start, i + 1), position: start, value };
      }
      if (char === '\\' && i + 1 < text.length) {
        value += text.charAt(i + 1);
        i += 2;
      } else {
        value += char;
        i++;
      }
    }
    throw syntaxError(text, start, `unterminated string: no closing ${quote} for the one at position ${start}`);
  }
}
