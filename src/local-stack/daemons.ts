/**
 * The command line of each daemon of the local stack: the engine's own entry points, run by this
 * Node.js as a user would run them (the built JavaScript; from a checkout under tsx, the sources).
 */
import { existsSync } from 'node:fs';
import { extname } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { DaemonSpec } from './daemon.js';
import type { LocalStackOptions } from './options.js';
import { logFileOf, type StatePaths } from './state-dir.js';

// The distributor ends within 10 s of SIGTERM; the job API and the keeper within a few seconds.
const DISTRIBUTOR_GRACE_MS = 15_000;
const API_GRACE_MS = 10_000;
// The harness gives the JVM 5 s before SIGKILL.
const KEEPER_GRACE_MS = 10_000;
// Beyond --shutdown-timeout: the executor's kill grace (5 s) and handing jobs back.
const EXECUTOR_EXTRA_GRACE_MS = 10_000;
// The daemons read their options from JOB_<DAEMON>_* variables too; ones set in the user's shell for
// some other installation must not change the local stack's.
const FOREIGN_SETTINGS = /^JOB_(API|EXECUTOR|DISTRIBUTOR|LOCAL)_/;

/** `node <entry point>` for a bin of this package, next to this module as built (.js) or as source (.ts). */
export function entryPoint(bin: string): { readonly command: string; readonly args: readonly string[]; readonly file: string } {
  const extension = extname(fileURLToPath(import.meta.url));
  const file = fileURLToPath(new URL(`../bin/${bin}${extension}`, import.meta.url));
  return { command: process.execPath, args: extension === '.ts' ? ['--import', 'tsx', file] : [file], file };
}

function daemonEnv(): NodeJS.ProcessEnv {
  return Object.fromEntries(Object.entries(process.env).filter(([name]) => !FOREIGN_SETTINGS.test(name)));
}

function nodeDaemon(name: string, bin: string, args: readonly string[], paths: StatePaths, stopGraceMs: number, ipc = false): DaemonSpec {
  const entry = entryPoint(bin);
  if (!existsSync(entry.file)) throw new Error(`${bin} is not built (${entry.file} is missing); run npm run build`);
  return {
    name,
    command: entry.command,
    args: [...entry.args, ...args],
    env: daemonEnv(),
    logFile: logFileOf(paths, name),
    stopGraceMs,
    ipc,
  };
}

export function keeperSpec(paths: StatePaths, port: number): DaemonSpec {
  return nodeDaemon(
    'zookeeper-keeper',
    'local-stack',
    ['zookeeper-keeper', '--data-dir', paths.zookeeperData, '--port', String(port)],
    paths,
    KEEPER_GRACE_MS,
    true,
  );
}

/** With the stack's ZooKeeper, so a job created over HTTP is enqueued at once (not after the reconciler's period). */
export function apiSpec(paths: StatePaths, host: string, port: number, zkHosts: string, options: LocalStackOptions): DaemonSpec {
  const args = [
    'serve',
    '--database',
    paths.database,
    '--host',
    host,
    '--port',
    String(port),
    '--zk-hosts',
    zkHosts,
    '--zk-auth-file',
    paths.zkAuth,
    '--log-level',
    options.logLevel,
  ];
  return nodeDaemon('job-api', 'job-api', args, paths, API_GRACE_MS);
}

export interface ClientDaemonContext {
  readonly paths: StatePaths;
  readonly options: LocalStackOptions;
  readonly zkHosts: string;
  readonly apiUrl: string;
}

export function executorSpec(context: ClientDaemonContext, name: string): DaemonSpec {
  const { paths, options } = context;
  const args = [
    '--zk-hosts',
    context.zkHosts,
    '--zk-auth-file',
    paths.zkAuth,
    '--api-url',
    context.apiUrl,
    '--api-key-file',
    paths.executorKey,
    '--threads',
    String(options.threads),
    '--shutdown-timeout',
    String(options.shutdownTimeoutMs / 1000),
    '--name',
    name,
    '--log-level',
    options.logLevel,
  ];
  return nodeDaemon('job-executor', 'job-executor', args, paths, options.shutdownTimeoutMs + EXECUTOR_EXTRA_GRACE_MS);
}

export function distributorSpec(context: ClientDaemonContext, name: string): DaemonSpec {
  const { paths, options } = context;
  const args = [
    ...options.distributions,
    '--all',
    '--zk-hosts',
    context.zkHosts,
    '--zk-auth-file',
    paths.zkAuth,
    '--api-url',
    context.apiUrl,
    '--api-key-file',
    paths.executorKey,
    '--name',
    name,
    '--log-level',
    options.logLevel,
  ];
  return nodeDaemon('job-distributor', 'job-distributor', args, paths, DISTRIBUTOR_GRACE_MS);
}
