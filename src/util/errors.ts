/** Turns a thrown or rejected value of unknown type into an Error, keeping the original as its cause. */
export function toError(value: unknown, fallbackMessage = 'unexpected non-Error failure'): Error {
  if (value instanceof Error) return value;
  const detail = typeof value === 'string' ? value : JSON.stringify(value);
  return new Error(`${fallbackMessage}: ${detail}`, { cause: value });
}

/** A JSON.stringify replacer that keeps an Error's message and stack (JSON would give `{}`). */
export function errorJsonReplacer(_key: string, value: unknown): unknown {
  return value instanceof Error ? { message: value.message, stack: value.stack } : value;
}

/** The message of an unknown failure, for logs. */
export function messageOf(value: unknown): string {
  return value instanceof Error ? value.message : toError(value).message;
}
