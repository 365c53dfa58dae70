/**
 * Job API benchmark: creates/s one by one and in bulk, conditional edits/s and searches/s, against
 * the real `job-api` server in its own process, on SQLite and on PostgreSQL (a private cluster),
 * from one run. The load comes from this process over keep-alive HTTP with a session cookie.
 *
 *   npm run bench:api [-- --json] [-- --seconds N] [-- --only sqlite|postgres]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { Agent, request as httpRequest } from 'node:http';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../src/harness/free-port.js';
import { waitFor } from '../src/harness/wait-for.js';
import { startPostgres } from '../src/harness/postgres-server.js';
import { parseBenchArgs } from './bench-args.js';

interface Figures {
  createPerSec: number;
  bulkCreatePerSec: number;
  editPerSec: number;
  searchPerSec: number;
}

const { json, seconds, only } = parseBenchArgs(process.argv.slice(2), 5);
const CONCURRENCY = 32;
const BULK_SIZE = 1000;
const BIN = fileURLToPath(new URL('../src/bin/job-api.ts', import.meta.url));

const log = (line: string): void => {
  process.stdout.write(`${line}\n`);
};

interface Response {
  status: number;
  body: string;
  headers: Record<string, string | string[] | undefined>;
}

class Http {
  readonly #agent = new Agent({ keepAlive: true, maxSockets: CONCURRENCY * 2 });
  #cookie = '';
  constructor(readonly port: number) {}

  send(method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Response> {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: '127.0.0.1',
          port: this.port,
          method,
          path,
          agent: this.#agent,
          headers: {
            ...(payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) }),
            ...(this.#cookie === '' ? {} : { cookie: this.#cookie }),
            ...headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), headers: res.headers });
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  async login(key: string, secret: string): Promise<void> {
    const res = await this.send('POST', '/api/session', { template: { href: 'session-template/api-key', key, secret } });
    const setCookie = res.headers['set-cookie'];
    const cookie = Array.isArray(setCookie) ? setCookie[0] : setCookie;
    if (res.status !== 201 || cookie === undefined) throw new Error(`login failed: ${String(res.status)} ${res.body}`);
    this.#cookie = cookie.split(';')[0] ?? '';
  }

  close(): void {
    this.#agent.destroy();
  }
}

function expect(res: Response, status: number, what: string): Response {
  if (res.status !== status) throw new Error(`${what}: expected ${String(status)}, got ${String(res.status)} ${res.body.slice(0, 300)}`);
  return res;
}

/** Runs `worker` on `concurrency` loops for `durationMs`; returns how many units they completed per second. */
async function rate(concurrency: number, durationMs: number, worker: (loop: number) => Promise<number>): Promise<number> {
  const deadline = performance.now() + durationMs;
  const started = performance.now();
  let units = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async (_, loop) => {
      while (performance.now() < deadline) {
        // Not `units += await ...`: that reads `units` before the await and loses concurrent counts.
        const done = await worker(loop);
        units += done;
      }
    }),
  );
  return Math.round((units * 1000) / (performance.now() - started));
}

async function runCommand(argv: string[]): Promise<string> {
  const child = spawn(process.execPath, ['--import', 'tsx', BIN, ...argv], { stdio: ['ignore', 'pipe', 'inherit'] });
  const chunks: Buffer[] = [];
  child.stdout.on('data', (chunk: Buffer) => chunks.push(chunk));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`job-api ${argv[0] ?? ''} exited with ${String(code)}`);
  return Buffer.concat(chunks).toString('utf8');
}

async function startServer(database: string): Promise<{ http: Http; stop: () => Promise<void> }> {
  const output = await runCommand(['create-admin-key', '--database', database]);
  const key = /^\s*key:\s+(\S+)/m.exec(output)?.[1];
  const secret = /^\s*secret:\s+(\S+)/m.exec(output)?.[1];
  if (key === undefined || secret === undefined) throw new Error(`no key in: ${output}`);
  const port = await freePort();
  const server: ChildProcess = spawn(
    '/usr/bin/setpriv',
    [
      '--pdeathsig',
      'KILL',
      process.execPath,
      '--import',
      'tsx',
      BIN,
      'serve',
      '--database',
      database,
      '--port',
      String(port),
      '--log-level',
      'warn',
    ],
    {
      stdio: ['ignore', 'inherit', 'inherit'],
    },
  );
  const http = new Http(port);
  const stop = async (): Promise<void> => {
    http.close();
    if (server.exitCode !== null || server.signalCode !== null) return;
    const exited = once(server, 'exit');
    server.kill('SIGTERM');
    await exited;
  };
  try {
    await waitFor(
      () =>
        http.send('GET', '/api/job').then(
          (res) => res.status === 401,
          () => false,
        ),
      { timeoutMs: 30_000, message: 'job-api listening' },
    );
    await http.login(key, secret);
  } catch (error) {
    await stop();
    throw error;
  }
  return { http, stop };
}

async function measure(http: Http): Promise<Figures> {
  const create = (): Promise<number> =>
    http.send('POST', '/api/job', { action: 'bench_action', priority: 100, payload: '{"n":1}' }).then((res) => {
      expect(res, 201, 'create');
      return 1;
    });
  await rate(CONCURRENCY, 1000, create); // warm-up: JIT and the database's caches
  const createPerSec = await rate(CONCURRENCY, seconds * 1000, create);

  const bulk = Array.from({ length: BULK_SIZE }, (_, i) => ({ action: 'bench_bulk', priority: i % 1000 }));
  const bulkCreatePerSec = await rate(4, seconds * 1000, async () => {
    expect(await http.send('POST', '/api/job', bulk, { bulk: 'yes' }), 201, 'bulk create');
    return BULK_SIZE;
  });

  // Each loop owns its own jobs and follows their revisions, as an executor reporting progress does.
  const owned: { id: string; revision: number }[][] = await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      const jobs = [];
      for (let i = 0; i < 20; i++) {
        const res = expect(await http.send('POST', '/api/job', { action: 'bench_edit' }), 201, 'create for edit');
        const id = (JSON.parse(res.body) as { 'resource-id': string })['resource-id'];
        jobs.push({ id, revision: 1 });
      }
      expect(await http.send('PUT', `/api/${jobs[0]?.id ?? ''}`, { state: 'RUNNING' }, { 'if-match': '"1"' }), 200, 'claim');
      return jobs;
    }),
  );
  for (const jobs of owned) if (jobs[0] !== undefined) jobs[0].revision = 2;
  let step = 0;
  const editPerSec = await rate(CONCURRENCY, seconds * 1000, async (loop) => {
    const jobs = owned[loop] ?? [];
    const job = jobs[step++ % jobs.length];
    if (job === undefined) return 0;
    const res = expect(
      await http.send(
        'PUT',
        `/api/${job.id}`,
        { progress: step % 100, 'status-message': 'working' },
        { 'if-match': `"${String(job.revision)}"` },
      ),
      200,
      'conditional edit',
    );
    job.revision = Number(/"(\d+)"/.exec(String(res.headers.etag))?.[1] ?? job.revision + 1);
    return 1;
  });

  const query = `/api/job?filter=${encodeURIComponent("state='QUEUED' and action='bench_edit'")}&orderby=created:desc&last=20`;
  const searchPerSec = await rate(16, seconds * 1000, async () => {
    expect(await http.send('GET', query), 200, 'search');
    return 1;
  });
  return { createPerSec, bulkCreatePerSec, editPerSec, searchPerSec };
}

function report(name: string, figures: Figures): void {
  log(
    `${name.padEnd(8)} creates ${String(figures.createPerSec).padStart(6)}/s   bulk ${String(figures.bulkCreatePerSec).padStart(7)} jobs/s   ` +
      `conditional edits ${String(figures.editPerSec).padStart(6)}/s   searches ${String(figures.searchPerSec).padStart(5)}/s`,
  );
}

async function main(): Promise<void> {
  const results: Record<string, Figures> = {};
  log(`job-api in its own process; ${String(CONCURRENCY)} concurrent requests over keep-alive HTTP; ${String(seconds)} s per figure`);
  if (only === undefined || only.has('sqlite')) {
    const dir = await mkdtemp(join(tmpdir(), 'bench-api-'));
    try {
      const server = await startServer(join(dir, 'jobs.sqlite'));
      try {
        results.sqlite = await measure(server.http);
        report('sqlite', results.sqlite);
      } finally {
        await server.stop();
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
  if (only === undefined || only.has('postgres')) {
    const postgres = await startPostgres();
    try {
      const server = await startServer(await postgres.createDatabase('bench'));
      try {
        results.postgres = await measure(server.http);
        report('postgres', results.postgres);
      } finally {
        await server.stop();
      }
    } finally {
      await postgres.stop();
    }
  }
  if (json) log(JSON.stringify(results));
}

await main();
