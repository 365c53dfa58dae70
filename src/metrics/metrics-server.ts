/**
 * The metrics endpoint every daemon may open on `--metrics-port`: a plain node:http server, separate
 * from the job API's port so /metrics is never exposed where the API is (and the executor and the
 * distributor, which serve nothing else, need no web framework for it).
 *
 *   GET /metrics  the daemon's registry in Prometheus' text format
 *   GET /healthz  200 while the process runs (its event loop answers)
 *   GET /readyz   200 when every readiness check passes, else 503; a short JSON body names each check
 *
 * Whoever owns the daemon's resources opens and closes it (the executor's and distributor's entry
 * points, JobApiServer for the API); the server only answers.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Registry } from 'prom-client';
import { messageOf, toError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';

/** A check answers undefined when it passes, or a few words saying what is wrong. */
export type ReadinessCheck = () => string | undefined | Promise<string | undefined>;
export type ReadinessChecks = Readonly<Record<string, ReadinessCheck>>;

export interface MetricsEndpointOptions {
  readonly host: string;
  readonly port: number;
  readonly registry: Registry;
  /** Asked on every /readyz; a daemon that is still starting answers with a check that fails. */
  readonly readiness: () => ReadinessChecks;
  readonly logger: Logger;
}

export interface MetricsEndpoint {
  /** `http://host:port`, with the port actually bound (for --metrics-port 0). */
  readonly url: string;
  readonly port: number;
  /** Stops listening and drops kept-alive connections. Idempotent. */
  close(): Promise<void>;
}

/** A check that has not answered by then counts as failed: /readyz itself must answer promptly. */
const CHECK_TIMEOUT_MS = 2000;

export class MetricsPortError extends Error {
  override readonly name = 'MetricsPortError';
  readonly code = 'metrics-port';
}

export async function startMetricsEndpoint(options: MetricsEndpointOptions): Promise<MetricsEndpoint> {
  const server = createServer((request, response) => {
    void answer(request, response, options).catch((error: unknown) => {
      options.logger.warn('metrics request failed', { url: request.url, error: toError(error) });
      if (!response.headersSent) send(response, 500, 'text/plain; charset=utf-8', `${messageOf(error)}\n`);
      else response.destroy();
    });
  });
  await listen(server, options.host, options.port);
  const { port } = server.address() as AddressInfo;
  const url = `http://${options.host.includes(':') ? `[${options.host}]` : options.host}:${port}`;
  options.logger.info('metrics listening', { url, port });
  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
        // A scraper keeps its connection alive between scrapes; close() alone would wait for it.
        server.closeAllConnections();
      });
      return closing;
    },
  };
}

function listen(server: Server, host: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      const where = `${host}:${port}`;
      if (error.code === 'EADDRINUSE') reject(new MetricsPortError(`metrics port ${where} is already in use`, { cause: error }));
      else if (error.code === 'EACCES')
        reject(new MetricsPortError(`metrics port ${where} may not be opened by this user`, { cause: error }));
      else reject(new MetricsPortError(`metrics port ${where} cannot be opened: ${error.message}`, { cause: error }));
    };
    server.once('error', onError);
    server.listen({ host, port }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}

async function answer(request: IncomingMessage, response: ServerResponse, options: MetricsEndpointOptions): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.setHeader('allow', 'GET, HEAD');
    send(response, 405, 'text/plain; charset=utf-8', 'only GET and HEAD\n');
    return;
  }
  switch (path) {
    case '/metrics':
      send(response, 200, options.registry.contentType, await options.registry.metrics());
      return;
    case '/healthz':
      send(response, 200, 'application/json', '{"alive":true}\n');
      return;
    case '/readyz': {
      const report = await readiness(options.readiness());
      send(response, report.ready ? 200 : 503, 'application/json', `${JSON.stringify(report)}\n`);
      return;
    }
    default:
      send(response, 404, 'text/plain; charset=utf-8', 'not found: try /metrics, /healthz or /readyz\n');
  }
}

export interface ReadinessReport {
  readonly ready: boolean;
  /** The names of the checks that failed. */
  readonly failed: readonly string[];
  /** Every check: "ok", or what is wrong. */
  readonly checks: Readonly<Record<string, string>>;
}

export async function readiness(checks: ReadinessChecks): Promise<ReadinessReport> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]): Promise<[string, string | undefined]> => [name, await settle(check)]),
  );
  const failed = entries.filter(([, problem]) => problem !== undefined).map(([name]) => name);
  return { ready: failed.length === 0, failed, checks: Object.fromEntries(entries.map(([name, problem]) => [name, problem ?? 'ok'])) };
}

async function settle(check: ReadinessCheck): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<string>((resolve) => {
    timer = setTimeout(() => {
      resolve(`no answer within ${CHECK_TIMEOUT_MS} ms`);
    }, CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([Promise.resolve().then(check), timeout]);
  } catch (error) {
    return toError(error).message;
  } finally {
    clearTimeout(timer);
  }
}

function send(response: ServerResponse, status: number, contentType: string, body: string): void {
  response.writeHead(status, { 'content-type': contentType, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
  response.end(body);
}
