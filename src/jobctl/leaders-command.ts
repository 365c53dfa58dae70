/**
 * `jobctl leaders`: for every election under --election-path (one per distribution), the contender
 * that leads and those standing by, as kazoo's `contenders()` orders them (the leader first), with
 * the next and last tick its leader published.
 */
import { readDistributions, type DistributionView } from '../views/distributions.js';
import type { JobctlCommand } from './command.js';
import { EXIT } from './errors.js';
import { renderTable } from './table.js';

export const leadersCommand: JobctlCommand = {
  command: 'leaders',
  describe: "each distribution's leader and standbys, from the elections in ZooKeeper (needs --zk-hosts)",
  builder: (argv) => argv,
  async run(ctx) {
    const zk = await ctx.zk('read the elections (jobctl leaders)');
    const leaders = await readDistributions(zk, ctx.options.zk.electionPath);
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
          { header: 'NEXT TICK', value: (row) => currentStatus(row)?.nextTick ?? '-' },
          { header: 'LAST TICK', value: (row) => lastTick(row) },
        ],
        leaders,
      ),
    );
    return EXIT.ok;
  },
};

/** The status its current leader published; a former leader's next tick is not going to happen. */
function currentStatus(row: DistributionView): DistributionView['status'] {
  return row.status?.current === true ? row.status : null;
}

function lastTick(row: DistributionView): string {
  const last = row.status?.lastTick;
  return last === null || last === undefined ? '-' : `${last.tick} (${String(last.created)} created)`;
}

function shown(identifier: string): string {
  return identifier === '' ? '(no identifier)' : identifier;
}
