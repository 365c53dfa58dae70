/** Turns a thrown or rejected value of unknown type into an Error, keeping the original as its cause. */
export function toError(value: unknown, fallbackMessage = 'unexpected non-Error failure'): Error {
  if (value instanceof Error) return value;
  const detail = typeof value === 'string' ? value : JSON.stringify(value);
  return new Error(`${fallbackMessage}: ${detail}`, { cause: value });
}

/**
 * A JSON.stringify replacer that keeps what an Error says (JSON would give `{}`): its message and
 * stack, its stable `code` when it has one, and, followed the same way, its cause and the errors an
 * AggregateError gathered, so a log line shows the whole chain and not only the outermost message.
 */
export function errorJsonReplacer(_key: string, value: unknown): unknown {
  if (!(value instanceof Error)) return value;
  const code: unknown = (value as { code?: unknown }).code;
  return {
    message: value.message,
    ...(typeof code === 'string' || typeof code === 'number' ? { code } : {}),
    stack: value.stack,
    ...(value.cause === undefined ? {} : { cause: value.cause }),
    ...(value instanceof AggregateError ? { errors: value.errors } : {}),
  };
}

/** The message of an unknown failure, for logs. */
export function messageOf(value: unknown): string {
  return value instanceof Error ? value.message : toError(value).message;
}
