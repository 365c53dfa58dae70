/**
 * What the daemons' entry points share: the options every daemon that works on the queue takes
 * (ZooKeeper, the job API and its key, logging, the metrics port), the one-line failure of a bad
 * command line, opening the metrics endpoint, and the mapping of SIGTERM/SIGINT onto a daemon's
 * stop() and the release of what it holds. Only entry points import this module.
 */
import type { Argv } from 'yargs';
import type { Registry } from 'prom-client';
import { DEFAULT_API_URL, DEFAULT_METRICS_HOST, DEFAULT_QUEUE_PATH, numberFlag, type MetricsOptions } from '../cli/option-readers.js';
import { startMetricsEndpoint, type MetricsEndpoint, type ReadinessChecks } from '../metrics/metrics-server.js';
import { messageOf, toError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { Releasers } from '../util/releasers.js';
import { LOG_LEVELS } from '../util/winston-logger.js';

export interface EngineOptionDefaults {
  readonly apiTimeoutSeconds: number;
  readonly sessionTimeoutSeconds: number;
  readonly connectTimeoutSeconds: number;
}

/** Writes `<command>: <message>` and exits: 2 for a bad command line, 1 for a failed start. */
export function failer(command: string): (message: string, code?: number) => never {
  return (message, code = 2) => {
    process.stderr.write(`${command}: ${message}\n`);
    process.exit(code);
  };
}

/** `--zk-hosts`, the `--api-*` options, the session, queue and log options; `envPrefix` names the variables. */
export function withEngineOptions<T>(argv: Argv<T>, envPrefix: string, defaults: EngineOptionDefaults) {
  return argv
    .option('zk-hosts', { type: 'string', describe: 'ZooKeeper connection string H:P[,H:P][/chroot] (required)' })
    .option('zk-auth-file', {
      type: 'string',
      describe: 'file (mode 0600) with the ZooKeeper digest identity user:password; every znode created then carries its ACL',
    })
    .option('api-url', {
      type: 'string',
      describe: `job API root (default ${DEFAULT_API_URL}); repeat it or give a comma-separated list for replicas of one API, which calls are spread over and fail over between`,
    })
    .option('api-ca-file', {
      type: 'string',
      describe: 'PEM certificates to trust for an https:// --api-url (a private CA or self-signed)',
    })
    .option('api-key', { type: 'string', describe: `API key (prefer --api-key-file or ${envPrefix}_API_KEY)` })
    .option('api-secret', { type: 'string', describe: `API secret (prefer --api-key-file or ${envPrefix}_API_SECRET)` })
    .option('api-key-file', { type: 'string', describe: 'file with the API key: JSON {key, secret} or "key: ..." and "secret: ..." lines' })
    .option('api-compatibility', { choices: ['auto', 'engine', 'nuvla'], describe: 'job API flavour (default auto: detected)' })
    .option('api-timeout', numberFlag(`seconds per API request (default ${defaults.apiTimeoutSeconds})`))
    .option('session-timeout', numberFlag(`ZooKeeper session timeout in seconds (default ${defaults.sessionTimeoutSeconds})`))
    .option('connect-timeout', numberFlag(`seconds to wait for ZooKeeper at start (default ${defaults.connectTimeoutSeconds})`))
    .option('queue-path', { type: 'string', describe: `ZooKeeper queue root (default ${DEFAULT_QUEUE_PATH})` })
    .option('log-level', { choices: LOG_LEVELS, describe: 'error, warn, info (default) or debug' })
    .option('log-file', { type: 'string', describe: 'also log to this file (rotated at 10 MB, 5 kept)' })
    .option('metrics-port', numberFlag('serve /metrics (Prometheus), /healthz and /readyz on this port (default: none)'))
    .option('metrics-host', { type: 'string', describe: `address of the metrics port (default ${DEFAULT_METRICS_HOST})` });
}

/** SIGTERM and SIGINT call `stop` (every time: a daemon may treat a second one as "hurry"); the log is closed after. */
function stopOnSignals(stop: () => Promise<void>, logger: Logger & { close(): void }): void {
  const onSignal = (signal: NodeJS.Signals): void => {
    logger.info('signal received', { signal });
    void stop().then(
      () => {
        logger.close();
      },
      (error: unknown) => {
        logger.error('clean stop failed', { error: toError(error) });
        process.exitCode = 1;
        logger.close();
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

/**
 * SIGTERM and SIGINT release what the daemon holds, last-opened-first (the daemon's own stop() among
 * it); every later signal reaches the daemon's stop() again, which it may treat as "hurry" (the
 * executor stops waiting for running jobs), and then waits for the same release.
 */
export function releaseOnSignals(releasers: Releasers, daemon: { stop(): Promise<void> }, logger: Logger & { close(): void }): void {
  let signalled = false;
  stopOnSignals(async () => {
    if (signalled) await daemon.stop();
    signalled = true;
    await releasers.releaseAll();
  }, logger);
}

/**
 * Opens the metrics endpoint when `--metrics-port` asked for one. It is opened before the daemon
 * starts, so a port already taken fails the start (one line, exit 1) before anything else is touched.
 */
export async function serveMetrics(
  settings: MetricsOptions | undefined,
  metrics: { readonly registry: Registry; readiness(): ReadinessChecks } | undefined,
  logger: Logger & { close(): void },
  fail: (message: string, code?: number) => never,
): Promise<MetricsEndpoint | undefined> {
  if (settings === undefined || metrics === undefined) return undefined;
  try {
    return await startMetricsEndpoint({ ...settings, registry: metrics.registry, readiness: () => metrics.readiness(), logger });
  } catch (error) {
    logger.close();
    return fail(messageOf(error), 1);
  }
}
