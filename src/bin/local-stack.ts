#!/usr/bin/env node
/**
 * `local-stack` (`npm start`): the whole engine on this machine in one command: a private ZooKeeper,
 * the job API on SQLite, one executor and the distributor, with their state, keys and logs in one
 * directory. Ctrl-C stops it in order (again: faster; a third time: kill). Options come from flags
 * or JOB_LOCAL_* environment variables.
 *
 * `local-stack zookeeper-keeper` (hidden) is the stack's ZooKeeper process: see
 * src/local-stack/zookeeper-keeper.ts.
 */
import yargs from 'yargs';
import { hideBin } from 'yargs/helpers';
import { LocalStack } from '../local-stack/stack.js';
import { LOCAL_STACK_DEFAULTS, compileLocalStackOptions } from '../local-stack/options.js';
import { keepZooKeeper } from '../local-stack/zookeeper-keeper.js';
import { messageOf } from '../util/errors.js';
import { LOG_LEVELS } from '../util/logger.js';
import { numberFlag } from '../cli/option-readers.js';

// npm forwards the terminal's SIGINT to the script it runs, which has had it from the terminal
// already: two signals this close together are one Ctrl-C.
const SAME_PRESS_MS = 500;
const STOP_SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

const fail = (message: string, code: number): never => {
  process.stderr.write(`local-stack: ${message}\n`);
  process.exit(code);
};

async function runStack(args: Record<string, unknown>): Promise<void> {
  const options = (() => {
    try {
      return compileLocalStackOptions(args, process.cwd());
    } catch (error) {
      return fail(messageOf(error), 2);
    }
  })();
  const stack = new LocalStack(
    options,
    {
      info: (text) => process.stdout.write(`${text}\n`),
      error: (text) => process.stderr.write(`${text}\n`),
    },
    process.cwd(),
  );
  let lastSignalAt = Number.NEGATIVE_INFINITY;
  const onSignal = (): void => {
    const now = performance.now();
    if (now - lastSignalAt < SAME_PRESS_MS) return;
    lastSignalAt = now;
    stack.interrupt();
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  // However this process ends (an exception included), no daemon is left behind.
  process.on('exit', () => {
    stack.killAll();
  });
  const code = await stack.run().catch((error: unknown) => fail(messageOf(error), 1));
  for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
  process.exitCode = code;
}

async function runKeeper(args: { 'data-dir': string; port: number }): Promise<void> {
  const stop = new AbortController();
  const onSignal = (): void => {
    stop.abort();
  };
  for (const signal of STOP_SIGNALS) process.on(signal, onSignal);
  // The supervisor's end closes the channel: ZooKeeper goes with it.
  process.on('disconnect', onSignal);
  const report = (message: unknown): void => {
    if (process.send === undefined) process.stdout.write(`${JSON.stringify(message)}\n`);
    else process.send(message);
  };
  const code = await keepZooKeeper({ dataDir: args['data-dir'], port: args.port, signal: stop.signal, report });
  for (const signal of STOP_SIGNALS) process.off(signal, onSignal);
  process.off('disconnect', onSignal);
  if (process.connected) process.disconnect();
  process.exitCode = code;
}

await yargs(hideBin(process.argv))
  .scriptName('local-stack')
  .usage(
    '$0 [options]\n\n' +
      'Runs the engine on this machine, on 127.0.0.1: a private ZooKeeper, the job API\n' +
      'on SQLite, one executor, and the distributor (cleanup_jobs, queue_reconciler,\n' +
      'job_scheduler and any --distribution). Ctrl-C stops it. Every option is also a JOB_LOCAL_*\n' +
      'variable (JOB_LOCAL_API_PORT=8300).',
  )
  .env('JOB_LOCAL')
  .command(
    '$0',
    'run the local stack',
    (argv) =>
      argv
        .option('dir', {
          type: 'string',
          describe: `state directory: database, ZooKeeper data, API keys, logs (default ${LOCAL_STACK_DEFAULTS.dir}/ here)`,
        })
        .option('api-port', numberFlag(`the job API's port; 0 for any free port (default ${LOCAL_STACK_DEFAULTS.apiPort})`))
        .option(
          'zk-port',
          numberFlag(`ZooKeeper's port; 0 for any free port (default ${LOCAL_STACK_DEFAULTS.preferredZkPort} when free, else any)`),
        )
        .option('threads', numberFlag(`the executor's threads: jobs run at once (default ${LOCAL_STACK_DEFAULTS.threads})`))
        .option('distribution', {
          type: 'string',
          array: true,
          describe: 'another distribution to run, e.g. dummy_test_action; repeatable',
        })
        .option(
          'shutdown-timeout',
          numberFlag(`seconds running jobs get to finish at Ctrl-C (default ${LOCAL_STACK_DEFAULTS.shutdownTimeoutSeconds})`),
        )
        .option('log-level', { choices: LOG_LEVELS, describe: "the daemons' log level: error, warn, info (default) or debug" }),
    (args) => runStack(args),
  )
  .command(
    'zookeeper-keeper',
    false,
    (argv) => argv.option('data-dir', { type: 'string', demandOption: true }).option('port', { type: 'number', demandOption: true }),
    (args) => runKeeper(args),
  )
  .strict()
  .help()
  .version(false)
  .fail((message: string | undefined, error: Error | undefined) => {
    fail(
      `${error === undefined ? (message ?? 'bad arguments') : error.message}\nRun local-stack --help (or npm start -- --help) for usage.`,
      2,
    );
  })
  .parseAsync();
