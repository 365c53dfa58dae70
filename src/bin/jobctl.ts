#!/usr/bin/env node
/**
 * `jobctl`: the operator's command line for the engine: create, list, show, follow, cancel, retry and
 * delete jobs through the job API; look at the queue and the elections in ZooKeeper; follow the live
 * job events. Options come from flags, JOBCTL_* environment variables, or a JSON file (--config).
 * A failure is one line on stderr; exit codes: 0 ok, 1 failure, 2 usage, 130 interrupted or canceled.
 * Ctrl-C (SIGINT) or SIGTERM stops a command cleanly; a second one exits at once.
 */
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { cancelCommand, deleteCommand, retryCommand } from '../jobctl/change.js';
import type { JobctlCommand } from '../jobctl/command.js';
import { CommandContext } from '../jobctl/context.js';
import { createCommand } from '../jobctl/create.js';
import { batchCommand } from '../jobctl/batch-command.js';
import { deadCommand } from '../jobctl/dead-letters.js';
import { EXIT, describeFailure } from '../jobctl/errors.js';
import { eventsCommand } from '../jobctl/events-command.js';
import { leadersCommand } from '../jobctl/leaders-command.js';
import { limitsCommand } from '../jobctl/limits-command.js';
import { listCommand, showCommand } from '../jobctl/list-show.js';
import { API_SECRET_FLAGS, argvSecretWarning, secretFlagsOnArgv } from '../cli/argv-secrets.js';
import { JOBCTL_DEFAULTS, compileJobctlOptions } from '../jobctl/options.js';
import { Output } from '../jobctl/output.js';
import { queueCommand } from '../jobctl/queue-command.js';
import { numberFlag } from '../cli/option-readers.js';
import { packageVersion } from '../cli/package-version.js';

const COMMANDS: readonly JobctlCommand[] = [
  batchCommand,
  createCommand,
  listCommand,
  showCommand,
  cancelCommand,
  retryCommand,
  deadCommand,
  deleteCommand,
  queueCommand,
  leadersCommand,
  limitsCommand,
  eventsCommand,
];

const fail = (message: string, code: number): never => {
  process.stderr.write(`jobctl: ${message}\n`);
  process.exit(code);
};

function withGlobalOptions(argv: Argv): Argv {
  return argv
    .option('api-url', {
      type: 'string',
      describe: `the job API's root (default ${JOBCTL_DEFAULTS.apiUrl}); repeat it or give a comma-separated list for replicas of one API`,
    })
    .option('api-ca-file', {
      type: 'string',
      describe: 'PEM certificates to trust for an https:// --api-url (a private CA or self-signed)',
    })
    .option('api-key-file', {
      type: 'string',
      describe: `file with the API key ("key: ..." and "secret: ..." lines, or JSON); default ${JOBCTL_DEFAULTS.localStackKeyFile} when it exists and no key is given (npm start writes it)`,
    })
    .option('api-key', { type: 'string', describe: 'API key (prefer --api-key-file or JOBCTL_API_KEY)' })
    .option('api-secret', { type: 'string', describe: 'API secret (prefer --api-key-file or JOBCTL_API_SECRET)' })
    .option('api-timeout', numberFlag(`seconds per API request (default ${JOBCTL_DEFAULTS.apiTimeoutSeconds})`))
    .option('zk-hosts', { type: 'string', describe: 'ZooKeeper H:P[,H:P][/chroot]; needed by create, retry, queue and leaders' })
    .option('zk-auth-file', {
      type: 'string',
      describe: 'file (mode 0600) with the ZooKeeper digest identity user:password the engine runs with',
    })
    .option('queue-path', { type: 'string', describe: `the queue's root znode (default ${JOBCTL_DEFAULTS.queuePath})` })
    .option('election-path', { type: 'string', describe: `parent of the elections (default ${JOBCTL_DEFAULTS.electionPath})` })
    .option('connect-timeout', numberFlag(`seconds to wait for ZooKeeper (default ${JOBCTL_DEFAULTS.connectTimeoutSeconds})`))
    .option('json', { type: 'boolean', describe: 'JSON only on stdout: one document, or JSON lines for streams' })
    .group(
      [
        'api-url',
        'api-ca-file',
        'api-key-file',
        'api-key',
        'api-secret',
        'api-timeout',
        'zk-hosts',
        'zk-auth-file',
        'queue-path',
        'election-path',
        'connect-timeout',
      ],
      'Connection:',
    );
}

let chosen: JobctlCommand | undefined;
let parser = withGlobalOptions(yargs(hideBin(process.argv)))
  .scriptName('jobctl')
  .usage('$0 <command> [options]\n\nOperates the job engine: jobs through the job API, the queue and elections in ZooKeeper.')
  .env('JOBCTL')
  .config('config', 'JSON file with any of these options');
for (const command of COMMANDS) {
  parser = parser.command(command.command, command.describe, command.builder, () => {
    chosen = command;
  });
}
const args = await parser
  .demandCommand(1, 'name a command: jobctl --help lists them')
  .strict()
  .help()
  .alias('help', 'h')
  .version(packageVersion())
  .wrap(Math.min(120, process.stdout.columns || 100))
  .epilog(
    'Exit codes: 0 ok; 1 failure (API or ZooKeeper unreachable, job not found, change refused); 2 usage (bad option, id or filter); ' +
      "130 interrupted. create --wait exits with the job's: 0 SUCCESS, its return code when FAILED (1 if none), 130 CANCELED.",
  )
  .fail((message: string | undefined, error: Error | undefined) => {
    fail(`${error === undefined ? (message ?? 'bad arguments') : error.message} (jobctl --help for usage)`, EXIT.usage);
  })
  .parseAsync();

if (chosen === undefined) fail('name a command: jobctl --help lists them', EXIT.usage);
const command = chosen as JobctlCommand;

for (const flag of secretFlagsOnArgv(hideBin(process.argv), API_SECRET_FLAGS))
  process.stderr.write(`jobctl: warning: ${argvSecretWarning(flag, 'JOBCTL')}\n`);

const stop = new AbortController();
const onSignal = (): void => {
  // The first one lets the command close its connections; a second one does not wait for that.
  if (stop.signal.aborted) process.exit(EXIT.interrupted);
  stop.abort(new Error('interrupted'));
};
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  // The reader went away (`jobctl events | head`): nothing more to say to anyone.
  if (error.code === 'EPIPE') stop.abort(error);
});

const options = await compileJobctlOptions(args, process.cwd()).catch((error: unknown) => {
  const line = describeFailure(error, { apiUrl: JOBCTL_DEFAULTS.apiUrl });
  return fail(line.message, line.exitCode);
});
const ctx = new CommandContext(options, new Output({ stdout: process.stdout, stderr: process.stderr, stdin: process.stdin }), stop.signal);
let exitCode: number;
try {
  exitCode = await command.run(ctx, args);
} catch (error) {
  if (stop.signal.aborted) {
    exitCode = EXIT.interrupted;
  } else {
    const line = describeFailure(error, { apiUrl: options.api.baseUrl });
    process.stderr.write(`jobctl: ${line.message}\n`);
    exitCode = line.exitCode;
  }
} finally {
  await ctx.close();
}
process.exitCode = exitCode;
