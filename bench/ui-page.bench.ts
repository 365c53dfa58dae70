/**
 * `npm run bench:ui`: the server time of the dashboard's jobs page, a 100-row page of the REST search
 * as the dashboard asks for it (orderby with `created` second, first/last, a filter, `count-limit=10000`), with many jobs in
 * the database: --jobs N (default 1,000,000), --store sqlite|postgres|both (default both; PostgreSQL is
 * a private server the harness starts). Times are measured at the client over loopback, so they
 * include HTTP; the median and the 95th percentile of --rounds requests per query are printed, and
 * the same page with the exact count (what a Nuvla client gets) for comparison.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { openBackends } from '../src/api/backends.js';
import { newJob } from '../src/api/job/lifecycle.js';
import { parseJobCreate } from '../src/api/job/parse.js';
import { JobApiServer } from '../src/api/server/job-api-server.js';
import { compileJobApiServerOptions } from '../src/api/server/options.js';
import { startPostgres } from '../src/harness/postgres-server.js';
import { silentLogger } from '../src/util/logger.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const index = argv.indexOf(`--${name}`);
  const value = index === -1 ? undefined : Number(argv[index + 1]);
  return value === undefined || !Number.isInteger(value) || value < 1 ? fallback : value;
};
const storeIndex = argv.indexOf('--store');
const storeFlag = storeIndex === -1 ? 'both' : argv[storeIndex + 1];
if (storeFlag !== 'sqlite' && storeFlag !== 'postgres' && storeFlag !== 'both') throw new Error('--store takes sqlite, postgres or both');
const JOBS = flag('jobs', 1_000_000);
const ROUNDS = flag('rounds', 20);
const STATES = ['QUEUED', 'RUNNING', 'SUCCESS', 'FAILED', 'CANCELED'] as const;
const ACTIONS = ['dummy_test_action', 'cleanup_jobs', 'command', 'deploy', 'backup'] as const;
const CAP = 'count-limit=10000';
const f = (filter: string): string => `filter=${encodeURIComponent(filter)}`;

/** The dashboard's pages: every one with the count capped, as the dashboard asks. */
const QUERIES: Record<string, string> = {
  'newest 100': `orderby=created:desc&first=1&last=100&${CAP}`,
  'page 50 of 100 rows': `orderby=created:desc&first=4901&last=5000&${CAP}`,
  "state='FAILED', newest 100": `orderby=created:desc&first=1&last=100&${CAP}&${f("state='FAILED'")}`,
  "state='FAILED', oldest 100": `orderby=created:asc&first=1&last=100&${CAP}&${f("state='FAILED'")}`,
  "action='deploy', by updated": `orderby=updated:desc,created:desc&first=1&last=100&${CAP}&${f("action='deploy'")}`,
  'action and target, newest 100': `orderby=created:desc&first=1&last=100&${CAP}&${f("action='deploy' and target-resource/href='deployment/5'")}`,
  "state and created>'now-1h'": `orderby=created:desc&first=1&last=100&${CAP}&${f("state='QUEUED' and created>'now-1h'")}`,
  'sorted by progress': `orderby=progress:desc,created:desc&first=1&last=100&${CAP}`,
  'sorted by state': `orderby=state:asc,created:asc&first=1&last=100&${CAP}`,
  'dead letters (overview panel)': `orderby=created:desc&select=state,action&first=1&last=1000&count-limit=1000&${f("state='FAILED' and dead-letter/reason!=null")}`,
  'counts per state (overview)': 'last=0&aggregation=terms:state',
  'exact count: newest 100': 'orderby=created:desc&first=1&last=100',
  "exact count: state='FAILED'": `orderby=created:desc&first=1&last=100&${f("state='FAILED'")}`,
};

async function measure(kind: string, database: string): Promise<void> {
  const backends = await openBackends(database);
  try {
    const key = await backends.credentials.create('admin', 'ui bench');
    const loadStarted = performance.now();
    const now = Date.now();
    for (let start = 0; start < JOBS; start += 10_000) {
      const batch = Array.from({ length: Math.min(10_000, JOBS - start) }, (_, index) => {
        const n = start + index;
        // One job a second, the newest now: `created>'now-1h'` matches the last 3,600.
        const at = new Date(now - (JOBS - n) * 1000);
        const job = newJob(
          parseJobCreate({ action: ACTIONS[n % ACTIONS.length], 'target-resource': { href: `deployment/${String(n % 997)}` } }),
          at,
        );
        const state = STATES[n % STATES.length] ?? 'QUEUED';
        const dead = state === 'FAILED' && n % 7 === 0 ? { 'dead-letter': { reason: 'max attempts', at: at.toISOString() } } : {};
        return { ...job, state, progress: n % 101, ...dead };
      });
      await backends.jobs.createMany(batch);
    }
    process.stdout.write(`${kind}: ${String(JOBS)} jobs loaded in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s\n`);
    const options = await compileJobApiServerOptions({ database, host: '127.0.0.1', port: 0 });
    const server = await JobApiServer.start(options, silentLogger, { stores: backends });
    try {
      const headers = { authorization: `Bearer ${key.key}:${key.secret}` };
      for (const [name, query] of Object.entries(QUERIES)) {
        const times: number[] = [];
        for (let round = 0; round < ROUNDS + 3; round += 1) {
          const started = performance.now();
          const response = await fetch(`${server.address}/api/job?${query}`, { headers });
          await response.arrayBuffer();
          if (response.status !== 200) throw new Error(`${name}: HTTP ${String(response.status)}`);
          if (round >= 3) times.push(performance.now() - started);
        }
        times.sort((a, b) => a - b);
        const at = (q: number): string => (times[Math.min(times.length - 1, Math.floor(q * times.length))] ?? NaN).toFixed(1);
        process.stdout.write(`${kind.padEnd(9)} ${name.padEnd(34)} median ${at(0.5)} ms, p95 ${at(0.95)} ms\n`);
      }
    } finally {
      await server.stop();
    }
  } finally {
    await backends.close();
  }
}

if (storeFlag !== 'postgres') {
  const dir = await mkdtemp(join(tmpdir(), 'ui-bench-'));
  try {
    await measure('SQLite', join(dir, 'jobs.sqlite'));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
if (storeFlag !== 'sqlite') {
  const postgres = await startPostgres();
  try {
    await measure('Postgres', await postgres.createDatabase('ui_bench'));
  } finally {
    await postgres.stop();
  }
}
