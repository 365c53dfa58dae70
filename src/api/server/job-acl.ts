/**
 * Nuvla's job `acl`, enforced for keys that do not hold `read-all` (viewer, producer): such a key sees
 * a job when the job has no acl, when the key created it (`created-by`), or when one of the key's
 * identities is listed under a right that implies viewing; it may edit (cancel) a job whose acl lists
 * it under a right that implies editing. Engine roles (executor, maintenance, distributor) and
 * operator/admin hold `read-all`: they must process every job, whatever its acl.
 *
 * Rights as Nuvla defines them: `owners` may do everything; `edit-acl` implies `edit-data` implies
 * `edit-meta`; `view-acl` implies `view-data` implies `view-meta`; every edit right and `manage` and
 * `delete` imply `view-meta`. A key's identities: its id (`credential/<uuid>`), and Nuvla's
 * `group/nuvla-user` (any authenticated caller) and `group/nuvla-anon` (anyone).
 *
 * Searches get the same rule as a CIMI filter ANDed with the caller's, so it runs in SQL on both
 * stores and counts and pages stay right. Events get it as an audience computed once per event from
 * the job it came from, so a stream's subscribers are checked without reading the job again.
 */
import { parseFilter } from '../cimi/parser.js';
import type { FilterNode } from '../cimi/ast.js';
import type { JobDocument } from '../job/document.js';
import type { AccessControl, Principal } from './access.js';

const VIEW_RIGHTS = ['owners', 'view-meta', 'view-data', 'view-acl', 'edit-meta', 'edit-data', 'edit-acl', 'manage', 'delete'] as const;
const EDIT_RIGHTS = ['owners', 'edit-meta', 'edit-data', 'edit-acl'] as const;
const SAFE_IDENTITY = /^[A-Za-z0-9/_.:@-]+$/;

/** Whether the job's acl applies to this principal (it lacks `read-all`). */
export function aclBound(access: AccessControl, principal: Principal): boolean {
  return !access.allows(principal, 'read-all');
}

export function identitiesOf(principal: Principal): string[] {
  return [principal.credentialId, 'group/nuvla-user', 'group/nuvla-anon'];
}

function listed(acl: Readonly<Record<string, unknown>>, rights: readonly string[], identities: readonly string[]): boolean {
  return rights.some((right) => {
    const value = acl[right];
    const values: unknown[] = Array.isArray(value) ? value : [value];
    return values.some((item) => typeof item === 'string' && identities.includes(item));
  });
}

export function mayView(principal: Principal, job: JobDocument): boolean {
  if (job.acl === undefined || job['created-by'] === principal.credentialId) return true;
  return listed(job.acl, VIEW_RIGHTS, identitiesOf(principal));
}

/**
 * Who among acl-bound keys may see the events of `job`: `anyone` when it has no acl, else the
 * identities mayView would accept (its creator, and those listed under a viewing right).
 */
export type EventAudience = 'anyone' | readonly string[];

export function audienceOf(job: JobDocument): EventAudience {
  const { acl } = job;
  if (acl === undefined) return 'anyone';
  const identities = new Set<string>();
  if (job['created-by'] !== undefined) identities.add(job['created-by']);
  for (const right of VIEW_RIGHTS) {
    const value = acl[right];
    for (const item of Array.isArray(value) ? (value as unknown[]) : [value]) if (typeof item === 'string') identities.add(item);
  }
  return [...identities];
}

/** Whether a caller with `identities` (identitiesOf) is in the audience; the same answer as mayView. */
export function inAudience(audience: EventAudience, identities: readonly string[]): boolean {
  return audience === 'anyone' || audience.some((identity) => identities.includes(identity));
}

/** `audience` as it travels between replicas (pg-event-relay.ts); what is not one sees nothing. */
export function parseAudience(value: unknown): EventAudience {
  if (value === 'anyone') return 'anyone';
  return Array.isArray(value) ? value.filter((item): item is string => typeof item === 'string') : [];
}

export function mayEdit(principal: Principal, job: JobDocument): boolean {
  if (job.acl === undefined) return true;
  return listed(job.acl, EDIT_RIGHTS, identitiesOf(principal));
}

/** `filter` narrowed to the jobs the principal may see (unchanged for a `read-all` key). */
export function visibleFilter(access: AccessControl, principal: Principal, filter: FilterNode | undefined): FilterNode | undefined {
  if (!aclBound(access, principal)) return filter;
  const identities = identitiesOf(principal).filter((identity) => SAFE_IDENTITY.test(identity));
  const terms = ['acl=null', `created-by='${principal.credentialId}'`];
  for (const right of VIEW_RIGHTS) for (const identity of identities) terms.push(`acl/${right}='${identity}'`);
  const visible = parseFilter(terms.join(' or '));
  return filter === undefined ? visible : { kind: 'and', left: filter, right: visible };
}
