/**
 * The dashboard's client of the job API: same origin, the session cookie sent by the browser. Every
 * answer is `unknown` until a parser in model.ts has checked it; every failure becomes an ApiFailure
 * carrying the API's own message and code, so the page can show the server's words in place.
 */

export class ApiFailure extends Error {
  override readonly name = 'ApiFailure';
  readonly status: number;
  readonly code: string;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(status: number, code: string, message: string, details: Readonly<Record<string, unknown>> = {}) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details;
  }
}

export interface RequestOptions {
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
  readonly signal?: AbortSignal;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export async function request(method: string, path: string, options: RequestOptions = {}): Promise<unknown> {
  let response: Response;
  try {
    response = await fetch(path, {
      method,
      credentials: 'same-origin',
      headers: {
        accept: 'application/json',
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...options.headers,
      },
      ...(options.body === undefined ? {} : { body: JSON.stringify(options.body) }),
      ...(options.signal === undefined ? {} : { signal: options.signal }),
    });
  } catch (error) {
    if (error instanceof DOMException && error.name === 'AbortError') throw error;
    throw new ApiFailure(0, 'unreachable', `the job API cannot be reached: ${error instanceof Error ? error.message : String(error)}`);
  }
  const text = await response.text();
  let body: unknown;
  try {
    body = text === '' ? undefined : JSON.parse(text);
  } catch {
    // Not JSON (a proxy's error page): the status line says what happened.
  }
  if (!response.ok) {
    const record = isRecord(body) ? body : {};
    const message = typeof record.message === 'string' ? record.message : `${String(response.status)} ${response.statusText}`;
    const code = typeof record.code === 'string' ? record.code : 'internal';
    const { status: _status, code: _code, message: _message, ...details } = record;
    throw new ApiFailure(response.status, code, message, details);
  }
  return body;
}

export function describeFailure(error: unknown): string {
  if (error instanceof ApiFailure) return error.message;
  return error instanceof Error ? error.message : String(error);
}

/** `job/<uuid>` -> `/api/job/<uuid>` */
export function jobPath(id: string): string {
  return `/api/${id}`;
}
