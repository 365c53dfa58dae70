/**
 * What an action's `run` receives as `payload` (ActionContext.payload): the job's `payload` is JSON text
 * (or absent), checked by the action's own `parsePayload` when it has one. The executor applies this to
 * each job before `run`; a refusal fails the job with its own return code.
 */
import type { JobDocument } from '../api/job/document.js';
import { toError } from '../util/errors.js';
import type { ActionDefinition } from './action.js';

export class ActionPayloadError extends Error {
  override readonly name = 'ActionPayloadError';
  readonly code = 'invalid-action-payload';
}

/** The payload `run` receives. Throws ActionPayloadError (with the cause) so the executor fails the job. */
export function parseJobPayload<P>(definition: ActionDefinition<P>, job: JobDocument): P {
  let raw: unknown;
  if (job.payload !== undefined) {
    try {
      raw = JSON.parse(job.payload);
    } catch (error) {
      throw new ActionPayloadError(`payload of ${job.id} is not valid JSON: ${toError(error).message}`, { cause: error });
    }
  }
  // defineAction's overloads make P `unknown` whenever there is no parsePayload.
  if (definition.parsePayload === undefined) return raw as P;
  try {
    return definition.parsePayload(raw);
  } catch (error) {
    const reason = toError(error);
    throw new ActionPayloadError(`payload of ${job.id} rejected by action ${definition.name}: ${reason.message}`, {
      cause: reason,
    });
  }
}
