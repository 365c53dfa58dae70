/**
 * `command`: runs one program with arguments, without a shell, and reports its exit status and output.
 *
 * Payload (JSON, required):
 *   { "command": "/path/or/name", "args": ["..."], "cwd": "/dir", "env": {"NAME": "value"}, "input": "text",
 *     "inputs": ["file:///data/a.txt", {"from": "https://host/b", "name": "b.csv"}],
 *     "outputs": {"to": "file:///results", "files": ["out/*"]} }
 * Only `command` is required. A name without a slash is looked up in PATH, unless the executor has a
 * `--command-allow` list: then only the programs listed there run, named by absolute path (context.programs).
 * The program does not inherit the executor's environment, which holds its API secret
 * (JOB_EXECUTOR_API_SECRET) and whatever else its unit sets: it gets only the variables of INHERITED_ENV
 * (PATH, HOME, the locale, ...), and `env` is added to (and overrides) those. `input` is written to the program's standard input, which is otherwise
 * empty (it reads EOF at once).
 *
 * The result is the exit code as return code (128 + the signal's number when a signal killed it, as shells
 * report it), and a status message whose first line is `exit <code>` or `killed by <SIGNAL>`, followed by
 * the last 64 KiB of stdout and stderr interleaved in arrival order. A program that cannot be started
 * fails the job with an error naming it.
 *
 * The program runs in a process group of its own (`detached: true`, i.e. setsid), which is the unit the
 * action stops: on abort (timeout, cancel, shutdown) the whole group gets SIGTERM, then SIGKILL 2 s later
 * if any of it is still alive, so children and grandchildren die with it. Processes the program leaves
 * behind in its group when it exits are stopped the same way: nothing the job started outlives the job.
 * (A process that moves itself to another group or session escapes this; only a cgroup would catch it.)
 *
 * A payload with `inputs` or `outputs` is a staged run (_command-stage.ts): a fresh temporary working
 * directory, the inputs copied or downloaded into it (stage-in), the program run there with the
 * placeholders of its arguments replaced (%IN, %IN[n], %OUT, %DATA, %WORKDIR, %% for a literal %), the
 * outputs copied out only if it exited 0 (stage-out), and the directory removed whatever happened. Each
 * stage's files, bytes and seconds are a line of the status message and a `stage-in`/`stage-out` event.
 */
import { stat } from 'node:fs/promises';
import { defineAction, toError, type ActionContext } from 'zk-job-engine/action';
import { expandArgs, parseCommandPayload, type CommandPayload } from './_command-payload.js';
import { messageOf, returnCodeOf, runProgram, type ProgramRun } from './_command-process.js';
import { makeWorkDir, stageIn, stageLine, stageOut, type StageStats } from './_command-stage.js';

async function checkDirectory(cwd: string): Promise<void> {
  // spawn reports a missing cwd as `spawn <command> ENOENT`, which blames the program; say what is wrong.
  let isDirectory: boolean;
  try {
    isDirectory = (await stat(cwd)).isDirectory();
  } catch (error) {
    throw new Error(`"cwd" ${JSON.stringify(cwd)} is not usable: ${toError(error).message}`, { cause: error });
  }
  if (!isDirectory) throw new Error(`"cwd" ${JSON.stringify(cwd)} is not a directory`);
}

/**
 * The stage's event for the job's event stream. A failed publish (API down, a Nuvla API without events)
 * costs the stream an event, not the job its run: the status message carries the same figures.
 */
async function publishStage(context: ActionContext<CommandPayload>, type: 'stage-in' | 'stage-out', stats: StageStats): Promise<void> {
  const { job } = context;
  try {
    await context.api.publishEvents([
      {
        type,
        at: new Date().toISOString(),
        job: job.id,
        action: job.action,
        state: 'RUNNING',
        ...(job.executor === undefined ? {} : { executor: job.executor }),
        ...(job.attempt === undefined ? {} : { attempt: job.attempt }),
        files: stats.files,
        bytes: stats.bytes,
        duration: stats.ms / 1000,
      },
    ]);
  } catch (error) {
    context.log.warn(`the ${type} event could not be published`, { error: toError(error) });
  }
}

function runtimeOf(context: ActionContext<CommandPayload>): Pick<ProgramRun, 'signal' | 'log' | 'progress'> {
  return { signal: context.signal, log: context.log, progress: context.progress };
}

async function runPlain(context: ActionContext<CommandPayload>, program: string): Promise<{ returnCode: number; message: string }> {
  const { command, args, cwd, env, input } = context.payload;
  if (cwd !== undefined) await checkDirectory(cwd);
  context.signal.throwIfAborted();
  const { exit, output, notes } = await runProgram({ program, command, args, cwd, env, input, ...runtimeOf(context) });
  return { returnCode: returnCodeOf(exit), message: messageOf(exit, output, notes) };
}

async function runStaged(
  context: ActionContext<CommandPayload>,
  program: string,
  stage: NonNullable<CommandPayload['stage']>,
): Promise<{ returnCode: number; message: string }> {
  const { payload, signal, log, staging } = context;
  const workdir = await makeWorkDir(staging);
  try {
    log.info('staging inputs in', { workdir: workdir.path, inputs: stage.inputs.length });
    context.progress(0, `staging ${stage.inputs.length} inputs in`);
    const staged = await stageIn(stage.inputs, workdir.path, staging, signal);
    const lines = [stageLine('stage-in', staged.stats)];
    await publishStage(context, 'stage-in', staged.stats);
    signal.throwIfAborted();
    const args = expandArgs(payload.args, { workdir: workdir.path, inputs: staged.paths });
    const { exit, output, notes } = await runProgram({ ...payload, program, args, cwd: workdir.path, ...runtimeOf(context) });
    const returnCode = returnCodeOf(exit);
    if (stage.outputs !== undefined) {
      if (returnCode === 0) {
        context.progress(99, `staging outputs out to ${stage.outputs.to}`);
        const out = await stageOut(stage.outputs, workdir.path, staging, signal);
        lines.push(stageLine('stage-out', out));
        await publishStage(context, 'stage-out', out);
      } else {
        lines.push(`stage-out: not done, the command failed (outputs are staged out only after exit 0)`);
      }
    }
    return { returnCode, message: messageOf(exit, output, [...lines, ...notes]) };
  } finally {
    // Whatever ended the run (exit, failed stage, timeout, cancel): the job leaves nothing behind here.
    await workdir.remove().catch((error: unknown) => {
      log.error('the working directory could not be removed', { workdir: workdir.path, error: toError(error) });
    });
  }
}

export default defineAction({
  name: 'command',
  timeoutSeconds: 3600,
  description:
    'runs a program (payload {"command", "args", "cwd", "env", "input", "inputs", "outputs"}), staging files in and out of a temporary directory, and reports its exit code and output',
  parsePayload: parseCommandPayload,
  async run(context) {
    const { payload, signal } = context;
    signal.throwIfAborted();
    // Before anything else: a program the executor's operator did not list must not start at all.
    const program = await context.programs.allowed(payload.command);
    signal.throwIfAborted();
    return payload.stage === undefined ? runPlain(context, program) : runStaged(context, program, payload.stage);
  },
});
