/**
 * One HTTP exchange with the job API, and nothing more: no retries, no login. Connections are kept
 * alive and shared by every call of a client (executors run many slots against one API). Any status
 * is an answer here; only the absence of one (refused, reset, timed out) is an error.
 */
import { setMaxListeners } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import type { Readable } from 'node:stream';
import type { AxiosInstance } from 'axios';
import { axios } from './axios.js';
import { errorFromNetwork } from './errors.js';

export type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

export interface HttpRequest {
  readonly method: HttpMethod;
  /** From the server root, e.g. `/api/job/<uuid>`. */
  readonly path: string;
  readonly query?: Readonly<Record<string, string>>;
  readonly body?: { readonly json: unknown } | { readonly form: Readonly<Record<string, string>> };
  readonly headers?: Readonly<Record<string, string>>;
}

export interface HttpResponse {
  readonly status: number;
  /** Parsed JSON; the text itself when it is not JSON; undefined when empty. */
  readonly body: unknown;
  readonly etag: string | undefined;
  readonly setCookie: readonly string[];
  readonly retryAfter: string | undefined;
}

export interface HttpTransportOptions {
  /** Where a request goes unless it names its replica's root. */
  readonly baseUrl: string;
  readonly timeoutMs: number;
  readonly maxSockets: number;
  /** PEM certificates trusted for https instead of the system's. */
  readonly ca?: string | undefined;
}

export class HttpTransport {
  readonly #axios: AxiosInstance;
  readonly #agents: readonly (http.Agent | https.Agent)[];
  readonly #options: HttpTransportOptions;
  readonly #closing = new AbortController();

  constructor(options: HttpTransportOptions) {
    this.#options = options;
    // Every call in flight listens to this one signal (up to maxSockets at once, plus queued ones).
    setMaxListeners(0, this.#closing.signal);
    // keepAlive reuses connections; Node also drops an idle one a second before the server's
    // advertised Keep-Alive timeout, so a request is not sent on a socket the server is closing.
    const agentOptions = {
      keepAlive: true,
      maxSockets: options.maxSockets,
      maxFreeSockets: Math.min(64, options.maxSockets),
      timeout: 60_000,
    };
    const httpAgent = new http.Agent(agentOptions);
    const httpsAgent = new https.Agent(options.ca === undefined ? agentOptions : { ...agentOptions, ca: options.ca });
    this.#agents = [httpAgent, httpsAgent];
    this.#axios = axios.create({
      httpAgent,
      httpsAgent,
      timeout: options.timeoutMs,
      validateStatus: () => true,
      // A redirected POST would turn into a GET; a redirect here means a wrong baseUrl, said as such.
      maxRedirects: 0,
      responseType: 'text',
      // Parsing is ours (every body is `unknown` until checked), so axios must not guess.
      transformResponse: [(data: unknown) => data],
      transitional: { clarifyTimeoutError: true },
      maxBodyLength: Infinity,
      maxContentLength: Infinity,
    });
  }

  get closed(): boolean {
    return this.#closing.signal.aborted;
  }

  /** Aborts the back-off waits of pending calls with this signal. */
  get signal(): AbortSignal {
    return this.#closing.signal;
  }

  /** `baseUrl`: the replica to send it to (the transport's own by default); connections are pooled per replica. */
  async send(request: HttpRequest, cookie: string | undefined, baseUrl: string = this.#options.baseUrl): Promise<HttpResponse> {
    const headers: Record<string, string> = { accept: 'application/json', ...request.headers };
    if (cookie !== undefined) headers.cookie = cookie;
    let data: string | undefined;
    if (request.body !== undefined && 'json' in request.body) {
      data = JSON.stringify(request.body.json);
      headers['content-type'] = 'application/json';
    } else if (request.body !== undefined) {
      data = new URLSearchParams(request.body.form).toString();
      headers['content-type'] = 'application/x-www-form-urlencoded';
    }
    const url = urlOf(baseUrl, request);
    try {
      const response = await this.#axios.request<unknown>({
        url,
        method: request.method,
        headers,
        data,
        signal: this.#closing.signal,
      });
      return {
        status: response.status,
        body: parseBody(response.data, headerText(response.headers['content-type'])),
        etag: headerText(response.headers.etag),
        setCookie: headerList(response.headers['set-cookie']),
        retryAfter: headerText(response.headers['retry-after']),
      };
    } catch (error) {
      throw errorFromNetwork(
        error,
        { method: request.method, path: request.path },
        {
          timeoutMs: this.#options.timeoutMs,
          closed: this.closed,
        },
      );
    }
  }

  /**
   * A GET whose body is read as it arrives (an event stream), with no overall timeout: the caller ends
   * it through `signal` (or by destroying the stream). A status other than 200 comes back with its
   * body read and parsed, as `send` gives it.
   */
  async openStream(
    request: Omit<HttpRequest, 'method' | 'body'>,
    signal: AbortSignal,
    baseUrl: string = this.#options.baseUrl,
  ): Promise<{ readonly stream: Readable } | { readonly response: HttpResponse }> {
    const url = urlOf(baseUrl, request);
    try {
      const response = await this.#axios.request<Readable>({
        url,
        method: 'GET',
        headers: { accept: 'text/event-stream', ...request.headers },
        responseType: 'stream',
        timeout: 0,
        signal: AbortSignal.any([signal, this.#closing.signal]),
      });
      if (response.status === 200) return { stream: response.data };
      const chunks: Buffer[] = [];
      for await (const chunk of response.data) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
      const text = Buffer.concat(chunks).toString('utf8');
      return {
        response: {
          status: response.status,
          body: parseBody(text, headerText(response.headers['content-type'])),
          etag: undefined,
          setCookie: [],
          retryAfter: headerText(response.headers['retry-after']),
        },
      };
    } catch (error) {
      throw errorFromNetwork(error, { method: 'GET', path: request.path }, { timeoutMs: 0, closed: this.closed });
    }
  }

  close(): void {
    this.#closing.abort(new Error('the job API client was closed'));
    for (const agent of this.#agents) agent.destroy();
  }
}

function urlOf(baseUrl: string, request: Pick<HttpRequest, 'path' | 'query'>): string {
  const query = request.query === undefined ? '' : new URLSearchParams(request.query).toString();
  return `${baseUrl}${request.path}${query === '' ? '' : `?${query}`}`;
}

function parseBody(data: unknown, contentType: string | undefined): unknown {
  if (typeof data !== 'string') return data;
  if (data.trim() === '') return undefined;
  const looksJson = contentType?.includes('json') === true || /^\s*[[{]/.test(data);
  if (!looksJson) return data;
  try {
    return JSON.parse(data) as unknown;
  } catch {
    return data;
  }
}

function headerText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Array.isArray(value) && typeof value[0] === 'string') return value[0];
  return undefined;
}

function headerList(value: unknown): string[] {
  if (typeof value === 'string') return [value];
  if (Array.isArray(value)) return value.filter((item): item is string => typeof item === 'string');
  return [];
}
