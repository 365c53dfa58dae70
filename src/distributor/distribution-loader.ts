/**
 * Loads drop-in distribution modules from `distributors/` and every `--distributors-dir` through the
 * shared drop-in loader (a broken module is reported with its file and the others still load).
 */
import type { Logger } from '../util/logger.js';
import { loadDropIns, type DropInKind, type LoadDropInsOptions, type LoadedDropIns } from '../util/drop-in-modules.js';
import { distributionDefinitionProblems, type DistributionDefinition } from '../sdk/distribution.js';

export type LoadedDistributions = LoadedDropIns<DistributionDefinition>;

const DISTRIBUTION_KIND: DropInKind<DistributionDefinition> = {
  noun: 'distribution',
  exportName: 'distribution',
  example: 'export default defineDistribution({...})',
  problemsOf: distributionDefinitionProblems,
  nameOf: (definition) => definition.name,
  describe: (definition) => ({
    schedule: definition.schedule,
    enabledByDefault: definition.enabledByDefault,
    ...(definition.description === undefined ? {} : { description: definition.description }),
  }),
};

export function loadDistributions(dirs: readonly string[], logger: Logger, options: LoadDropInsOptions = {}): Promise<LoadedDistributions> {
  return loadDropIns(dirs, DISTRIBUTION_KIND, logger, options);
}
