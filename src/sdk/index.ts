/**
 * The SDK: every contract a module author programs against (actions, distributions, schedules, the job
 * specs of a tick) and the helpers such modules share. The package entry (src/index.ts) re-exports all
 * of it; daemons import the contract modules of this folder directly, and nothing here imports a daemon.
 */
export * from './action-entry.js';
export {
  defineDistribution,
  type DistributionContext,
  type DistributionDefinition,
  type DistributionSpec,
  type QueueAccess,
} from './distribution.js';
export type { JobSpec, JobSpecs } from './job-spec.js';
export type { ScheduleSpec } from './schedule-spec.js';
export { defineBatch, type BatchArgs, type BatchGeneratorDefinition, type BatchGeneratorSpec, type BatchTaskItem } from './batch.js';
