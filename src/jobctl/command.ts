/**
 * The shape every jobctl command has: its yargs syntax and options, and a `run` that gets the compiled
 * options through a CommandContext and the command's own arguments as yargs parsed them (unknown
 * until read), and returns the exit code. The entry point wires them into yargs.
 */
import type { Argv } from 'yargs';
import type { OptionArgs } from '../cli/option-readers.js';
import type { CommandContext } from './context.js';

export interface JobctlCommand {
  /** yargs syntax, e.g. `show <id>`. */
  readonly command: string;
  readonly describe: string;
  readonly builder: (argv: Argv) => Argv;
  run(ctx: CommandContext, args: OptionArgs): Promise<number>;
}
