/**
 * Each distribution: its leader and standbys from the election, and what the leader last published
 * (distribution-status in docs/zookeeper.md): schedule, last tick with the jobs it created, next tick.
 * A status written by a former leader is shown as history, its next tick as not expected.
 */
import { formatAgo, formatCount, formatTime, formatUntil } from '../format';
import type { LeaderView } from '../model';

function lastTick(leader: LeaderView, detailed: boolean) {
  const last = leader.status?.lastTick;
  if (last === undefined) return '-';
  const counts = detailed
    ? `${formatCount(last.created)} created, ${formatCount(last.existing)} existing, ${formatCount(last.invalid)} invalid`
    : `${formatCount(last.created)} created`;
  return (
    <>
      <time dateTime={last.tick} title={formatTime(last.tick)}>
        {formatAgo(last.tick)}
      </time>{' '}
      <span data-created={last.created}>({counts})</span>
    </>
  );
}

function nextTick(leader: LeaderView) {
  const status = leader.status;
  if (status === undefined || status.nextTick === undefined) return '-';
  if (!status.current) return <span class="hint">not expected: {status.leader} no longer leads</span>;
  return (
    <time dateTime={status.nextTick} title={formatTime(status.nextTick)}>
      {formatUntil(status.nextTick)}
    </time>
  );
}

export function DistributionsPanel({
  leaders,
  electionPath,
  detailed,
}: {
  leaders: readonly LeaderView[];
  electionPath: string;
  detailed: boolean;
}) {
  return (
    <section aria-labelledby="leaders-title">
      <h2 id="leaders-title">Distributions</h2>
      {leaders.length === 0 ? (
        <p class="notice">No election under {electionPath}: no job-distributor runs against this ZooKeeper path.</p>
      ) : (
        <div class="table-wrap">
          <table class="distributions">
            <thead>
              <tr>
                <th scope="col">Distribution</th>
                <th scope="col">Schedule</th>
                <th scope="col">Leader</th>
                {detailed ? <th scope="col">Standing by</th> : null}
                <th scope="col">Last tick</th>
                <th scope="col">Next tick</th>
              </tr>
            </thead>
            <tbody>
              {leaders.map((leader) => (
                <tr data-distribution={leader.distribution}>
                  <th scope="row">{leader.distribution}</th>
                  <td>{leader.status?.schedule ?? <span class="hint">not published</span>}</td>
                  <td class="mono">{leader.leader ?? '(none)'}</td>
                  {detailed ? <td class="mono">{leader.standbys.length === 0 ? '-' : leader.standbys.join(', ')}</td> : null}
                  <td>{lastTick(leader, detailed)}</td>
                  <td>{nextTick(leader)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {detailed ? (
        <p class="hint">
          Schedule and ticks are what each leader publishes in its election node; a distribution whose leader does not (a kazoo contender,
          an older distributor) shows only its leader.
        </p>
      ) : null}
    </section>
  );
}
