/**
 * The processes of the end-to-end benchmark (bench/e2e.bench.ts) and what it reads about them:
 * `job-api serve` and `job-executor` from the built JavaScript in dist/, each in its own process that
 * dies with this one, their stderr kept, stopped with SIGTERM and awaited (all through the one
 * supervisor, src/harness/child-daemon.ts); VmRSS and CPU time from /proc.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync, readlinkSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { ApiCredentials } from '../src/api/client/options.js';
import { ChildDaemon, type ExitStatus } from '../src/harness/child-daemon.js';
import { fourLetterWord } from '../src/harness/four-letter-word.js';
import { freePort } from '../src/harness/free-port.js';
import { waitFor } from '../src/harness/wait-for.js';

const DIST = fileURLToPath(new URL('../dist/src/', import.meta.url));
const API_BIN = join(DIST, 'bin/job-api.js');
const EXECUTOR_BIN = join(DIST, 'bin/job-executor.js');
const DISTRIBUTOR_BIN = join(DIST, 'bin/job-distributor.js');
const DISTRIBUTION_MODULE = join(DIST, 'sdk/distribution.js');
const ACTION_MODULE = join(DIST, 'sdk/action.js');
/** Lines of a process's stderr kept for the report; the count goes on. */
const KEPT_LINES = 200;
const STOP_GRACE_MS = 30_000;
// The output of `job-api create-key` and the like: a few lines.
const COMMAND_OUTPUT_CHARS = 1 << 20;

export const NOOP_ACTION = 'bench_noop';

/** Refuses to run on a missing build: the script runs `npm run build` first, a direct run may not have. */
export function checkBuilt(): void {
  for (const file of [API_BIN, EXECUTOR_BIN, ACTION_MODULE, DISTRIBUTOR_BIN, DISTRIBUTION_MODULE]) {
    if (!existsSync(file)) throw new Error(`${file} is missing: run \`npm run build\` first (\`npm run bench:e2e\` does)`);
  }
}

/**
 * The no-op action as a plain `.mjs` module importing the built defineAction by absolute URL, so the
 * executor's worker threads load it without a TypeScript loader. It returns the moment it started
 * (epoch ms, sub-millisecond) as its status message. `inProcess`: it declares `isolation: 'in-process'`
 * (run in the executor's event loop, no worker thread).
 */
export async function writeNoopAction(dir: string, inProcess = false): Promise<void> {
  const source = [
    `import { defineAction } from ${JSON.stringify(pathToFileURL(ACTION_MODULE).href)};`,
    '',
    'export default defineAction({',
    `  name: ${JSON.stringify(NOOP_ACTION)},`,
    '  timeoutSeconds: 60,',
    ...(inProcess ? ["  isolation: 'in-process',"] : []),
    '  run: () => ({ message: String(performance.timeOrigin + performance.now()) }),',
    '});',
    '',
  ].join('\n');
  await writeFile(join(dir, `${NOOP_ACTION}.mjs`), source);
}

export type Exit = ExitStatus;

export interface Daemon {
  readonly name: string;
  readonly pid: number;
  /** The first KEPT_LINES lines of its stderr. */
  readonly lines: readonly string[];
  lineCount(): number;
  readonly exited: Promise<Exit>;
  /** Aborted when the process exits, for waits that must not outlive it. */
  readonly gone: AbortSignal;
  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`; resolves with how it exited. Idempotent. */
  stop(graceMs?: number): Promise<Exit>;
}

/** `node <argv>` under `setpriv --pdeathsig KILL` where it exists (it execs: the pid is node's), stderr kept (and each line to `onLine`). */
function spawnDaemon(name: string, argv: readonly string[], env: NodeJS.ProcessEnv = process.env, onLine?: (line: string) => void): Daemon {
  const child = ChildDaemon.spawn({
    name,
    command: process.execPath,
    args: argv,
    env,
    stderr: { collect: { keptLines: KEPT_LINES, keep: 'first' } },
    parentDeathSignal: 'SIGKILL',
    stopGraceMs: STOP_GRACE_MS,
  });
  if (onLine !== undefined) child.stderr.onLine(onLine);
  const gone = new AbortController();
  // `exited` comes once stderr has been read to its end, so the reason quotes its last lines.
  void child.exited.then(({ code, signal }) => {
    gone.abort(
      new Error(
        `${name} (pid ${String(child.pid)}) exited (code ${String(code)}, signal ${String(signal)}): ${child.stderr.tail(5).join(' | ')}`,
      ),
    );
  });
  return {
    name,
    pid: child.pid,
    get lines() {
      return child.stderr.lines;
    },
    lineCount: () => child.stderr.count,
    exited: child.exited,
    gone: gone.signal,
    stop: (graceMs) => child.stop(graceMs === undefined ? {} : { graceMs }),
  };
}

/** `node <argv>` run to its end; its stdout, its stderr passed through. */
async function runCommand(argv: readonly string[]): Promise<string> {
  const child = ChildDaemon.spawn({
    name: 'node',
    command: process.execPath,
    args: argv,
    stdout: { collect: { keptChars: COMMAND_OUTPUT_CHARS } },
    stderr: 'inherit',
  });
  const { code } = await child.exited;
  if (code !== 0) throw new Error(`${argv.join(' ')} exited with ${String(code)}`);
  return child.stdout.text;
}

function credentialsIn(output: string): ApiCredentials {
  const key = /^\s*key:\s+(\S+)/m.exec(output)?.[1];
  const secret = /^\s*secret:\s+(\S+)/m.exec(output)?.[1];
  if (key === undefined || secret === undefined) throw new Error(`no key in: ${output}`);
  return { key, secret };
}

export interface JobApiProcess {
  readonly daemon: Daemon;
  readonly baseUrl: string;
  /** For the benchmark's own client. */
  readonly admin: ApiCredentials;
  /** An `executor`-role key, as executors are given in production. */
  readonly executor: ApiCredentials;
}

/** `job-api serve` on a new SQLite database at `database`, listening and answering. */
export async function startJobApi(database: string): Promise<JobApiProcess> {
  const admin = credentialsIn(await runCommand([API_BIN, 'create-admin-key', '--database', database]));
  const executor = credentialsIn(
    await runCommand([API_BIN, 'create-key', 'executor', '--database', database, '--description', 'bench executors']),
  );
  const port = await freePort();
  const daemon = spawnDaemon('job-api', [API_BIN, 'serve', '--database', database, '--port', String(port), '--log-level', 'warn']);
  const baseUrl = `http://127.0.0.1:${String(port)}`;
  try {
    await waitFor(
      () =>
        fetch(`${baseUrl}/api/job`).then(
          async (res) => {
            await res.arrayBuffer();
            return res.status === 401;
          },
          () => false,
        ),
      { timeoutMs: 30_000, message: 'job-api listening', signal: daemon.gone },
    );
  } catch (error) {
    await daemon.stop();
    throw error;
  }
  return { daemon, baseUrl, admin, executor };
}

export interface ExecutorSettings {
  readonly zkHosts: string;
  readonly queuePath: string;
  readonly apiUrl: string;
  readonly credentials: ApiCredentials;
  readonly threads: number;
  readonly actionsDir: string;
}

/**
 * `node dist/src/bin/job-executor.js` with the flags production would give it; credentials in its environment.
 * With E2E_PROFILE_DIR set, the executor writes a V8 CPU profile there when it stops (Node refuses
 * --cpu-prof in NODE_OPTIONS).
 */
export function spawnExecutor(settings: ExecutorSettings): Daemon {
  const profileDir = process.env.E2E_PROFILE_DIR;
  const argv = [
    ...(profileDir === undefined || profileDir === '' ? [] : ['--cpu-prof', '--cpu-prof-dir', profileDir]),
    EXECUTOR_BIN,
    '--zk-hosts',
    settings.zkHosts,
    '--queue-path',
    settings.queuePath,
    '--api-url',
    settings.apiUrl,
    '--threads',
    String(settings.threads),
    '--actions-dir',
    settings.actionsDir,
    '--log-level',
    'warn',
  ];
  const env = { ...process.env, JOB_EXECUTOR_API_KEY: settings.credentials.key, JOB_EXECUTOR_API_SECRET: settings.credentials.secret };
  return spawnDaemon('job-executor', argv, env);
}

/**
 * A distribution as a plain `.mjs` module importing the built defineDistribution by absolute URL:
 * `name`, once an hour, made up at once by a new leader, one `action` job per target.
 */
export async function writeFanOutDistribution(dir: string, name: string, action: string, targets: number): Promise<void> {
  const source = [
    `import { defineDistribution } from ${JSON.stringify(pathToFileURL(DISTRIBUTION_MODULE).href)};`,
    '',
    'export default defineDistribution({',
    `  name: ${JSON.stringify(name)},`,
    '  schedule: { everySeconds: 3600 },',
    '  catchUpSeconds: 3600,',
    `  *jobs() { for (let i = 0; i < ${String(targets)}; i++) yield { action: ${JSON.stringify(action)}, target: \`bench/\${i}\` }; },`,
    '});',
    '',
  ].join('\n');
  await writeFile(join(dir, `${name}.mjs`), source);
}

export interface DistributorSettings {
  readonly names: readonly string[];
  readonly zkHosts: string;
  readonly queuePath: string;
  readonly electionPath: string;
  readonly apiUrl: string;
  readonly credentials: ApiCredentials;
  readonly distributorsDir?: string;
  readonly sessionTimeoutSeconds?: number;
}

/** `node dist/src/bin/job-distributor.js` at log level info (its lines go to `onLine`); credentials in its environment. */
export function spawnDistributor(settings: DistributorSettings, onLine?: (line: string) => void): Daemon {
  const argv = [
    DISTRIBUTOR_BIN,
    ...settings.names,
    '--zk-hosts',
    settings.zkHosts,
    '--queue-path',
    settings.queuePath,
    '--election-path',
    settings.electionPath,
    '--api-url',
    settings.apiUrl,
    ...(settings.distributorsDir === undefined ? [] : ['--distributors-dir', settings.distributorsDir]),
    ...(settings.sessionTimeoutSeconds === undefined ? [] : ['--session-timeout', String(settings.sessionTimeoutSeconds)]),
    '--log-level',
    'info',
  ];
  const env = {
    ...process.env,
    JOB_DISTRIBUTOR_API_KEY: settings.credentials.key,
    JOB_DISTRIBUTOR_API_SECRET: settings.credentials.secret,
  };
  return spawnDaemon('job-distributor', argv, env, onLine);
}

/** VmRSS in MB, or undefined once the process is gone. */
export function rssMb(pid: number): number | undefined {
  try {
    const status = readFileSync(`/proc/${String(pid)}/status`, 'utf8');
    const kb = /^VmRSS:\s+(\d+)\s+kB/m.exec(status)?.[1];
    return kb === undefined ? undefined : Number(kb) / 1024;
  } catch {
    return undefined;
  }
}

/** Samples a process's VmRSS every `intervalMs` and keeps the largest. */
export function rssPeak(pid: number, intervalMs = 100): { stop(): number } {
  let peak = rssMb(pid) ?? 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, rssMb(pid) ?? 0);
  }, intervalMs);
  return {
    stop: () => {
      clearInterval(timer);
      return Math.max(peak, rssMb(pid) ?? 0);
    },
  };
}

const CLOCK_TICKS_PER_SEC = ((): number => {
  try {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    return Number.isInteger(ticks) && ticks > 0 ? ticks : 100;
  } catch {
    return 100;
  }
})();

/** utime + stime of a process (all its threads), or of one thread with `tid`, in seconds. */
function cpuSeconds(pid: number, tid?: number): number {
  try {
    const path = tid === undefined ? `/proc/${String(pid)}/stat` : `/proc/${String(pid)}/task/${String(tid)}/stat`;
    const stat = readFileSync(path, 'utf8');
    // The command name may hold spaces and parentheses: fields are counted from the last ')'.
    // After it: state (field 3) ... utime (field 14), stime (field 15).
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SEC;
  } catch {
    return 0;
  }
}

/** Seconds a thread has waited on a run queue (runnable, but no CPU free): the second field of schedstat. */
function runQueueSeconds(pid: number, tid: number): number {
  try {
    const fields = readFileSync(`/proc/${String(pid)}/task/${String(tid)}/schedstat`, 'utf8')
      .trim()
      .split(/\s+/);
    return Number(fields[1]) / 1e9;
  } catch {
    return 0;
  }
}

/** Busy and total CPU seconds of the whole machine (all cores), from /proc/stat. */
function machineSeconds(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '';
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = line
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const busy = user + nice + system + irq + softirq + steal;
  return { busy: busy / CLOCK_TICKS_PER_SEC, total: (busy + idle + iowait) / CLOCK_TICKS_PER_SEC };
}

export interface Tracked {
  readonly label: string;
  readonly pid: number;
  /** Also report the main thread (tid = pid) on its own: a saturated event loop shows there. */
  readonly mainThread?: boolean;
}

export interface CpuShare {
  readonly label: string;
  /** Percent of one core over the window. */
  readonly percent: number;
  readonly mainThreadPercent: number | undefined;
  /** Percent of the window the main thread was runnable but waiting for a CPU. */
  readonly mainThreadWaitPercent: number | undefined;
  readonly seconds: number;
}

export interface CpuReport {
  readonly shares: readonly CpuShare[];
  /** This process (the producer), all threads. */
  readonly bench: CpuShare;
  /** Percent of one core used by the whole machine, and out of how many. */
  readonly machinePercent: number;
  readonly machineCapacityPercent: number;
  /** Machine minus what is listed above: other processes on this machine. */
  readonly othersPercent: number;
}

/** CPU time of the tracked processes, this process and the machine, between start and `stop()`. */
export function cpuMeter(tracked: readonly Tracked[]): { stop(): CpuReport } {
  const start = performance.now();
  const before = tracked.map((t) => ({
    all: cpuSeconds(t.pid),
    main: t.mainThread === true ? cpuSeconds(t.pid, t.pid) : 0,
    wait: t.mainThread === true ? runQueueSeconds(t.pid, t.pid) : 0,
  }));
  const benchBefore = process.cpuUsage();
  const machineBefore = machineSeconds();
  return {
    stop: () => {
      const elapsed = (performance.now() - start) / 1000;
      const pct = (seconds: number): number => (100 * seconds) / elapsed;
      const shares = tracked.map((t, i) => {
        const seconds = cpuSeconds(t.pid) - (before[i]?.all ?? 0);
        const main = t.mainThread === true ? cpuSeconds(t.pid, t.pid) - (before[i]?.main ?? 0) : undefined;
        const wait = t.mainThread === true ? runQueueSeconds(t.pid, t.pid) - (before[i]?.wait ?? 0) : undefined;
        return {
          label: t.label,
          seconds,
          percent: pct(seconds),
          mainThreadPercent: main === undefined ? undefined : pct(main),
          mainThreadWaitPercent: wait === undefined ? undefined : pct(wait),
        };
      });
      const usage = process.cpuUsage(benchBefore);
      const benchSeconds = (usage.user + usage.system) / 1e6;
      const bench = {
        label: 'bench',
        seconds: benchSeconds,
        percent: pct(benchSeconds),
        mainThreadPercent: undefined,
        mainThreadWaitPercent: undefined,
      };
      const machineAfter = machineSeconds();
      const machineBusy = machineAfter.busy - machineBefore.busy;
      const machineTotal = machineAfter.total - machineBefore.total;
      const cores = machineTotal / elapsed;
      const ours = shares.reduce((sum, share) => sum + share.seconds, benchSeconds);
      return {
        shares,
        bench,
        machinePercent: pct(machineBusy),
        machineCapacityPercent: Math.round(cores) * 100,
        othersPercent: Math.max(0, pct(machineBusy - ours)),
      };
    },
  };
}

/** CPU of every tracked process and of this one (the producer) per job, in ms. */
export function systemCpuMsPerJob(report: CpuReport, jobs: number): number {
  const seconds = report.shares.reduce((sum, share) => sum + share.seconds, report.bench.seconds);
  return jobs > 0 ? (1000 * seconds) / jobs : Number.NaN;
}

/** Local TCP ports of a process's sockets: its fds' socket inodes, looked up in /proc/net/tcp{,6}. */
function localPortsOf(pid: number): Set<number> {
  const inodes = new Set<string>();
  try {
    for (const fd of readdirSync(`/proc/${String(pid)}/fd`)) {
      try {
        const target = readlinkSync(`/proc/${String(pid)}/fd/${fd}`);
        const inode = /^socket:\[(\d+)\]$/.exec(target)?.[1];
        if (inode !== undefined) inodes.add(inode);
      } catch {
        // Closed meanwhile.
      }
    }
  } catch {
    return new Set();
  }
  const ports = new Set<number>();
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    let text: string;
    try {
      text = readFileSync(table, 'utf8');
    } catch {
      continue;
    }
    for (const line of text.split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      const local = fields[1];
      const inode = fields[9];
      if (local === undefined || inode === undefined || !inodes.has(inode)) continue;
      ports.add(Number.parseInt(local.slice(local.lastIndexOf(':') + 1), 16));
    }
  }
  return ports;
}

/** Requests ZooKeeper received on each client connection so far, by the client's local port (`cons`). */
async function requestsByPort(zk: { readonly host: string; readonly port: number }): Promise<Map<number, number>> {
  const answer = await fourLetterWord(zk.host, zk.port, 'cons');
  const counts = new Map<number, number>();
  for (const match of answer.matchAll(/:(\d+)\[\d+\]\([^)]*\brecved=(\d+)/g)) {
    counts.set(Number(match[1]), Number(match[2]));
  }
  return counts;
}

export interface ZkTraffic {
  /** Requests the server received from each tracked process (pings included) over the window. */
  readonly byProcess: readonly { readonly label: string; readonly requests: number }[];
  readonly total: number;
}

/** ZooKeeper requests per client process between start and `stop()`, from the server's own counters. */
export async function zkTrafficMeter(
  zk: { readonly host: string; readonly port: number },
  tracked: readonly Tracked[],
): Promise<{ stop(): Promise<ZkTraffic> }> {
  const before = await requestsByPort(zk);
  return {
    stop: async () => {
      const after = await requestsByPort(zk);
      const delta = (port: number): number => (after.get(port) ?? 0) - (before.get(port) ?? 0);
      const byProcess = tracked.map(({ label, pid }) => ({
        label,
        requests: [...localPortsOf(pid)].reduce((sum, port) => sum + (after.has(port) ? delta(port) : 0), 0),
      }));
      const total = [...after.keys()].reduce((sum, port) => sum + delta(port), 0);
      return { byProcess, total };
    },
  };
}
