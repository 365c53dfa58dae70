/**
 * The jobs a distribution's tick asks for (DistributionSpec.jobs), and the check the distributor applies
 * to each one it is given before creating it.
 */
import { ACTION_NAME } from '../api/job/parse.js';
import { checkRetrySpec, type RetryPolicySpec } from '../api/job/retry-policy.js';
import { MAX_PRIORITY, QUEUE_NAME_RULE, isQueueName } from '../recipes/queue-layout.js';
import { MAX_ACTION_TIMEOUT_SECONDS as MAX_JOB_TIMEOUT_SECONDS } from './action.js';
import { fieldsOf, unknownFieldsProblem } from './define.js';
import { describeValue } from './describe-value.js';

/** One job a tick asks for. */
export interface JobSpec {
  readonly action: string;
  /** The resource the job acts on (`target-resource.href`); a tick creates at most one job per target. */
  readonly target?: string;
  /** 0-999, lower runs first; the job API's default (999) when absent. */
  readonly priority?: number;
  /** Any JSON value; the action receives it as its payload. */
  readonly payload?: unknown;
  /** Overrides the action's own timeout. */
  readonly timeoutSeconds?: number;
  readonly tags?: readonly string[];
  /** The named queue the job goes to (only executors given `--queue <name>` take it); `default` when absent. */
  readonly queue?: string;
  /** The job's retry policy, over its action's field by field (camelCase, as in defineAction). */
  readonly retry?: RetryPolicySpec;
}

export type JobSpecs = Iterable<JobSpec> | AsyncIterable<JobSpec>;

const JOB_SPEC_FIELDS: readonly string[] = ['action', 'target', 'priority', 'payload', 'timeoutSeconds', 'tags', 'queue', 'retry'];

/** Every problem of one job spec a tick yielded, or none. */
export function jobSpecProblems(spec: unknown): string[] {
  const fields = fieldsOf(spec);
  if (fields === undefined) return [`a job spec must be an object, got ${describeValue(spec)}`];
  const { action, target, priority, payload, timeoutSeconds, tags, queue, retry } = fields;
  const problems: string[] = [];
  if (typeof action !== 'string' || !ACTION_NAME.test(action)) problems.push(`action must be an action name, got ${describeValue(action)}`);
  if (target !== undefined && (typeof target !== 'string' || target.trim() === ''))
    problems.push(`target must be a resource href, got ${describeValue(target)}`);
  if (priority !== undefined && (typeof priority !== 'number' || !Number.isInteger(priority) || priority < 0 || priority > MAX_PRIORITY)) {
    problems.push(`priority must be an integer from 0 to ${MAX_PRIORITY}, got ${describeValue(priority)}`);
  }
  if (payload !== undefined) {
    try {
      // undefined for a function or a symbol, whatever the typings say.
      if (typeof JSON.stringify(payload) !== 'string') problems.push(`payload must be a JSON value, got ${describeValue(payload)}`);
    } catch (error) {
      problems.push(`payload cannot be serialised as JSON: ${error instanceof Error ? error.message : String(error)}`);
    }
  }
  if (
    timeoutSeconds !== undefined &&
    (typeof timeoutSeconds !== 'number' ||
      !Number.isInteger(timeoutSeconds) ||
      timeoutSeconds < 1 ||
      timeoutSeconds > MAX_JOB_TIMEOUT_SECONDS)
  ) {
    problems.push(
      `timeoutSeconds must be a whole number of seconds from 1 to ${MAX_JOB_TIMEOUT_SECONDS}, got ${describeValue(timeoutSeconds)}`,
    );
  }
  if (tags !== undefined && (!Array.isArray(tags) || !tags.every((tag) => typeof tag === 'string')))
    problems.push('tags must be a list of strings');
  if (queue !== undefined && !isQueueName(queue))
    problems.push(`queue must be a queue name (${QUEUE_NAME_RULE}), got ${describeValue(queue)}`);
  if (retry !== undefined) {
    const checked = checkRetrySpec(retry, 'camel', 'retry');
    if ('problems' in checked) problems.push(...checked.problems);
  }
  const unknown = unknownFieldsProblem(fields, JOB_SPEC_FIELDS);
  if (unknown !== undefined) problems.push(unknown);
  return problems;
}
