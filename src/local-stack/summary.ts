/** What the local stack prints once it runs: where everything is, how to try it, how to stop it. */
import path from 'node:path';

export interface RunningDaemon {
  readonly label: string;
  /** Where to reach it, or what it does. */
  readonly detail: string;
  /** Every process of it: ZooKeeper's keeper and its JVM. */
  readonly pids: readonly number[];
  readonly logFile: string;
}

export interface StackSummary {
  readonly dir: string;
  readonly database: string;
  readonly apiUrl: string;
  readonly zkHosts: string;
  readonly adminKeyFile: string;
  /** The ZooKeeper identity every client of the stack's ZooKeeper needs. */
  readonly zkAuthFile: string;
  readonly daemons: readonly RunningDaemon[];
  readonly supervisorPid: number;
}

/** Single quotes for sh: nothing inside is interpreted, and a quote is closed, escaped, reopened. */
export function shellQuote(text: string): string {
  return /^[A-Za-z0-9_./:=@-]+$/.test(text) ? text : `'${text.replace(/'/g, `'\\''`)}'`;
}

/** Relative to the current directory when inside it: shorter to read and to paste. */
function shown(file: string, cwd: string): string {
  const relative = path.relative(cwd, file);
  return relative !== '' && !relative.startsWith('..') && !path.isAbsolute(relative) ? relative : file;
}

/** A jobctl command line (the built one of this checkout) that creates a dummy_test_action job and follows it. */
export function createJobCommand(zkHosts: string, zkAuthFile: string, apiUrl: string, adminKeyFile: string): string {
  const connection = `--zk-hosts ${zkHosts} --zk-auth-file ${shellQuote(zkAuthFile)} --api-url ${apiUrl} --api-key-file ${shellQuote(adminKeyFile)}`;
  return `node dist/src/bin/jobctl.js create dummy_test_action --payload '{"seconds": 3}' --wait ${connection}`;
}

export function formatSummary(summary: StackSummary, cwd: string): string {
  const width = Math.max(...summary.daemons.map((daemon) => daemon.label.length));
  const detailWidth = Math.max(...summary.daemons.map((daemon) => daemon.detail.length));
  const lines = [
    `Local stack running (supervisor pid ${summary.supervisorPid}); state in ${shown(summary.dir, cwd)}/`,
    ...summary.daemons.map(
      (daemon) =>
        `  ${daemon.label.padEnd(width)}  ${daemon.detail.padEnd(detailWidth)}  pid ${daemon.pids.join(', ')}  log ${shown(daemon.logFile, cwd)}`,
    ),
    `  database ${shown(summary.database, cwd)}; admin API key ${shown(summary.adminKeyFile, cwd)} (key: and secret: lines, mode 600); ZooKeeper identity ${shown(summary.zkAuthFile, cwd)} (user:password, mode 600: ZooKeeper auth is on)`,
    'Create a job and follow it to its end (jobctl --help for the rest: list, show --follow, queue, leaders, events):',
    `  ${createJobCommand(summary.zkHosts, shown(summary.zkAuthFile, cwd), summary.apiUrl, shown(summary.adminKeyFile, cwd))}`,
    `  executors and distributors elsewhere: --zk-hosts ${summary.zkHosts} --zk-auth-file ${shellQuote(summary.zkAuthFile)} --api-url ${summary.apiUrl}`,
    'Stop: Ctrl-C (once: a clean stop in order; again: faster; a third time: kill).',
  ];
  return lines.join('\n');
}
