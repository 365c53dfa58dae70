/**
 * `npm run bench:ui`: the server time of the dashboard's jobs page, a 100-row page of the REST search
 * as the dashboard asks for it (orderby, first/last, a filter, the count that comes with it), with many
 * jobs in the database (SQLite by default; --jobs N). Times are measured at the client over loopback,
 * so they include HTTP; the median and the 95th percentile of --rounds requests per query are printed.
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
import { silentLogger } from '../src/util/logger.js';

const argv = process.argv.slice(2);
const flag = (name: string, fallback: number): number => {
  const index = argv.indexOf(`--${name}`);
  const value = index === -1 ? undefined : Number(argv[index + 1]);
  return value === undefined || !Number.isInteger(value) || value < 1 ? fallback : value;
};
const JOBS = flag('jobs', 100_000);
const ROUNDS = flag('rounds', 30);
const STATES = ['QUEUED', 'RUNNING', 'SUCCESS', 'FAILED', 'CANCELED'] as const;
const ACTIONS = ['dummy_test_action', 'cleanup_jobs', 'command', 'deploy', 'backup'] as const;

const dir = await mkdtemp(join(tmpdir(), 'ui-bench-'));
const database = join(dir, 'jobs.sqlite');
const backends = await openBackends(database);
try {
  const key = await backends.credentials.create('admin', 'ui bench');
  const loadStarted = performance.now();
  for (let start = 0; start < JOBS; start += 10_000) {
    const at = new Date(Date.now() - (JOBS - start) * 1000);
    const batch = Array.from({ length: Math.min(10_000, JOBS - start) }, (_, index) => {
      const n = start + index;
      const job = newJob(
        parseJobCreate({ action: ACTIONS[n % ACTIONS.length], 'target-resource': { href: `deployment/${String(n % 997)}` } }),
        at,
      );
      return { ...job, state: STATES[n % STATES.length] ?? 'QUEUED', progress: n % 101 };
    });
    await backends.jobs.createMany(batch);
  }
  process.stdout.write(`${String(JOBS)} jobs loaded in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s (SQLite)\n`);
  const options = await compileJobApiServerOptions({ database, host: '127.0.0.1', port: 0 });
  const server = await JobApiServer.start(options, silentLogger, { stores: backends });
  try {
    const headers = { authorization: `Bearer ${key.key}:${key.secret}` };
    const queries: Record<string, string> = {
      'newest 100': 'orderby=created:desc&first=1&last=100',
      'page 50 of 100 rows': 'orderby=created:desc&first=4901&last=5000',
      "state='FAILED', newest 100": `orderby=created:desc&first=1&last=100&filter=${encodeURIComponent("state='FAILED'")}`,
      'action and target, newest 100': `orderby=created:desc&first=1&last=100&filter=${encodeURIComponent("action='deploy' and target-resource/href='deployment/5'")}`,
      'sorted by progress': 'orderby=progress:desc&first=1&last=100',
      'counts per state (overview)': 'last=0&aggregation=terms:state',
    };
    for (const [name, query] of Object.entries(queries)) {
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
      process.stdout.write(`${name.padEnd(34)} median ${at(0.5)} ms, p95 ${at(0.95)} ms\n`);
    }
  } finally {
    await server.stop();
  }
} finally {
  await backends.close();
  await rm(dir, { recursive: true, force: true });
}
