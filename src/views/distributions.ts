/**
 * Each distribution as ZooKeeper shows it: for every election under the election root (one per
 * distribution), the contender that leads and those standing by, as kazoo's `contenders()` orders
 * them (the leader first), and the status its leader last published (schedule, next and last tick,
 * jobs the last tick created). Read-only: shared by `jobctl leaders` and the job API's dashboard.
 */
import { LeaderElection } from '../recipes/election.js';
import { distributionStatusPath, readDistributionStatus, type DistributionStatus } from '../recipes/distribution-status.js';
import type { ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';

export interface DistributionLeaders {
  readonly distribution: string;
  /** The leader's identifier (kazoo stores it as the node's data; it may be empty); null without contenders. */
  readonly leader: string | null;
  readonly standbys: string[];
}

export interface DistributionView extends DistributionLeaders {
  /**
   * What a leader of this engine last published; null when none did (kazoo contenders, an older
   * distributor). `current` is false when the writer is no longer the leader: its ticks are history.
   */
  readonly status: (DistributionStatus & { readonly current: boolean }) | null;
}

export async function readLeaders(zk: ZkClient, electionRoot: string): Promise<DistributionLeaders[]> {
  let names: string[];
  try {
    names = (await zk.getChildren(electionRoot)).sort();
  } catch (error) {
    if (isZkError(error, 'NO_NODE')) return [];
    throw error;
  }
  return Promise.all(
    names.map(async (distribution) => {
      const [leader, ...standbys] = await new LeaderElection(zk, { path: distributionStatusPath(electionRoot, distribution) }).contenders();
      return { distribution, leader: leader ?? null, standbys };
    }),
  );
}

export async function readDistributions(zk: ZkClient, electionRoot: string): Promise<DistributionView[]> {
  const leaders = await readLeaders(zk, electionRoot);
  return Promise.all(
    leaders.map(async (entry): Promise<DistributionView> => {
      const status = await readDistributionStatus(zk, distributionStatusPath(electionRoot, entry.distribution));
      return { ...entry, status: status === null ? null : { ...status, current: status.leader === entry.leader } };
    }),
  );
}
