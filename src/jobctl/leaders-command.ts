/**
 * `jobctl leaders`: for every election under --election-path (one per distribution), the contender
 * that leads and those standing by, as kazoo's `contenders()` orders them (the leader first).
 */
import { LeaderElection } from '../recipes/election.js';
import type { ZkClient } from '../zk/client.js';
import { isZkError } from '../zk/errors.js';
import type { JobctlCommand } from './command.js';
import { EXIT } from './errors.js';
import { renderTable } from './table.js';

export interface DistributionLeaders {
  readonly distribution: string;
  /** The leader's identifier (kazoo stores it as the node's data; it may be empty); null without contenders. */
  readonly leader: string | null;
  readonly standbys: string[];
}

export const leadersCommand: JobctlCommand = {
  command: 'leaders',
  describe: "each distribution's leader and standbys, from the elections in ZooKeeper (needs --zk-hosts)",
  builder: (argv) => argv,
  async run(ctx) {
    const zk = await ctx.zk('read the elections (jobctl leaders)');
    const leaders = await readLeaders(zk, ctx.options.zk.electionPath);
    if (ctx.options.json) {
      ctx.out.json({ path: ctx.options.zk.electionPath, distributions: leaders });
      return EXIT.ok;
    }
    if (leaders.length === 0) {
      ctx.out.line(`no elections under ${ctx.options.zk.electionPath}`);
      return EXIT.ok;
    }
    ctx.out.lines(
      renderTable(
        [
          { header: 'DISTRIBUTION', value: (row) => row.distribution },
          { header: 'LEADER', value: (row) => (row.leader === null ? '(none)' : shown(row.leader)) },
          { header: 'STANDBYS', value: (row) => (row.standbys.length === 0 ? '-' : row.standbys.map(shown).join(', ')) },
        ],
        leaders,
      ),
    );
    return EXIT.ok;
  },
};

export async function readLeaders(zk: ZkClient, electionRoot: string): Promise<DistributionLeaders[]> {
  let names: string[];
  try {
    names = (await zk.getChildren(electionRoot)).sort();
  } catch (error) {
    if (isZkError(error, 'NO_NODE')) return [];
    throw error;
  }
  const path = electionRoot === '/' ? '' : electionRoot;
  return Promise.all(
    names.map(async (distribution) => {
      const [leader, ...standbys] = await new LeaderElection(zk, { path: `${path}/${distribution}` }).contenders();
      return { distribution, leader: leader ?? null, standbys };
    }),
  );
}

function shown(identifier: string): string {
  return identifier === '' ? '(no identifier)' : identifier;
}
