/**
 * The job API as a Fastify application: routes, body parsing and limits, and one error handler that
 * turns every failure into Nuvla's error body `{ status, message }` plus a stable `code`. Listening
 * and closing belong to JobApiServer (job-api-server.ts), signals to the `job-api` entry point.
 */
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import formbody from '@fastify/formbody';
import { API_ERROR_STATUS, ApiError, type ApiErrorCode } from '../errors.js';
import type { JobDocument } from '../job/document.js';
import type { JobStore } from '../store/job-store.js';
import type { Logger } from '../../util/logger.js';
import type { AccessControl } from './access.js';
import { registerJobOperationRoutes } from './job-operations.js';
import { registerFeedRoute } from './feed-route.js';
import { registerBatchRoutes } from './batch-routes.js';
import { registerJobRoutes } from './job-routes.js';
import { registerBulkRoutes } from './bulk-routes.js';
import { registerSessionRoutes } from './session-routes.js';
import { DEFAULT_CREDENTIAL_LIMITS, loginRouteConfig, registerCredentialLimits, type CredentialLimits } from './credential-limits.js';
import { JobEventHub } from './event-hub.js';
import { registerEventRoutes } from './event-routes.js';
import { registerEngineRoutes } from './engine-routes.js';
import { registerSessionInfoRoute } from './session-info-route.js';
import { registerUiRoutes } from './ui-routes.js';
import type { UiAssets } from './ui-assets.js';
import type { EngineViews } from '../zk-views/engine-views.js';

export interface JobApiOptions {
  readonly store: JobStore;
  readonly access: AccessControl;
  readonly logger: Logger;
  /** Largest request body in bytes; larger ones get 413. */
  readonly bodyLimitBytes: number;
  readonly maxBulkCreate: number;
  readonly now?: () => Date;
  /** Told of every response (the API's metrics). */
  readonly requests?: RequestObserver;
  /** Where lifecycle events go; a hub logging to `logger` when not given. */
  readonly events?: JobEventHub;
  /** Enqueues jobs just created (`--zk-hosts`); true once their entries exist. */
  readonly enqueueCreated?: (jobs: readonly JobDocument[]) => Promise<boolean>;
  /** Parks the jobs about to be created that find no room in their queue (`--zk-hosts`). */
  readonly parkBeyondRoom?: (jobs: readonly JobDocument[]) => Promise<JobDocument[]>;
  /** Limits on failed credential checks and logins (DEFAULT_CREDENTIAL_LIMITS when not given). */
  readonly credentialLimits?: CredentialLimits;
  /**
   * Fastify's trustProxy: whose X-Forwarded-For and X-Forwarded-Proto to believe (true: any hop; a
   * string: those addresses or CIDRs). Decides the client address the limits count by, and whether a
   * request came over HTTPS.
   */
  readonly trustProxy?: boolean | string;
  /** Serve HTTPS with this certificate chain and key (PEM) instead of plain HTTP. */
  readonly tls?: { readonly cert: Buffer; readonly key: Buffer };
  /** The dashboard's files, served under /ui/; absent: no dashboard. */
  readonly ui?: UiAssets;
  /** ZooKeeper as the dashboard shows it (`--zk-hosts`); absent: /api/engine/* says how to turn it on. */
  readonly engineViews?: EngineViews;
}

export interface RequestObserver {
  /** `route` is the route's pattern (`/api/job/:uuid`), undefined for a request no route matched. */
  observe(method: string, route: string | undefined, status: number, seconds: number): void;
}

export async function buildJobApi(options: JobApiOptions): Promise<FastifyInstance> {
  const settings = {
    bodyLimit: options.bodyLimitBytes,
    logger: false,
    return503OnClosing: true,
    ...(options.trustProxy === undefined ? {} : { trustProxy: options.trustProxy }),
  };
  // An HTTPS instance is typed over https.Server; routes and hooks do not depend on which server it is.
  const app =
    options.tls === undefined
      ? Fastify(settings)
      : (Fastify({ ...settings, https: { cert: options.tls.cert, key: options.tls.key } }) as unknown as FastifyInstance);
  await app.register(formbody);
  const credentialLimits = options.credentialLimits ?? DEFAULT_CREDENTIAL_LIMITS;
  await registerCredentialLimits(app, credentialLimits);
  const requests = options.requests;
  if (requests !== undefined) {
    app.addHook('onResponse', (request, reply, done) => {
      requests.observe(request.method, request.routeOptions.url, reply.statusCode, reply.elapsedTime / 1000);
      done();
    });
  }
  app.setErrorHandler((error: FastifyError, request, reply) => {
    const { status, body } = errorResponse(error);
    if (status >= 500) options.logger.error('job api request failed', { method: request.method, url: request.url, error: error.stack });
    return reply.code(status).send(body);
  });
  app.setNotFoundHandler((request, reply) =>
    reply.code(404).send({ status: 404, code: 'not-found', message: `no such resource: ${request.method} ${request.url}` }),
  );
  registerSessionRoutes(app, options.access, loginRouteConfig(credentialLimits));
  registerSessionInfoRoute(app, options.access);
  registerEngineRoutes(app, { access: options.access, views: options.engineViews });
  if (options.ui !== undefined) registerUiRoutes(app, options.ui);
  const now = options.now ?? (() => new Date());
  const events = options.events ?? new JobEventHub(options.logger);
  registerJobRoutes(app, {
    store: options.store,
    access: options.access,
    now,
    maxBulkCreate: options.maxBulkCreate,
    events,
    ...(options.enqueueCreated === undefined ? {} : { enqueueCreated: options.enqueueCreated }),
    ...(options.parkBeyondRoom === undefined ? {} : { parkBeyondRoom: options.parkBeyondRoom }),
  });
  // As many operations (and published events) as jobs in a bulk create: the same order of work per request.
  registerJobOperationRoutes(app, { store: options.store, access: options.access, now, maxOperations: options.maxBulkCreate, events });
  registerBulkRoutes(app, { store: options.store, access: options.access, now, events });
  registerFeedRoute(app, { store: options.store, access: options.access, now, maxJobs: options.maxBulkCreate });
  registerBatchRoutes(app, {
    store: options.store,
    access: options.access,
    now,
    events,
    maxTasks: options.maxBulkCreate,
    ...(options.enqueueCreated === undefined ? {} : { enqueue: options.enqueueCreated }),
  });
  registerEventRoutes(app, { access: options.access, hub: events, store: options.store, maxEvents: options.maxBulkCreate });
  return app;
}

/** The error code whose status this is; other 4xx (rare from Fastify) count as bad requests. */
function codeOfStatus(status: number): ApiErrorCode {
  const match = (Object.keys(API_ERROR_STATUS) as ApiErrorCode[]).find((code) => API_ERROR_STATUS[code] === status);
  return match ?? 'bad-request';
}

/** Fastify's own failures (bad JSON, body too large, wrong media type) keep their status with a plain message. */
function errorResponse(error: FastifyError): { status: number; body: Record<string, unknown> } {
  if (error instanceof ApiError) {
    return { status: error.status, body: { status: error.status, code: error.code, message: error.message, ...error.details } };
  }
  const status = typeof error.statusCode === 'number' && error.statusCode >= 400 ? error.statusCode : 500;
  if (status >= 500) return { status, body: { status, code: 'internal', message: 'internal error; see the server log' } };
  const code = codeOfStatus(status);
  const message =
    error.code === 'FST_ERR_CTP_INVALID_JSON_BODY' || error instanceof SyntaxError ? `invalid JSON body: ${error.message}` : error.message;
  return { status, body: { status, code, message } };
}
