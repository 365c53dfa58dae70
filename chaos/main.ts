/**
 * `npm run chaos`: the engine under randomized faults, then a verdict. Exits 0 when every run passed,
 * 1 when one found a lost job, a concurrent double run, a job failed by the engine or a duplicate tick
 * job, 2 on bad flags or when a run could not be carried out.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { newSeed } from './random.js';
import { renderReport, reportJson } from './report.js';
import { runChaos, type ChaosReport } from './run.js';

const argv = yargs(hideBin(process.argv))
  .scriptName('npm run chaos --')
  .usage('$0 [--minutes M] [--seed N] [--store sqlite|postgres|both] [--runs K] [--json]')
  .option('minutes', { type: 'number', default: 4, describe: 'how long faults are injected, per run' })
  .option('seed', { type: 'number', describe: 'replays the faults and workload of a run (default: random)' })
  .option('runs', { type: 'number', default: 1, describe: 'runs in a row, seeds seed, seed+1, ...' })
  .option('store', { choices: ['sqlite', 'postgres', 'both'] as const, default: 'sqlite' as const, describe: "the job API's database" })
  .option('executors', { type: 'number', default: 3 })
  .option('threads', { type: 'number', default: 4, describe: 'per executor' })
  .option('distributors', { type: 'number', default: 2 })
  .option('session-timeout', { type: 'number', default: 4, describe: 'seconds, for executors and distributors' })
  .option('rate', { type: 'number', default: 6, describe: 'jobs per second the workload creates' })
  .option('drain', {
    type: 'number',
    default: 120,
    describe: 'seconds without a job finishing after which the healed cluster is judged stuck',
  })
  .option('keep', { type: 'boolean', default: false, describe: "keep a passed run's directory" })
  .option('json', { type: 'boolean', default: false, describe: 'one JSON object on the last line' })
  .strict()
  .check((args) => {
    const positive = ['minutes', 'runs', 'executors', 'threads', 'distributors', 'session-timeout', 'rate', 'drain'] as const;
    for (const name of positive) {
      const value = args[name];
      if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} needs a positive number, got ${String(value)}`);
    }
    for (const name of ['runs', 'executors', 'threads', 'distributors'] as const) {
      if (!Number.isInteger(args[name])) throw new Error(`--${name} needs a whole number, got ${String(args[name])}`);
    }
    if (args.seed !== undefined && (!Number.isInteger(args.seed) || args.seed < 0))
      throw new Error(`--seed needs a whole number >= 0, got ${String(args.seed)}`);
    return true;
  })
  .fail((message) => {
    process.stderr.write(`npm run chaos: ${message}\n`);
    process.exit(2);
  })
  .parseSync();

const firstSeed = argv.seed ?? newSeed();
const stores = argv.store === 'both' ? (['sqlite', 'postgres'] as const) : ([argv.store] as const);
const reports: ChaosReport[] = [];
try {
  for (let run = 0; run < argv.runs; run++) {
    for (const store of stores) {
      const report = await runChaos({
        seed: firstSeed + run,
        minutes: argv.minutes,
        store,
        executors: argv.executors,
        threads: argv.threads,
        distributors: argv.distributors,
        sessionTimeoutSeconds: argv['session-timeout'],
        rate: argv.rate,
        drainSeconds: argv.drain,
        keep: argv.keep,
        progress: (line) => process.stderr.write(`${line}\n`),
      });
      reports.push(report);
      process.stdout.write(`${renderReport(report).join('\n')}\n`);
    }
  }
} catch (error) {
  process.stderr.write(
    `npm run chaos: a run could not be carried out: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
  );
  process.exitCode = 2;
}
if (argv.json) process.stdout.write(`${JSON.stringify({ runs: reports.map(reportJson) })}\n`);
if (process.exitCode === undefined) process.exitCode = reports.every((report) => report.verdict.ok) ? 0 : 1;
