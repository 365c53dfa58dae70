/**
 * What a key may do to one job, beyond its role's route-level permission (credentials.ts): the checks
 * that need the job itself, run inside the job's update so they see the revision being changed.
 *
 * An executor key (permission `claim` without `edit`) is not bound to an executor name: the engine's
 * executors write `<name>@<session>` into the job's `executor`, and any executor key may act for any
 * executor. What it may do is what executors do: claim a QUEUED job, write the job while an executor
 * owns it (progress, result), hand it back (QUEUED with no executor), take over a job whose owner died
 * (an edit that sets RUNNING with its own name), or fail it before running (FAILED with its name). It
 * may not touch a job nobody owns, give a job to another executor without (re)claiming it, or change
 * its acl.
 */
import { ApiError, notFound } from '../errors.js';
import { aclBound, mayEdit, mayView } from './job-acl.js';
import { isExpired, type JobDocument } from '../job/document.js';
import type { JobEdit } from '../job/parse.js';
import type { AccessControl, Principal } from './access.js';

function forbidden(principal: Principal, message: string, details: Record<string, unknown> = {}): ApiError {
  return new ApiError('forbidden', `role ${principal.role} ${message}`, { details: { role: principal.role, ...details } });
}

/** Throws 403 unless the principal may apply `edit` to `current`. */
export function checkEdit(access: AccessControl, principal: Principal, current: JobDocument, edit: JobEdit): void {
  if (access.allows(principal, 'edit')) return;
  const owner = current.executor ?? undefined;
  const job = { job: current.id };
  if (edit.acl !== undefined) throw forbidden(principal, `may not change the acl of ${current.id}`, job);
  if (isSchedulerEdit(current, edit)) return;
  if (edit.executor === undefined || edit.executor === owner) {
    if (owner === undefined || owner === '')
      throw forbidden(principal, `may edit only a job an executor owns; ${current.id} has none`, job);
    return;
  }
  if (edit.executor === null) {
    if (owner !== undefined && edit.state === 'QUEUED') return; // an owner handing the job back
    throw forbidden(principal, `may clear the executor of ${current.id} only when putting an owned job back to QUEUED`, job);
  }
  // A new executor: only as a claim (RUNNING) or a failure before the run (FAILED), as executors write,
  // or the end of a job that expired before it started (CANCELED).
  if (edit.state === 'RUNNING' || edit.state === 'FAILED') return;
  if (edit.state === 'CANCELED' && current.state === 'QUEUED' && isExpired(current, Date.now())) return;
  throw forbidden(
    principal,
    `may not hand ${current.id} to executor ${JSON.stringify(edit.executor)} without claiming it (state RUNNING)`,
    job,
  );
}

/**
 * What the job scheduler writes (it runs with an executor key, as the queue reconciler does): a QUEUED
 * job's `not-before` cleared once it is enqueued, or cleared and the job parked when its queue is
 * full, or, for one whose expiry came, CANCELED with a message.
 */
function isSchedulerEdit(current: JobDocument, edit: JobEdit): boolean {
  if (current.state !== 'QUEUED' || edit['not-before'] !== null) return false;
  const { immutable: _immutable, 'not-before': _notBefore, state, 'status-message': _message, parked, ...others } = edit;
  if (Object.keys(others).length > 0 || (parked !== undefined && (!parked || state !== undefined))) return false;
  if (state === undefined) return edit['status-message'] === undefined;
  return state === 'CANCELED' && isExpired(current, Date.now());
}

/**
 * Throws 403 unless the principal may cancel `current`: `edit`, or `cancel-own` on a job it created
 * or whose acl lets it edit (job-acl.ts); a job the principal may not see is 404, as if absent.
 */
export function checkCancel(access: AccessControl, principal: Principal, current: JobDocument): void {
  if (access.allows(principal, 'edit')) return;
  if (aclBound(access, principal) && !mayView(principal, current)) throw notFound(`${current.id} not found`);
  if (!access.allows(principal, 'cancel-own')) throw forbidden(principal, `may not cancel jobs`, { job: current.id });
  if (current['created-by'] === principal.credentialId) return;
  if (current.acl !== undefined && mayEdit(principal, current)) return;
  throw forbidden(principal, `may cancel only the jobs its key created; ${current.id} was not`, { job: current.id });
}

/** Whether the principal may delete only final jobs (`delete-final` without `delete`). */
export function deletesFinalOnly(access: AccessControl, principal: Principal): boolean {
  return !access.allows(principal, 'delete');
}

/** Throws 403 when the key carries an action allowlist without `action`. */
export function checkCreate(principal: Principal, action: string): void {
  const { actions } = principal;
  if (actions === undefined || actions.includes(action)) return;
  throw forbidden(
    principal,
    `key ${principal.credentialId} may create jobs of action ${actions.join(', ')} only, not ${JSON.stringify(action)}`,
    {
      action,
      actions,
    },
  );
}
