/**
 * One call of an action's `run`, wherever it runs: in an action worker thread (action-worker.ts) or in
 * the executor's own event loop for an action that asks for it (in-process-runner.ts). Both build the
 * same context and read what `run` returned or threw the same way.
 */
import { tmpdir } from 'node:os';
import { isCounters } from '../api/batch/batch-field.js';
import type { JobDocument } from '../api/job/document.js';
import { LazyJobApi } from '../api/client/lazy-job-api.js';
import { toError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { ActionContext, ActionDefinition, ActionOutcome, ProgramPolicy, StagePolicy } from '../sdk/action.js';
import type { JobApi } from '../api/client/job-api.js';
import { ActionPayloadError, parseJobPayload } from '../sdk/action-payload.js';
import { loadActionModule } from './action-loader.js';
import { programAllowlist } from './program-allowlist.js';
import { stagePolicy } from './stage-policy.js';
import type { RunOutcome, WorkerSettings } from './worker-protocol.js';

/** What every run of one thread (or of the executor's event loop) shares. */
export interface ActionServices {
  readonly api: JobApi;
  readonly programs: ProgramPolicy;
  readonly staging: StagePolicy;
  definitionOf(file: string): Promise<ActionDefinition>;
}

/** The run's own parts of its context. */
export interface RunParts {
  readonly signal: AbortSignal;
  readonly log: Logger;
  readonly progress: (percent: number, message?: string) => void;
}

export function actionServices(settings: WorkerSettings): ActionServices {
  const definitions = new Map<string, Promise<ActionDefinition>>();
  return {
    // The HTTP client behind it is loaded when an action first calls it.
    api: new LazyJobApi(async () => {
      const { JobApiClient } = await import('../api/client/job-api-client.js');
      return JobApiClient.create({
        baseUrl: settings.api.baseUrls,
        compatibility: settings.api.compatibility,
        timeoutMs: settings.api.timeoutMs,
        ...(settings.api.credentials === undefined ? {} : { credentials: settings.api.credentials }),
        ...(settings.api.ca === undefined ? {} : { ca: settings.api.ca }),
      });
    }),
    programs: programAllowlist(settings.commandAllow ?? []),
    staging: stagePolicy(settings.commandStage ?? { workRoot: tmpdir(), dirs: [], fetchFrom: [], maxInputBytes: 0, fetchTimeoutMs: 1000 }),
    definitionOf(file) {
      let definition = definitions.get(file);
      if (definition === undefined) {
        definition = loadActionModule(file);
        // A module that failed once may be fixed on disk; the next job tries again.
        definition.catch(() => definitions.delete(file));
        definitions.set(file, definition);
      }
      return definition;
    },
  };
}

/** Runs the action of `file` for `job`; never rejects: a throw or a bad result becomes a 'threw' outcome. */
export async function invokeAction(services: ActionServices, file: string, job: JobDocument, parts: RunParts): Promise<RunOutcome> {
  try {
    // An action never starts on a lease already over (the executor was stalled after posting the run).
    parts.signal.throwIfAborted();
    const definition = await services.definitionOf(file);
    const payload = parseJobPayload(definition, job);
    const context: ActionContext = {
      job,
      payload,
      signal: parts.signal,
      log: parts.log,
      progress: parts.progress,
      api: services.api,
      programs: services.programs,
      staging: services.staging,
    };
    const result: ActionOutcome | Promise<ActionOutcome> = definition.run(context);
    return outcomeOfResult(await result);
  } catch (error) {
    const failure = toError(error);
    return {
      kind: 'threw',
      message: failure.message,
      payload: failure instanceof ActionPayloadError,
      ...(failure.stack === undefined ? {} : { stack: failure.stack }),
    };
  }
}

/** The job document keeps return codes as 32-bit signed integers. */
const isReturnCode = (value: unknown): value is number =>
  Number.isInteger(value) && (value as number) >= -2_147_483_648 && (value as number) <= 2_147_483_647;

/** What `run` returned, checked: plain-JS actions can return anything. */
export function outcomeOfResult(value: unknown): RunOutcome {
  if (value === undefined || value === null) return { kind: 'returned', returnCode: 0 };
  if (typeof value === 'number') {
    if (isReturnCode(value)) return { kind: 'returned', returnCode: value };
    return { kind: 'threw', message: `the action returned ${String(value)}, which is not a 32-bit integer return code`, payload: false };
  }
  if (typeof value === 'object' && !Array.isArray(value)) {
    const { returnCode = 0, message, counters } = value as Record<string, unknown>;
    if (!isReturnCode(returnCode)) {
      return {
        kind: 'threw',
        message: `the action returned a returnCode of ${JSON.stringify(returnCode)}, which is not a 32-bit integer`,
        payload: false,
      };
    }
    if (counters !== undefined && !isCounters(counters)) {
      return {
        kind: 'threw',
        message: `the action returned counters ${JSON.stringify(counters)}; expected names to finite numbers`,
        payload: false,
      };
    }
    if (message === undefined || typeof message === 'string') {
      return {
        kind: 'returned',
        returnCode,
        ...(message === undefined ? {} : { message }),
        ...(counters === undefined ? {} : { counters: { ...counters } }),
      };
    }
  }
  return {
    kind: 'threw',
    message: `the action returned ${JSON.stringify(value)}; expected a return code, nothing, or { returnCode?, message?, counters? }`,
    payload: false,
  };
}

/** Clamps an action's progress report to a whole percent; undefined for what is not a number. */
export function clampPercent(percent: unknown): number | undefined {
  if (typeof percent !== 'number' || !Number.isFinite(percent)) return undefined;
  return Math.min(100, Math.max(0, Math.round(percent)));
}
