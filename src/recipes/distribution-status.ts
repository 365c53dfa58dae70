/**
 * What a distribution's leader says about itself, for operators (the dashboard, `jobctl leaders`):
 * its schedule, the tick it waits for and what its last tick created. It is the JSON data of the
 * election's own node, `/election/<distribution>`: kazoo's Election (its Lock) only reads that
 * node's children, so a kazoo contender sharing the election neither sees nor minds it, and the
 * status goes away with nothing to clean up when the election's parent node does.
 *
 * Only the leader writes it, after it becomes leader and after each tick; a leader that lost its
 * session may have written last, so the reader compares `leader` with the election's current leader.
 * Informational: a failed write is logged and forgotten, never retried at a tick's expense.
 */
import { isRecord } from '../util/is-record.js';
import type { ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';

export interface TickRecord {
  readonly tick: string;
  readonly finished: string;
  /** Jobs that tick created. */
  readonly created: number;
  /** Jobs it asked for that already existed (the tick run before, here or by another leader). */
  readonly existing: number;
  /** Job specs it refused. */
  readonly invalid: number;
}

export interface DistributionStatus {
  /** The identifier of the leader that wrote it (its --name). */
  readonly leader: string;
  readonly schedule: string;
  /** When it was written. */
  readonly at: string;
  readonly nextTick: string | null;
  readonly lastTick: TickRecord | null;
}

/** The status's node: the election's own path. */
export function distributionStatusPath(electionRoot: string, distribution: string): string {
  return `${electionRoot === '/' ? '' : electionRoot}/${distribution}`;
}

export async function writeDistributionStatus(zk: ZkClient, path: string, status: DistributionStatus): Promise<void> {
  await zk.setData(path, Buffer.from(JSON.stringify(status), 'utf8'));
}

/** The status in the node, or null: no node, no data yet (never led by this engine), or data not ours. */
export async function readDistributionStatus(zk: ZkClient, path: string): Promise<DistributionStatus | null> {
  let data: Buffer;
  try {
    ({ data } = await zk.getData(path));
  } catch (error) {
    if (isZkError(error, 'NO_NODE')) return null;
    throw error;
  }
  if (data.length === 0) return null;
  try {
    return parseDistributionStatus(JSON.parse(data.toString('utf8')));
  } catch {
    // Another writer's bytes (a kazoo program may keep its own there): no status rather than an error.
    return null;
  }
}

export function parseDistributionStatus(value: unknown): DistributionStatus | null {
  if (!isRecord(value)) return null;
  const { leader, schedule, at, nextTick, lastTick } = value;
  if (typeof leader !== 'string' || typeof schedule !== 'string' || typeof at !== 'string') return null;
  if (nextTick !== null && typeof nextTick !== 'string') return null;
  return { leader, schedule, at, nextTick, lastTick: parseTickRecord(lastTick) };
}

function parseTickRecord(value: unknown): TickRecord | null {
  if (!isRecord(value)) return null;
  const { tick, finished, created, existing, invalid } = value;
  if (typeof tick !== 'string' || typeof finished !== 'string') return null;
  const count = (n: unknown): number => (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 ? n : 0);
  return { tick, finished, created: count(created), existing: count(existing), invalid: count(invalid) };
}
