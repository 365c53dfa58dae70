/**
 * Loads drop-in action modules from `actions/` and every `--actions-dir` through the shared drop-in
 * loader: what is particular to actions is only their definition check and their export's name.
 */
import type { Logger } from '../util/logger.js';
import {
  DEFAULT_IMPORT_TIMEOUT_MS,
  loadDropInModule,
  loadDropIns,
  type DropInKind,
  type DropInLoadFailure,
  type LoadDropInsOptions,
  type LoadedDropIn,
} from '../util/drop-in-modules.js';
import { actionDefinitionProblems, type ActionDefinition } from '../sdk/action.js';

export { DropInDirectoryError as ActionDirectoryError, isDropInModuleName as isActionModuleName } from '../util/drop-in-modules.js';

export type LoadedAction = LoadedDropIn<ActionDefinition>;
export type ActionLoadFailure = DropInLoadFailure;

export interface LoadedActions {
  /** Keyed by action name, in name order. */
  readonly actions: ReadonlyMap<string, LoadedAction>;
  /** In file-path order. */
  readonly failures: readonly ActionLoadFailure[];
}

const ACTION_KIND: DropInKind<ActionDefinition> = {
  noun: 'action',
  exportName: 'action',
  example: 'export default defineAction({...})',
  problemsOf: actionDefinitionProblems,
  nameOf: (definition) => definition.name,
  describe: (definition) => ({ timeoutSeconds: definition.timeoutSeconds }),
};

/** One action module's definition; also how a worker thread loads the action it is asked to run. */
export function loadActionModule(file: string, timeoutMs: number = DEFAULT_IMPORT_TIMEOUT_MS): Promise<ActionDefinition> {
  return loadDropInModule(file, ACTION_KIND, timeoutMs);
}

export async function loadActions(dirs: readonly string[], logger: Logger, options: LoadDropInsOptions = {}): Promise<LoadedActions> {
  const { definitions, failures } = await loadDropIns(dirs, ACTION_KIND, logger, options);
  return { actions: definitions, failures };
}
