/**
 * The system under test of a chaos run, as a fleet would run it on one machine: a 3-node ZooKeeper
 * ensemble, the job API on SQLite or PostgreSQL, executors and distributors as separate processes.
 * Each executor reaches ZooKeeper and the API through proxies of its own, so that it alone can be cut
 * off from either. Faults are applied through the handles this module returns.
 */
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ApiCredentials } from '../src/api/client/options.js';
import { ChildDaemon } from '../src/harness/child-daemon.js';
import { freePort } from '../src/harness/free-port.js';
import { startPostgres, type PostgresServer } from '../src/harness/postgres-server.js';
import { startEnsemble, type ZooKeeperEnsemble } from '../src/harness/zookeeper-ensemble.js';
import { waitForHttp } from '../src/local-stack/probes.js';
import { Releasers, startOrRelease } from '../src/util/releasers.js';
import { ChaosDaemon, type UnexpectedExit } from './daemon.js';
import { startTcpProxy, type TcpProxy } from './tcp-proxy.js';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const CHAOS_ACTIONS_DIR = join(ROOT, 'chaos/actions');
export const CHAOS_DISTRIBUTORS_DIR = join(ROOT, 'chaos/distributors');
export const CHAOS_DISTRIBUTIONS = ['chaos_tick', 'chaos_reconciler'] as const;
export const QUEUE_PATH = '/job';
export const ELECTION_PATH = '/election';

export type StoreKind = 'sqlite' | 'postgres';

const ZOOKEEPER_READY_TIMEOUT_MS = 120_000;
const API_READY_TIMEOUT_MS = 60_000;

export interface ClusterOptions {
  readonly dir: string;
  readonly store: StoreKind;
  readonly executors: number;
  readonly threads: number;
  readonly distributors: number;
  readonly sessionTimeoutSeconds: number;
  readonly sideEffectLog: string;
}

/** An executor and the proxies that are its only way to ZooKeeper and to the API. */
export interface ExecutorNode {
  readonly daemon: ChaosDaemon;
  readonly zkProxies: readonly TcpProxy[];
  readonly apiProxy: TcpProxy;
}

export interface ChaosCluster {
  readonly ensemble: ZooKeeperEnsemble;
  readonly zkHosts: string;
  readonly apiUrl: string;
  readonly admin: ApiCredentials;
  readonly api: ChaosDaemon;
  readonly executors: readonly ExecutorNode[];
  readonly distributors: readonly ChaosDaemon[];
  readonly unexpectedExits: readonly UnexpectedExit[];
  stop(): Promise<void>;
}

export async function startCluster(options: ClusterOptions): Promise<ChaosCluster> {
  const unexpectedExits: UnexpectedExit[] = [];
  const noteExit = (exit: UnexpectedExit): void => {
    unexpectedExits.push(exit);
  };
  return startOrRelease(new Releasers(), async (releasers) => {
    // Generous: under heavy load a JVM restarting after a kill can take a minute to rejoin the quorum.
    const ensemble = await startEnsemble({ size: 3, startTimeoutMs: ZOOKEEPER_READY_TIMEOUT_MS });
    releasers.add('the ZooKeeper ensemble', () => ensemble.stop());
    const zkHosts = ensemble.connectionString;

    const database = await databaseOf(options, releasers);
    const admin = await createKey(database, ['create-admin-key']);
    const executorKey = await createKey(database, ['create-key', 'executor', '--description', 'chaos executors']);

    const apiPort = await freePort();
    const apiUrl = `http://127.0.0.1:${String(apiPort)}`;
    const api = new ChaosDaemon(
      {
        name: 'job-api',
        bin: 'job-api.ts',
        // The session key in a file of the run, so sessions outlive the API's restarts on PostgreSQL too.
        args: [
          'serve',
          '--database',
          database,
          '--port',
          String(apiPort),
          '--log-level',
          'warn',
          '--session-secret-file',
          join(options.dir, 'session-secret'),
        ],
        env: {},
        logFile: join(options.dir, 'job-api.log'),
      },
      noteExit,
    );
    api.start();
    releasers.add('job-api', () => api.close());
    // The API may die while starting: it is then restarted, so the wait is bounded by time only.
    await waitForHttp(`${apiUrl}/api/job`, { timeoutMs: API_READY_TIMEOUT_MS, signal: new AbortController().signal });

    const executors: ExecutorNode[] = [];
    for (let index = 1; index <= options.executors; index++) {
      const zkProxies = await Promise.all(ensemble.members.map((member) => startTcpProxy({ host: '127.0.0.1', port: member.port })));
      const apiProxy = await startTcpProxy({ host: '127.0.0.1', port: apiPort });
      for (const proxy of [...zkProxies, apiProxy]) releasers.add(`proxy ${proxy.address}`, () => proxy.close());
      const name = `executor-${String(index)}`;
      const daemon = new ChaosDaemon(
        {
          name,
          bin: 'job-executor.ts',
          args: [
            '--zk-hosts',
            zkProxies.map((proxy) => proxy.address).join(','),
            '--api-url',
            `http://${apiProxy.address}`,
            '--threads',
            String(options.threads),
            '--actions-dir',
            CHAOS_ACTIONS_DIR,
            '--session-timeout',
            String(options.sessionTimeoutSeconds),
            '--kill-grace',
            '1',
            '--shutdown-timeout',
            '5',
            '--api-timeout',
            '5',
            '--queue-path',
            QUEUE_PATH,
            '--log-level',
            'info',
          ],
          env: {
            JOB_EXECUTOR_API_KEY: executorKey.key,
            JOB_EXECUTOR_API_SECRET: executorKey.secret,
            CHAOS_SIDE_EFFECT_LOG: options.sideEffectLog,
          },
          logFile: join(options.dir, `${name}.log`),
        },
        noteExit,
      );
      daemon.start();
      releasers.add(name, () => daemon.close());
      executors.push({ daemon, zkProxies, apiProxy });
    }

    const distributors: ChaosDaemon[] = [];
    for (let index = 1; index <= options.distributors; index++) {
      const name = `distributor-${String(index)}`;
      const daemon = new ChaosDaemon(
        {
          name,
          bin: 'job-distributor.ts',
          args: [
            ...CHAOS_DISTRIBUTIONS,
            '--zk-hosts',
            zkHosts,
            '--api-url',
            apiUrl,
            '--distributors-dir',
            CHAOS_DISTRIBUTORS_DIR,
            '--session-timeout',
            String(options.sessionTimeoutSeconds),
            '--queue-path',
            QUEUE_PATH,
            '--election-path',
            ELECTION_PATH,
            '--name',
            name,
            '--log-level',
            'info',
          ],
          env: { JOB_DISTRIBUTOR_API_KEY: admin.key, JOB_DISTRIBUTOR_API_SECRET: admin.secret },
          logFile: join(options.dir, `${name}.log`),
        },
        noteExit,
      );
      daemon.start();
      releasers.add(name, () => daemon.close());
      distributors.push(daemon);
    }

    return { ensemble, zkHosts, apiUrl, admin, api, executors, distributors, unexpectedExits, stop: () => releasers.releaseAll() };
  });
}

async function databaseOf(options: ClusterOptions, releasers: Releasers): Promise<string> {
  if (options.store === 'sqlite') return join(options.dir, 'jobs.sqlite');
  const postgres: PostgresServer = await startPostgres();
  releasers.add('PostgreSQL', () => postgres.stop());
  return postgres.createDatabase('chaos');
}

/** `job-api <command...> --database <database>`, and the key it prints. */
async function createKey(database: string, command: readonly string[]): Promise<ApiCredentials> {
  const child = ChildDaemon.spawn({
    name: 'job-api',
    command: process.execPath,
    args: ['--import', 'tsx', join(ROOT, 'src/bin/job-api.ts'), ...command, '--database', database, '--log-level', 'warn'],
    cwd: ROOT,
    stdout: 'collect',
    stderr: 'collect',
  });
  const { code } = await child.exited;
  const output = child.stdout.lines.join('\n');
  const key = /^\s*key:\s+(\S+)/m.exec(output)?.[1];
  const secret = /^\s*secret:\s+(\S+)/m.exec(output)?.[1];
  if (code !== 0 || key === undefined || secret === undefined) {
    throw new Error(`job-api ${command.join(' ')} failed (exit ${String(code)}): ${child.stderr.tail(5).join(' | ')}`);
  }
  return { key, secret };
}
