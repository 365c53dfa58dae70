/**
 * Task generators for batches (docs/batches.md): a drop-in module of the batch feeder's `batches/`
 * folder (or a `--batches-dir`) made with `defineBatch`, that yields a batch's task specs lazily and
 * resumes from a marker, so that a batch of ten million tasks is never in memory:
 *
 *   export default defineBatch({
 *     name: 'rawx_decommission',
 *     action: 'move_chunk',
 *     estimate: ({ service }) => countChunks(service),
 *     async *tasks({ service }, fromMarker) {
 *       for await (const chunk of listChunks(service, { after: fromMarker })) {
 *         yield { spec: { payload: { chunk } }, marker: chunk };
 *       }
 *     },
 *   });
 *
 * `tasks(args, fromMarker)` must yield, from a marker it gave, exactly what followed that marker the
 * first time: a new leader resumes from the last marker the batch recorded, and a task's identity is
 * its index (its idempotency key is `<batch uuid>:<index>`).
 */
import { defineChecked, definitionProblems, fieldsOf, unknownFieldsProblem, type DefinitionKind } from './define.js';
import { describeValue } from './describe-value.js';
import { ACTION_NAME } from '../api/job/parse.js';

/** One task: its spec (payload, target, priority) and where the generator resumes after it. */
export interface BatchTaskItem {
  readonly spec: { readonly payload?: unknown; readonly target?: string; readonly priority?: number };
  readonly marker: string;
}

export type BatchArgs = Readonly<Record<string, unknown>>;

export interface BatchGeneratorSpec {
  /** How a batch names it (`"generator": "<name>"`). */
  readonly name: string;
  /** The tasks' action, unless the batch names another. */
  readonly action?: string;
  readonly description?: string;
  /** How many tasks there will be, about: the batch's total while it is generated. */
  readonly estimate?: (args: BatchArgs) => number | Promise<number>;
  /** The tasks after `fromMarker` (all of them when undefined), lazily. */
  readonly tasks: (args: BatchArgs, fromMarker: string | undefined) => AsyncIterable<BatchTaskItem> | Iterable<BatchTaskItem>;
}

export const BATCH_GENERATOR_BRAND: unique symbol = Symbol.for('zk-job-engine.batch-generator-definition');

export type BatchGeneratorDefinition = BatchGeneratorSpec & { readonly [BATCH_GENERATOR_BRAND]: true };

export class BatchGeneratorDefinitionError extends TypeError {
  override readonly name = 'BatchGeneratorDefinitionError';
  readonly code = 'invalid-batch-generator-definition';
}

const KNOWN_FIELDS: ReadonlySet<string> = new Set(['name', 'action', 'description', 'estimate', 'tasks']);

export function batchGeneratorSpecProblems(spec: unknown): string[] {
  const fields = fieldsOf(spec);
  if (fields === undefined) return [`a batch generator definition must be an object, got ${describeValue(spec)}`];
  const problems: string[] = [];
  const { name, action, description, estimate, tasks } = fields;
  if (typeof name !== 'string' || !ACTION_NAME.test(name))
    problems.push(`name must be 1-128 letters, digits, _ . : -, got ${describeValue(name)}`);
  if (action !== undefined && (typeof action !== 'string' || !ACTION_NAME.test(action)))
    problems.push(`action must be an action name, got ${describeValue(action)}`);
  if (description !== undefined && typeof description !== 'string')
    problems.push(`description must be a string, got ${describeValue(description)}`);
  if (estimate !== undefined && typeof estimate !== 'function')
    problems.push(`estimate must be a function, got ${describeValue(estimate)}`);
  if (typeof tasks !== 'function')
    problems.push(`tasks must be a function (args, fromMarker) yielding {spec, marker}, got ${describeValue(tasks)}`);
  const unknown = unknownFieldsProblem(fields, KNOWN_FIELDS);
  if (unknown !== undefined) problems.push(unknown);
  return problems;
}

const BATCH_GENERATOR_KIND: DefinitionKind<typeof BATCH_GENERATOR_BRAND> = Object.freeze({
  noun: 'batch generator',
  definer: 'defineBatch',
  brand: BATCH_GENERATOR_BRAND,
  problemsOf: batchGeneratorSpecProblems,
  errorOf: (message: string) => new BatchGeneratorDefinitionError(message),
});

export function defineBatch(spec: BatchGeneratorSpec): BatchGeneratorDefinition {
  return defineChecked(BATCH_GENERATOR_KIND, spec, () => ({
    name: spec.name,
    ...(spec.action === undefined ? {} : { action: spec.action }),
    ...(spec.description === undefined ? {} : { description: spec.description }),
    ...(spec.estimate === undefined ? {} : { estimate: spec.estimate }),
    tasks: spec.tasks,
  }));
}

export function batchGeneratorDefinitionProblems(value: unknown): string[] {
  return definitionProblems(BATCH_GENERATOR_KIND, value);
}
