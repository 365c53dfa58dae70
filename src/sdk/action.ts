/**
 * The contract between the job executor and drop-in action modules (docs/contracts.md). Authors write
 *
 *   export default defineAction({ name: 'cleanup_jobs', timeoutSeconds: 600, async run({ job, log }) { ... } });
 *
 * and the executor hands `run` one context object (docs/style.md): it never inspects a function's
 * arity or calls actions in different shapes.
 */
import { ACTION_NAME } from '../api/job/parse.js';
import { MAX_ATTEMPTS_LIMIT, type JobDocument } from '../api/job/document.js';
import { checkRetrySpec, type RetryPolicySpec } from '../api/job/retry-policy.js';
import type { JobApi } from '../api/client/job-api.js';
import type { Logger } from '../util/logger.js';
import { defineChecked, definitionProblems, fieldsOf, isDefinition, unknownFieldsProblem, type DefinitionKind } from './define.js';
import { describeValue } from './describe-value.js';
import { limitProblems } from './action-limits.js';

export interface ActionContext<P = unknown> {
  readonly job: JobDocument;
  /** The job's payload after `parsePayload`; without one, the JSON value of `job.payload` (undefined if absent). */
  readonly payload: P;
  /** Aborted on timeout, cancellation or executor shutdown; pass it to every I/O call that takes one. */
  readonly signal: AbortSignal;
  /** Carries the job's id and action in every record. */
  readonly log: Logger;
  /** Cheap to call often: the executor throttles the writes to the API. */
  readonly progress: (percent: number, message?: string) => void;
  /** The job API with this executor's credentials; its client is loaded on first use. */
  readonly api: JobApi;
  /** Which programs the executor lets actions start (`--command-allow`): ask before spawning one. */
  readonly programs: ProgramPolicy;
  /** Which files and URLs the executor lets actions stage in and out (`--command-stage-dir`, `--command-fetch-from`). */
  readonly staging: StagePolicy;
}

/** The executor operator's rule for programs an action starts. */
export interface ProgramPolicy {
  /**
   * The path to execute for `program` as a job named it: the program itself when the executor has no
   * list, else its real path once it is found on the list. Rejects, with a message naming the program
   * and `--command-allow`, a program off the list, or not named by absolute path.
   */
  allowed(program: string): Promise<string>;
}

/**
 * The executor operator's rule for files an action copies in from, or out to, the executor's host, and
 * for URLs it fetches on a job's behalf: a job must not read or write arbitrary files of the host, nor
 * make the executor fetch whatever it names. Nothing is allowed unless the operator listed it.
 */
export interface StagePolicy {
  /** Where working directories are made (`--command-work-dir`, default the executor's temporary directory). */
  readonly workRoot: string;
  /** Most bytes one job's inputs may add up to (`--command-input-max-bytes`). */
  readonly maxInputBytes: number;
  /** Longest one URL's download may take, from request to last byte (`--command-fetch-timeout`). */
  readonly fetchTimeoutMs: number;
  /**
   * The real path (symlinks resolved) of a regular file a job asks to read, when it lies inside a
   * `--command-stage-dir`; rejects, naming the file and the option, otherwise.
   */
  readableFile(file: string): Promise<string>;
  /** The real path of a directory a job asks to write to, when it lies inside a `--command-stage-dir`; rejects otherwise. */
  writableDirectory(directory: string): Promise<string>;
  /** Throws, naming the URL and `--command-fetch-from`, unless the URL's origin is listed. */
  checkFetch(url: URL): void;
}

/** A result with a message: `returnCode` 0 (the default) is SUCCESS; `message` becomes the job's status message. */
export interface ActionResult {
  readonly returnCode?: number;
  /** Counts of what the run did (`{ movedBytes: 10 }`): kept on the job and summed on its batch. */
  readonly counters?: Readonly<Record<string, number>>;
  readonly message?: string;
}

/**
 * What `run` may return: 0 or nothing is SUCCESS, any other number is FAILED with that return code,
 * an ActionResult adds a status message (e.g. a command's output). Throwing is FAILED with the error's
 * message and stack.
 */
// `void` lets `async run() { ... }` without a return statement type-check as an action.
// eslint-disable-next-line @typescript-eslint/no-invalid-void-type
export type ActionOutcome = number | void | ActionResult;

/** What an author passes to `defineAction`. */
export interface ActionSpec<P = unknown> {
  /** Matches the job's `action` field; same alphabet as the job API accepts. */
  readonly name: string;
  /** Default time the action may run; a job's own `timeout` overrides it. */
  readonly timeoutSeconds: number;
  /**
   * How many attempts of a job may end without a result (its executor died running it) before the
   * job is FAILED instead of run again; a job's own `max-attempts` overrides it, the executor's
   * `--max-attempts` (default 5) applies without either.
   */
  readonly maxAttempts?: number;
  /**
   * How failed attempts are retried: `{ attempts, backoff: 'exponential' | 'fixed', delaySeconds,
   * maxDelaySeconds, jitter, on: [return codes] | 'any' }`, every field optional (defaults: attempts 1,
   * i.e. no retry; exponential; 1 s; 3600 s; jitter 0; on 'any'). A job's own `retry` field overrides
   * it field by field. See the README, "Retries and dead letters".
   */
  readonly retry?: RetryPolicySpec;
  /**
   * Never more than this many jobs of the action run at once across every executor of the fleet
   * (a kazoo Semaphore under the queue root); the operator may override it (`jobctl limits`).
   */
  readonly maxConcurrent?: number;
  /** At most this many jobs of the action start per second across the fleet (a token bucket); overridable likewise. */
  readonly ratePerSecond?: number;
  readonly description?: string;
  /**
   * Where the action runs: `'thread'` (the default), a worker thread of its slot, where a timeout can
   * end even code that never yields; or `'in-process'`, the executor's own event loop, several times
   * cheaper per job but with no hard kill: only for actions that always yield and honour their
   * signal (an action that blocks stalls the whole executor). The operator can refuse it
   * (`job-executor --in-process never`).
   */
  readonly isolation?: ActionIsolation;
  /** Validates the JSON value of `job.payload`; throwing fails the job before `run` starts. */
  readonly parsePayload?: (raw: unknown) => P;
  run(context: ActionContext<P>): Promise<ActionOutcome> | ActionOutcome;
}

export type ActionIsolation = 'thread' | 'in-process';
export const ACTION_ISOLATIONS: readonly ActionIsolation[] = ['thread', 'in-process'];

/** Marks what `defineAction` made (see DefinitionKind.brand for why it is a global symbol). */
export const ACTION_BRAND: unique symbol = Symbol.for('zk-job-engine.action-definition');

/** A validated, frozen spec; only `defineAction` makes these, which is how the loader tells them apart. */
export interface ActionDefinition<P = unknown> extends ActionSpec<P> {
  readonly [ACTION_BRAND]: true;
}

/** The job API's rule for action names (one definition for both). */
export const ACTION_NAME_PATTERN = ACTION_NAME;
export const MAX_ACTION_TIMEOUT_SECONDS = 31 * 24 * 60 * 60;

const KNOWN_FIELDS: ReadonlySet<string> = new Set([
  'name',
  'timeoutSeconds',
  'maxAttempts',
  'retry',
  'maxConcurrent',
  'ratePerSecond',
  'description',
  'isolation',
  'parsePayload',
  'run',
]);

export class ActionDefinitionError extends TypeError {
  override readonly name = 'ActionDefinitionError';
  readonly code = 'invalid-action-definition';
}

/** Every problem at once, so an author fixes a definition in one pass. Empty when the spec is valid. */
export function actionSpecProblems(spec: unknown): string[] {
  const fields = fieldsOf(spec);
  if (fields === undefined) return [`an action definition must be an object, got ${describeValue(spec)}`];
  const problems: string[] = [];
  const { name, timeoutSeconds, maxAttempts, retry, description, isolation, parsePayload, run } = fields;
  if (typeof name !== 'string' || !ACTION_NAME_PATTERN.test(name)) {
    problems.push(`name must be 1-128 characters of letters, digits, _ . : - starting with a letter or digit, got ${describeValue(name)}`);
  }
  if (typeof timeoutSeconds !== 'number' || !Number.isFinite(timeoutSeconds) || timeoutSeconds <= 0) {
    problems.push(`timeoutSeconds must be a positive number of seconds, got ${describeValue(timeoutSeconds)}`);
  } else if (timeoutSeconds > MAX_ACTION_TIMEOUT_SECONDS) {
    problems.push(`timeoutSeconds must be at most ${MAX_ACTION_TIMEOUT_SECONDS} (31 days), got ${timeoutSeconds}`);
  }
  if (
    maxAttempts !== undefined &&
    (typeof maxAttempts !== 'number' || !Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > MAX_ATTEMPTS_LIMIT)
  ) {
    problems.push(`maxAttempts must be an integer from 1 to ${MAX_ATTEMPTS_LIMIT} when given, got ${describeValue(maxAttempts)}`);
  }
  if (retry !== undefined) {
    const checked = checkRetrySpec(retry, 'camel', 'retry');
    if ('problems' in checked) problems.push(...checked.problems);
  }
  problems.push(...limitProblems(fields));
  if (description !== undefined && typeof description !== 'string') {
    problems.push(`description must be a string when given, got ${describeValue(description)}`);
  }
  if (isolation !== undefined && !(ACTION_ISOLATIONS as readonly unknown[]).includes(isolation)) {
    problems.push(`isolation must be 'thread' or 'in-process' when given, got ${describeValue(isolation)}`);
  }
  if (parsePayload !== undefined && typeof parsePayload !== 'function') {
    problems.push(`parsePayload must be a function when given, got ${describeValue(parsePayload)}`);
  }
  if (typeof run !== 'function') problems.push(`run must be a function, got ${describeValue(run)}`);
  const unknown = unknownFieldsProblem(fields, KNOWN_FIELDS);
  if (unknown !== undefined) problems.push(unknown);
  return problems;
}

const ACTION_KIND: DefinitionKind<typeof ACTION_BRAND> = Object.freeze({
  noun: 'action',
  definer: 'defineAction',
  brand: ACTION_BRAND,
  problemsOf: actionSpecProblems,
  errorOf: (message: string) => new ActionDefinitionError(message),
});

/**
 * Validates eagerly, so a bad definition fails when its module is imported, naming what is wrong.
 * A typed payload needs a `parsePayload` to produce it: the overloads keep `P` from being asserted unchecked.
 */
export function defineAction<P>(spec: ActionSpec<P> & { readonly parsePayload: (raw: unknown) => P }): ActionDefinition<P>;
export function defineAction(spec: ActionSpec): ActionDefinition;
export function defineAction<P>(spec: ActionSpec<P>): ActionDefinition<P> {
  return defineChecked(ACTION_KIND, spec, () => ({
    name: spec.name,
    timeoutSeconds: spec.timeoutSeconds,
    ...(spec.maxAttempts === undefined ? {} : { maxAttempts: spec.maxAttempts }),
    ...(spec.retry === undefined ? {} : { retry: retrySpecOf(spec.retry) }),
    ...(spec.maxConcurrent === undefined ? {} : { maxConcurrent: spec.maxConcurrent }),
    ...(spec.ratePerSecond === undefined ? {} : { ratePerSecond: spec.ratePerSecond }),
    ...(spec.description === undefined ? {} : { description: spec.description }),
    ...(spec.isolation === undefined ? {} : { isolation: spec.isolation }),
    ...(spec.parsePayload === undefined ? {} : { parsePayload: spec.parsePayload }),
    // The executor calls `definition.run(context)`, so `this` is the definition, which holds the same fields.
    // eslint-disable-next-line @typescript-eslint/unbound-method
    run: spec.run,
  }));
}

/** The checked, frozen copy of a valid `retry` (defineChecked has checked it before this runs). */
function retrySpecOf(retry: RetryPolicySpec): RetryPolicySpec {
  const checked = checkRetrySpec(retry, 'camel', 'retry');
  return 'spec' in checked ? checked.spec : {};
}

/** True for values made by `defineAction` (from any copy of this module) that still hold a valid spec. */
export function isActionDefinition(value: unknown): value is ActionDefinition {
  return isDefinition(ACTION_KIND, value);
}

/** Why a branded-looking value is still not usable, for the loader's error message. */
export function actionDefinitionProblems(value: unknown): string[] {
  return definitionProblems(ACTION_KIND, value);
}
