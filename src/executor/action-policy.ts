/**
 * Which loaded actions this executor offers. An action that runs arbitrary programs turns every key
 * allowed to create jobs into a shell on this node, so it is offered only when the operator opted in
 * (`--allow-command`); otherwise it is withheld, and a job asking for it fails as an unknown action
 * (return code 127) with a message naming the option, instead of running.
 */
import type { Logger } from '../util/logger.js';
import type { DropInLoadFailure } from '../util/drop-in-modules.js';

/** The bundled action that runs programs (actions/command.ts). */
export const COMMAND_ACTION = 'command';

export interface OfferedActions<T> {
  /** Keyed by action name: what this executor runs and publishes. */
  readonly actions: ReadonlyMap<string, T>;
  readonly failures: readonly DropInLoadFailure[];
  /** Loaded but not offered, with the reason a job of theirs fails with. */
  readonly withheld: ReadonlyMap<string, string>;
}

export function offeredActions<T>(
  loaded: { readonly actions: ReadonlyMap<string, T>; readonly failures: readonly DropInLoadFailure[] },
  options: { readonly allowCommand: boolean },
  logger: Logger,
): OfferedActions<T> {
  const withheld = new Map<string, string>();
  const actions = new Map<string, T>(loaded.actions);
  if (!options.allowCommand && actions.delete(COMMAND_ACTION)) {
    withheld.set(COMMAND_ACTION, 'this executor does not offer it: running programs must be allowed by its operator with --allow-command');
    logger.info('the command action is loaded but not offered: start the executor with --allow-command to run programs');
  }
  return { actions, failures: loaded.failures, withheld };
}
