/**
 * The messages between the executor and its action discovery thread (discovery-worker.ts). Parsed as
 * unknown on each side: a module's top-level code can post to the parent port too.
 */
import { checkRetrySpec, type RetryPolicySpec } from '../api/job/retry-policy.js';
import { isRecord } from '../util/is-record.js';
import { ACTION_ISOLATIONS, type ActionIsolation } from '../sdk/action.js';

/** What the executor needs to know of an action without importing it: the module runs elsewhere. */
export interface ActionMetadata {
  readonly name: string;
  readonly timeoutSeconds: number;
  /** The action's default cap on attempts that end without a result, when it declares one. */
  readonly maxAttempts?: number;
  /** The action's retry policy, when it declares one. */
  readonly retry?: RetryPolicySpec;
  /** The action's own fleet-wide limits, when it declares them. */
  readonly maxConcurrent?: number;
  readonly ratePerSecond?: number;
  readonly description?: string;
  /** Where its jobs run (ActionSpec.isolation); absent: a worker thread. */
  readonly isolation?: ActionIsolation;
}

export interface DiscoveryData {
  /** Absolute paths, imported in this order. */
  readonly files: readonly string[];
  readonly importTimeoutMs: number;
}

export type FromDiscovery =
  | { readonly type: 'importing'; readonly file: string }
  | ({ readonly type: 'found'; readonly file: string } & ActionMetadata)
  | { readonly type: 'failed'; readonly file: string; readonly error: string }
  /** An error thrown outside any import (a module's timer, a rejected promise): reported, not blamed. */
  | { readonly type: 'stray'; readonly error: string; readonly stack?: string }
  | { readonly type: 'done' };

export function parseDiscoveryData(value: unknown): DiscoveryData {
  if (
    !isRecord(value) ||
    !Array.isArray(value.files) ||
    !value.files.every((file) => typeof file === 'string') ||
    typeof value.importTimeoutMs !== 'number'
  ) {
    throw new TypeError('discovery worker started without its files and import timeout (workerData)');
  }
  return { files: value.files, importTimeoutMs: value.importTimeoutMs };
}

/** A message from the discovery thread, or undefined for anything else posted there. */
export function parseFromDiscovery(value: unknown): FromDiscovery | undefined {
  if (!isRecord(value)) return undefined;
  const { type, file } = value;
  if (type === 'done') return { type };
  if (type === 'stray') {
    if (typeof value.error !== 'string') return undefined;
    return { type, error: value.error, ...(typeof value.stack === 'string' ? { stack: value.stack } : {}) };
  }
  if (typeof file !== 'string') return undefined;
  if (type === 'importing') return { type, file };
  if (type === 'failed') return typeof value.error === 'string' ? { type, file, error: value.error } : undefined;
  if (type !== 'found') return undefined;
  const { name, timeoutSeconds, maxAttempts, retry, maxConcurrent, ratePerSecond, description, isolation } = value;
  if (typeof name !== 'string' || typeof timeoutSeconds !== 'number') return undefined;
  if (maxAttempts !== undefined && typeof maxAttempts !== 'number') return undefined;
  if (maxConcurrent !== undefined && typeof maxConcurrent !== 'number') return undefined;
  if (ratePerSecond !== undefined && typeof ratePerSecond !== 'number') return undefined;
  if (isolation !== undefined && !(ACTION_ISOLATIONS as readonly unknown[]).includes(isolation)) return undefined;
  const checkedRetry = retry === undefined ? undefined : checkRetrySpec(retry, 'camel', 'retry');
  if (checkedRetry !== undefined && 'problems' in checkedRetry) return undefined;
  return {
    type,
    file,
    name,
    timeoutSeconds,
    ...(maxAttempts === undefined ? {} : { maxAttempts }),
    ...(checkedRetry === undefined ? {} : { retry: checkedRetry.spec }),
    ...(maxConcurrent === undefined ? {} : { maxConcurrent }),
    ...(ratePerSecond === undefined ? {} : { ratePerSecond }),
    ...(typeof description === 'string' ? { description } : {}),
    ...(isolation === undefined ? {} : { isolation: isolation as ActionIsolation }),
  };
}
