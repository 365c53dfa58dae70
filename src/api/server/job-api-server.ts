/**
 * The job API daemon: its stores, its metrics endpoint, its event hub (relayed to the other replicas
 * on a shared PostgreSQL database) and its Fastify app, opened in that order and released in the
 * reverse one; with --zk-hosts also the enqueuer of created jobs, between the hub and the app.
 * States, in order:
 *   STARTING -> RUNNING -> STOPPING (the listener closes, open requests finish; then the created-job
 *   enqueuer, the relay, the metrics endpoint and the stores close) -> STOPPED.
 * A start that fails half-way releases what it had opened and rethrows its own error; signals are
 * the entry point's business: it calls stop().
 */
import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';
import { toError } from '../../util/errors.js';
import { Authenticator, type AuthenticatorOptions } from '../auth/authenticator.js';
import type { CredentialStore } from '../auth/credential-store.js';
import { describeDatabase, isPostgresUrl, openBackends } from '../backends.js';
import { loadSessionSecret } from '../auth/session-secret.js';
import type { JobStore } from '../store/job-store.js';
import { startMetricsEndpoint } from '../../metrics/metrics-server.js';
import type { Logger } from '../../util/logger.js';
import { Releasers, startOrRelease } from '../../util/releasers.js';
import { buildJobApi } from './app.js';
import { CreatedJobEnqueuer } from './created-job-enqueuer.js';
import { JobEventHub } from './event-hub.js';
import type { JobApiServerOptions } from './options.js';
import { PgEventRelay } from './pg-event-relay.js';
import { loadUiAssets } from './ui-assets.js';
import { EngineViews } from '../zk-views/engine-views.js';

export type JobApiServerState = 'STARTING' | 'RUNNING' | 'STOPPING' | 'STOPPED';

async function readTls(files: { certFile: string; keyFile: string }): Promise<{ cert: Buffer; key: Buffer }> {
  const read = (file: string, what: string): Promise<Buffer> =>
    readFile(file).catch((error: unknown) => {
      throw new Error(`TLS ${what} ${file} cannot be read: ${toError(error).message}`, { cause: error });
    });
  return { cert: await read(files.certFile, 'certificate'), key: await read(files.keyFile, 'key') };
}

/** The two stores the API serves from. */
export interface JobApiStores {
  readonly jobs: JobStore;
  readonly credentials: CredentialStore;
}

/** What a caller embedding the server (a test) may hand it instead of what the options would make. */
export interface JobApiServerParts {
  /** Stores already open: served as they are and left open by stop(), since their opener closes them. */
  readonly stores?: JobApiStores;
  readonly authenticator?: AuthenticatorOptions;
  /** Called with the app once its routes are registered, before it listens (a test's own hooks). */
  readonly configureApp?: (app: FastifyInstance) => void;
}

interface Serving {
  readonly stores: JobApiStores;
  readonly address: string;
  readonly port: number;
}

export class JobApiServer {
  readonly options: JobApiServerOptions;
  readonly #logger: Logger;
  readonly #releasers = new Releasers();
  #state: JobApiServerState = 'STARTING';
  #serving: Serving | undefined;
  #stopped: Promise<void> | undefined;

  private constructor(options: JobApiServerOptions, logger: Logger) {
    this.options = options;
    this.#logger = logger;
  }

  /** Opens everything and listens; on failure what was opened is released and the error rethrown. */
  static async start(options: JobApiServerOptions, logger: Logger, parts: JobApiServerParts = {}): Promise<JobApiServer> {
    const server = new JobApiServer(options, logger);
    try {
      server.#serving = await startOrRelease(
        server.#releasers,
        (releasers) => server.#open(releasers, parts),
        (error) => {
          logger.error('releasing what a failed start had opened failed', { error });
        },
      );
    } catch (error) {
      server.#state = 'STOPPED';
      throw error;
    }
    server.#state = 'RUNNING';
    return server;
  }

  get state(): JobApiServerState {
    return this.#state;
  }

  /** `http://host:port` as the listener bound it. */
  get address(): string {
    return this.#running().address;
  }

  /** The port actually bound (for a start on port 0). */
  get port(): number {
    return this.#running().port;
  }

  get stores(): JobApiStores {
    return this.#running().stores;
  }

  /**
   * Closes the listener (letting open requests finish), then the relay, the metrics endpoint and the
   * stores, every one even when one fails (the failures are thrown together). Idempotent: a second
   * call gets the first call's promise.
   */
  stop(): Promise<void> {
    this.#stopped ??= this.#shutdown();
    return this.#stopped;
  }

  #running(): Serving {
    if (this.#serving === undefined) throw new Error('the job API server has not started');
    return this.#serving;
  }

  async #shutdown(): Promise<void> {
    this.#state = 'STOPPING';
    try {
      await this.#releasers.releaseAll();
    } finally {
      this.#state = 'STOPPED';
    }
    this.#logger.info('job api stopped');
  }

  /** Opened in the order whose reverse is the right order to close: the listener first, the stores last. */
  async #open(releasers: Releasers, parts: JobApiServerParts): Promise<Serving> {
    const { options } = this;
    const logger = this.#logger;
    let stores = parts.stores;
    if (stores === undefined) {
      const signingSecret = options.sessionSecretFile === undefined ? undefined : await loadSessionSecret(options.sessionSecretFile);
      if (signingSecret === undefined) {
        // Worded without "secret": the log is checked for leaks by that word (job-api-bin.test.ts).
        logger.warn(
          'no session signing key file given: cookies are signed with a key of this process alone, so other replicas refuse them',
        );
      }
      const backendOptions = signingSecret === undefined ? {} : { signingSecret };
      stores = await releasers.open('database', openBackends(options.database, backendOptions), (backends) => backends.close());
    }
    // prom-client (13 MB of a daemon's memory) is loaded only when metrics are asked for.
    const metrics =
      options.metrics === undefined
        ? undefined
        : await import('../../metrics/api-metrics.js').then(
            async ({ ApiMetrics }) =>
              new ApiMetrics((await import('../../metrics/registry.js')).createDaemonRegistry(), stores.jobs, logger),
          );
    if (options.metrics !== undefined && metrics !== undefined) {
      // On its own port, so /metrics is never public where the API is; closed after the API, so a
      // scraper sees the drain to its end.
      await releasers.open(
        'metrics endpoint',
        startMetricsEndpoint({ ...options.metrics, registry: metrics.registry, readiness: () => metrics.readiness(), logger }),
        (endpoint) => endpoint.close(),
      );
    }
    const events = new JobEventHub(logger);
    // Replicas sharing a PostgreSQL database pass each other their job events (one SQLite file has one server).
    if (isPostgresUrl(options.database)) {
      await releasers.open('job event relay', PgEventRelay.start(options.database, events, logger), (relay) => relay.close());
    }
    // Opened before the listener and closed after it, so every request's enqueue has its session.
    const created = options.queue === undefined ? undefined : CreatedJobEnqueuer.start(options.queue, events, logger);
    if (created !== undefined) releasers.add('created-job enqueuer', () => created.close());
    const views = options.queue === undefined ? undefined : new EngineViews(options.queue, logger);
    if (views !== undefined) releasers.add('dashboard ZooKeeper views', () => views.close());
    const ui = await loadUiAssets();
    if (!ui.built) logger.warn('the dashboard is not built: /ui/ says so until npm run build is run', { dir: ui.dir });
    const tls = options.tls === undefined ? undefined : await readTls(options.tls);
    const app = await buildJobApi({
      ...(tls === undefined ? {} : { tls }),
      events,
      ...(created === undefined
        ? {}
        : { enqueueCreated: (jobs) => created.enqueueCreated(jobs), parkBeyondRoom: (jobs) => created.parkBeyondRoom(jobs) }),
      ...(views === undefined ? {} : { engineViews: views }),
      ui,
      ...(metrics === undefined ? {} : { requests: metrics }),
      store: stores.jobs,
      access: new Authenticator(stores.credentials, () => new Date(), parts.authenticator ?? {}),
      logger,
      bodyLimitBytes: options.bodyLimitBytes,
      maxBulkCreate: options.maxBulkCreate,
      credentialLimits: options.credentialLimits,
      trustProxy: options.trustProxy,
    });
    // Registered before listening, so a listen that fails (the port taken) closes the app too.
    releasers.add('HTTP server', () => app.close());
    parts.configureApp?.(app);
    const address = await app.listen({ host: options.host, port: options.port });
    const bound = app.server.address();
    if (bound === null || typeof bound === 'string') throw new Error(`the job API listens at an unexpected address: ${String(bound)}`);
    if ((await stores.credentials.count()) === 0) {
      logger.warn('no API key exists yet: nobody can log in; create one with `job-api create-admin-key`');
    }
    logger.info('job api listening', { address, database: describeDatabase(options.database), store: stores.jobs.kind });
    return { stores, address, port: bound.port };
  }
}
