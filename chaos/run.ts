/**
 * One chaos run: start the cluster, let the workload and the faults loose for the given time, heal
 * everything, wait for the jobs to settle, then collect what the API and the side-effect log say and
 * judge it. Everything the run wrote (daemon logs, side effects, faults, the verdict) stays in its
 * directory when it fails, or when asked.
 */
import { setMaxListeners } from 'node:events';
import { appendFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JobApiClient } from '../src/api/client/index.js';
import { JobEnqueuer } from '../src/enqueue/job-enqueuer.js';
import { JobSubmitter } from '../src/enqueue/job-submitter.js';
import { QueueRoutes } from '../src/recipes/queue-routes.js';
import { delay } from '../src/util/delay.js';
import { errorJsonReplacer } from '../src/util/errors.js';
import type { Logger } from '../src/util/logger.js';
import { ZkClient } from '../src/zk/client.js';
import { judge, type FaultRecord, type ObservedJob, type Verdict } from './checker.js';
import { QUEUE_PATH, startCluster, type ChaosCluster, type StoreKind } from './cluster.js';
import type { UnexpectedExit } from './daemon.js';
import { injectFaults } from './faults.js';
import { Random } from './random.js';
import { parseSideEffects } from './side-effects.js';
import { Workload, type WorkloadFigures } from './workload.js';

export interface ChaosOptions {
  readonly seed: number;
  readonly minutes: number;
  readonly store: StoreKind;
  readonly executors: number;
  readonly threads: number;
  readonly distributors: number;
  readonly sessionTimeoutSeconds: number;
  /** Jobs per second the workload creates, on average. */
  readonly rate: number;
  /** How long the healed cluster may go without finishing a job before what it still holds counts as lost. */
  readonly drainSeconds: number;
  /** Keep the run's directory even when it passed. */
  readonly keep: boolean;
  /** Progress lines (one per phase and every 15 s). */
  readonly progress: (line: string) => void;
}

export interface ChaosReport {
  readonly seed: number;
  readonly store: StoreKind;
  readonly minutes: number;
  readonly dir: string;
  readonly kept: boolean;
  readonly verdict: Verdict;
  readonly workload: WorkloadFigures;
  readonly unexpectedExits: readonly UnexpectedExit[];
  readonly drainSeconds: number;
}

export async function runChaos(options: ChaosOptions): Promise<ChaosReport> {
  const dir = await mkdtemp(join(tmpdir(), `chaos-${String(options.seed)}-`));
  const sideEffectLog = join(dir, 'side-effects.log');
  writeFileSync(sideEffectLog, '');
  const logger = fileLogger(join(dir, 'driver.log'));
  const random = new Random(options.seed);
  options.progress(`chaos run seed ${String(options.seed)}, ${String(options.minutes)} min, ${options.store}; logs in ${dir}`);

  const started = Date.now();
  const cluster = await startCluster({
    dir,
    store: options.store,
    executors: options.executors,
    threads: options.threads,
    distributors: options.distributors,
    sessionTimeoutSeconds: options.sessionTimeoutSeconds,
    sideEffectLog,
  });
  options.progress(`cluster up in ${elapsed(started)}`);
  let report: ChaosReport | undefined;
  try {
    report = await exercise(cluster, options, { dir, sideEffectLog, logger, random });
    return report;
  } finally {
    const stopping = Date.now();
    await cluster.stop();
    options.progress(`cluster stopped in ${elapsed(stopping)}`);
    if (report !== undefined && !report.kept) await rm(dir, { recursive: true, force: true });
  }
}

interface RunContext {
  readonly dir: string;
  readonly sideEffectLog: string;
  readonly logger: Logger;
  readonly random: Random;
}

async function exercise(cluster: ChaosCluster, options: ChaosOptions, context: RunContext): Promise<ChaosReport> {
  const { dir, logger, random } = context;
  const zk = await ZkClient.connect({ connectionString: cluster.zkHosts, sessionTimeoutMs: 10_000, logger });
  const api = await JobApiClient.create({ baseUrl: cluster.apiUrl, credentials: cluster.admin, timeoutMs: 5000, retry: { retries: 3 } });
  try {
    const queue = new QueueRoutes(zk, QUEUE_PATH, logger);
    const enqueuer = new JobEnqueuer({ queue, logger, publish: (events) => api.publishEvents(events) });
    const workload = new Workload({
      api,
      submitter: new JobSubmitter(api, enqueuer, logger),
      enqueuer,
      random: random.fork('workload'),
      rate: options.rate,
      runId: `${String(options.seed)}-${String(Date.now())}`,
    });
    const faults: FaultRecord[] = [];
    const faultLog = join(dir, 'faults.log');
    const stop = new AbortController();
    // Every submit in flight and every fault lane waits on it.
    setMaxListeners(100, stop.signal);
    const ticker = setInterval(() => {
      options.progress(`  ${String(faults.length)} faults, ${String(workload.figures.submitted)} jobs submitted`);
    }, 15_000);
    const stopAfter = setTimeout(() => {
      stop.abort();
    }, options.minutes * 60_000);
    try {
      await Promise.all([
        workload.run(stop.signal),
        injectFaults(
          { cluster, zk, sessionTimeoutMs: options.sessionTimeoutSeconds * 1000 },
          random.fork('faults'),
          {
            record: (fault) => {
              faults.push(fault);
              appendFileSync(faultLog, `${JSON.stringify(fault)}\n`);
            },
          },
          stop.signal,
        ),
      ]);
    } finally {
      clearTimeout(stopAfter);
      clearInterval(ticker);
    }

    options.progress(
      `faults over (${String(faults.length)}); healing and draining (until done, or no progress for ${String(options.drainSeconds)} s)`,
    );
    healAll(cluster);
    const drainStarted = Date.now();
    await drain(api, options.drainSeconds * 1000, options.progress);
    const drainSeconds = (Date.now() - drainStarted) / 1000;

    const jobs = await observeJobs(api);
    const effects = parseSideEffects(await readFile(context.sideEffectLog, 'utf8'));
    const verdict = judge(jobs, effects, workload, faults);
    const report: ChaosReport = {
      seed: options.seed,
      store: options.store,
      minutes: options.minutes,
      dir,
      // A daemon that gave up under faults is worth reading about even when no invariant broke.
      kept: !verdict.ok || options.keep || cluster.unexpectedExits.length > 0,
      verdict,
      workload: workload.figures,
      unexpectedExits: [...cluster.unexpectedExits],
      drainSeconds,
    };
    writeFileSync(join(dir, 'report.json'), `${JSON.stringify(report, null, 2)}\n`);
    return report;
  } finally {
    await api.close();
    await zk.close();
  }
}

/** Every process back and every link whole, so the engine can finish what it holds. */
function healAll(cluster: ChaosCluster): void {
  for (const node of cluster.executors) {
    for (const proxy of [...node.zkProxies, node.apiProxy]) proxy.heal();
    node.daemon.resume();
    node.daemon.start();
  }
  for (const daemon of cluster.distributors) daemon.start();
  cluster.api.start();
}

/**
 * Until no chaos job is waiting or running, or until their number has not gone down for
 * `stallMs`: a backlog left by the faults takes as long as it takes on a loaded machine, but a healed
 * engine that stops making progress has lost what it still holds.
 */
async function drain(api: JobApiClient, stallMs: number, progress: (line: string) => void): Promise<void> {
  let best = Number.POSITIVE_INFINITY;
  let improvedAt = Date.now();
  let reportedAt = Date.now();
  for (;;) {
    const open = await api.count(`action='chaos_work' and state!=['SUCCESS','FAILED','CANCELED']`).catch(() => -1);
    if (open === 0) return;
    if (open >= 0 && open < best) {
      best = open;
      improvedAt = Date.now();
    }
    if (Date.now() - improvedAt > stallMs) return;
    if (Date.now() - reportedAt > 15_000) {
      progress(`  draining: ${String(open)} jobs not final yet`);
      reportedAt = Date.now();
    }
    await delay(1000, undefined, { keepProcessAlive: true });
  }
}

const PAGE = 1000;

async function observeJobs(api: JobApiClient): Promise<ObservedJob[]> {
  const observed: ObservedJob[] = [];
  for (let first = 1; ; first += PAGE) {
    const { jobs } = await api.search({ filter: "action='chaos_work'", orderby: 'created:asc', first, last: first + PAGE - 1 });
    for (const job of jobs) {
      const payload = parsePayload(job.payload);
      observed.push({
        id: job.id,
        state: job.state,
        returnCode: job['return-code'],
        statusMessage: job['status-message'],
        outcome: typeof payload.outcome === 'string' ? payload.outcome : undefined,
        tick: typeof payload.tick === 'string' ? payload.tick : undefined,
        target: job['target-resource']?.href,
      });
    }
    if (jobs.length < PAGE) return observed;
  }
}

function parsePayload(text: string | undefined): Record<string, unknown> {
  if (text === undefined) return {};
  try {
    const value: unknown = JSON.parse(text);
    return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function elapsed(since: number): string {
  return `${((Date.now() - since) / 1000).toFixed(1)} s`;
}

/** The driver's own client log (reconnects, enqueue retries), for reading after a failed run. */
function fileLogger(file: string): Logger {
  const write =
    (level: string) =>
    (message: string, meta?: Record<string, unknown>): void => {
      appendFileSync(
        file,
        `${new Date().toISOString()} ${level} ${message}${meta === undefined ? '' : ` ${JSON.stringify(meta, errorJsonReplacer)}`}\n`,
      );
    };
  return { error: write('error'), warn: write('warn'), info: write('info'), debug: () => undefined };
}
