/**
 * A private PostgreSQL cluster for tests and the local stack: Debian's binaries, a temporary
 * directory, a free port on 127.0.0.1, durability switched off for speed, gone again on stop().
 */
import { execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import { chown, mkdtemp, open, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';

import { Client } from 'pg';

import { commandFailure } from './debian-package.js';
import { freePort } from './free-port.js';
import { ensurePostgresInstalled } from './postgres-install.js';
import { waitFor } from './wait-for.js';

const run = promisify(execFile);

export const POSTGRES_HOST = '127.0.0.1';
/** The superuser initdb creates; trust authentication, so no password. */
export const POSTGRES_SUPERUSER = 'postgres';
/** PostgreSQL refuses to run as root; as root the cluster runs as this OS user. */
const POSTGRES_OS_USER = 'postgres';
// setpriv makes the kernel SIGKILL the server when this process dies, even by SIGKILL or Ctrl-C, so a
// crashed test run cannot leave a PostgreSQL behind holding its port; it execs, so the PID stays the server's.
const SETPRIV = '/usr/bin/setpriv';
const STOP_GRACE_MS = 5000;
const LOG_TAIL_BYTES = 2048;

export interface PostgresServer {
  /** `postgres://postgres@127.0.0.1:<port>/postgres` */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  readonly dataDir: string;
  readonly logFile: string;
  /** Creates an empty database and returns its URL. */
  createDatabase(name: string): Promise<string>;
  /** Fast shutdown, SIGKILL after 5 s, wait for exit, remove the directory. Idempotent. */
  stop(): Promise<void>;
}

export interface StartPostgresOptions {
  readonly port?: number;
  /** Deadline for initdb plus the server accepting connections; default 60 s. */
  readonly startTimeoutMs?: number;
}

interface ServerRun {
  readonly pid: number;
  exited: boolean;
  readonly exit: Promise<string>;
}

export async function startPostgres(options: StartPostgresOptions = {}): Promise<PostgresServer> {
  const deadline = Date.now() + (options.startTimeoutMs ?? 60_000);
  const binDir = await ensurePostgresInstalled();
  const port = options.port ?? (await freePort());
  const dir = await mkdtemp(join(tmpdir(), 'pg-harness-'));
  const dataDir = join(dir, 'data');
  const logFile = join(dir, 'postgres.log');
  let server: ServerRun | undefined;
  try {
    const prefix = await runAsPrefix(dir);
    await initdb(prefix, binDir, dir, dataDir, deadline);
    server = await spawnServer(prefix, binDir, { dir, dataDir, logFile, port });
    const url = `postgres://${POSTGRES_SUPERUSER}@${POSTGRES_HOST}:${port}/postgres`;
    await waitUntilReady(server, url, logFile, deadline);
    return handle(server, { url, port, dir, dataDir, logFile });
  } catch (error) {
    if (server !== undefined) await terminate(server);
    await rm(dir, { recursive: true, force: true });
    throw error;
  }
}

/** The command prefix that runs a PostgreSQL binary as the right user, dying with us. */
async function runAsPrefix(dir: string): Promise<string[]> {
  const deathSignal = existsSync(SETPRIV) ? [SETPRIV, '--pdeathsig', 'KILL'] : [];
  if (process.getuid?.() !== 0) return deathSignal;
  if (deathSignal.length === 0)
    throw new Error(`running PostgreSQL as root needs ${SETPRIV} (Debian's util-linux) to drop to ${POSTGRES_OS_USER}`);
  const [uid, gid] = await Promise.all([idOf('-u'), idOf('-g')]);
  // initdb creates the data directory inside, and the server its socket: both as postgres.
  await chown(dir, uid, gid);
  return [SETPRIV, `--reuid=${POSTGRES_OS_USER}`, `--regid=${POSTGRES_OS_USER}`, '--init-groups', '--pdeathsig', 'KILL'];
}

async function idOf(flag: '-u' | '-g'): Promise<number> {
  try {
    const { stdout } = await run('id', [flag, POSTGRES_OS_USER]);
    return Number.parseInt(stdout.trim(), 10);
  } catch (error) {
    throw new Error(
      `PostgreSQL refuses to run as root and there is no "${POSTGRES_OS_USER}" user to run it as ` +
        `(Debian's postgresql package creates it): ${commandFailure(error)}`,
      { cause: error },
    );
  }
}

async function initdb(prefix: readonly string[], binDir: string, dir: string, dataDir: string, deadline: number): Promise<void> {
  // --no-locale: text compares bytewise, as SQLite's does. --no-sync: a throwaway cluster.
  const [command, ...args] = [
    ...prefix,
    join(binDir, 'initdb'),
    ...['-D', dataDir, '-A', 'trust', '-U', POSTGRES_SUPERUSER, '-E', 'UTF8', '--no-locale', '--no-sync'],
  ];
  if (command === undefined) throw new Error('empty initdb command line');
  try {
    await run(command, args, { cwd: dir, timeout: Math.max(1, deadline - Date.now()), killSignal: 'SIGKILL' });
  } catch (error) {
    throw new Error(`initdb failed: ${commandFailure(error)}`, { cause: error });
  }
}

async function spawnServer(
  prefix: readonly string[],
  binDir: string,
  where: { dir: string; dataDir: string; logFile: string; port: number },
): Promise<ServerRun> {
  const settings = ['listen_addresses=127.0.0.1', 'fsync=off', 'synchronous_commit=off', 'full_page_writes=off'];
  const [command, ...args] = [
    ...prefix,
    join(binDir, 'postgres'),
    ...['-D', where.dataDir, '-p', String(where.port), '-k', where.dir],
    ...settings.flatMap((setting) => ['-c', setting]),
  ];
  if (command === undefined) throw new Error('empty postgres command line');
  // A file descriptor, not a pipe: a pipe nobody drains would block the server once full.
  const log = await open(where.logFile, 'a');
  try {
    const child = spawn(command, args, { cwd: where.dir, stdio: ['ignore', log.fd, log.fd] });
    const { pid } = child;
    if (pid === undefined) {
      const failure: unknown[] = await once(child, 'error');
      throw new Error(`could not spawn ${command}: ${String(failure[0])}`);
    }
    const server: ServerRun = {
      pid,
      exited: false,
      exit: new Promise<string>((resolveExit) => {
        child.once('exit', (code, signal) => {
          server.exited = true;
          resolveExit(signal === null ? `code ${String(code)}` : `signal ${signal}`);
        });
      }),
    };
    return server;
  } finally {
    await log.close();
  }
}

async function waitUntilReady(server: ServerRun, url: string, logFile: string, deadline: number): Promise<void> {
  const exitedEarly = new AbortController();
  void server.exit.then((how) => {
    exitedEarly.abort(new Error(`postgres (pid ${server.pid}) exited with ${how} before it accepted connections`));
  });
  try {
    await waitFor(() => ping(url), {
      timeoutMs: Math.max(1, deadline - Date.now()),
      intervalMs: 50,
      signal: exitedEarly.signal,
      message: `PostgreSQL at ${url} to accept connections`,
    });
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new Error(`${reason}\n--- last ${LOG_TAIL_BYTES} bytes of ${logFile} ---\n${await readTail(logFile)}`, {
      cause: error,
    });
  }
}

async function ping(url: string): Promise<true> {
  await withClient(url, async (client) => {
    await client.query('SELECT 1');
  });
  return true;
}

async function withClient<T>(url: string, use: (client: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 2000 });
  // A server that shuts down under a connected client reports it here; the awaited call fails anyway.
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await use(client);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function handle(server: ServerRun, facts: { url: string; port: number; dir: string; dataDir: string; logFile: string }): PostgresServer {
  let stopping: Promise<void> | undefined;
  return {
    url: facts.url,
    port: facts.port,
    pid: server.pid,
    dataDir: facts.dataDir,
    logFile: facts.logFile,
    async createDatabase(name: string): Promise<string> {
      if (!/^[a-z_][a-z0-9_]{0,62}$/.test(name)) {
        throw new Error(`database names here are lower-case identifiers (a-z, 0-9, _), got ${JSON.stringify(name)}`);
      }
      await withClient(facts.url, async (client) => {
        await client.query(`CREATE DATABASE ${name}`);
      });
      return `postgres://${POSTGRES_SUPERUSER}@${POSTGRES_HOST}:${facts.port}/${name}`;
    },
    stop(): Promise<void> {
      stopping ??= (async () => {
        await terminate(server);
        await rm(facts.dir, { recursive: true, force: true });
      })();
      return stopping;
    },
  };
}

/**
 * SIGINT is PostgreSQL's fast shutdown: it ends open sessions and exits cleanly. SIGTERM's smart
 * shutdown would wait for every client (a test's leaked pool) and always run into the SIGKILL, and a
 * SIGKILLed postmaster leaves its backends and shared memory behind.
 */
async function terminate(server: ServerRun): Promise<void> {
  if (server.exited) return;
  signal(server, 'SIGINT');
  const timer = setTimeout(() => {
    signal(server, 'SIGKILL');
  }, STOP_GRACE_MS);
  try {
    await server.exit;
  } finally {
    clearTimeout(timer);
  }
}

function signal(server: ServerRun, name: NodeJS.Signals): void {
  if (server.exited) return;
  try {
    process.kill(server.pid, name);
  } catch (error) {
    // ESRCH: it died and its 'exit' event is on its way.
    if (!(error instanceof Error && 'code' in error && error.code === 'ESRCH')) throw error;
  }
}

async function readTail(path: string): Promise<string> {
  try {
    return (await readFile(path)).subarray(-LOG_TAIL_BYTES).toString('utf8');
  } catch (error) {
    return `(cannot read the log: ${error instanceof Error ? error.message : String(error)})`;
  }
}
