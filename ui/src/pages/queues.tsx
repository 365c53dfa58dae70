/**
 * `jobctl queue` and `jobctl leaders` in pictures: each queue's priority bands (waiting and taken,
 * oldest wait), the entries taken now and by whom, the rejected entries; and each distribution with
 * its schedule, leader, last tick (jobs created) and next tick. Under #/distributions and #/queues.
 */
import { ErrorNote } from '../components/common';
import { useEngine } from '../engine';
import { formatCount, formatDuration, formatTime, shortId } from '../format';
import type { QueueView } from '../model';
import { DistributionsPanel } from '../components/distributions';
import { EngineOff } from './overview';

function QueueSection({ queue }: { queue: QueueView }) {
  const most = Math.max(1, ...queue.priorities.map((band) => band.waiting + band.taken));
  const id = `queue-${queue.name.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  return (
    <section aria-labelledby={id} data-queue={queue.name}>
      <h2 id={id}>
        Queue {queue.name} <span class="mono hint">{queue.path}</span>
      </h2>
      <p>
        {formatCount(queue.waiting)} waiting, {formatCount(queue.taken)} taken
        {queue.oldestAgeSeconds === undefined ? '' : `, the oldest waiting for ${formatDuration(queue.oldestAgeSeconds)}`}.{' '}
        {queue.unserved ? (
          <strong class="warn">No live executor serves this queue.</strong>
        ) : (
          `Served by ${queue.servedBy.join(', ') || 'nobody'}.`
        )}
      </p>
      {queue.priorities.length === 0 ? null : (
        <table class="bands">
          <caption>Priority bands (lower runs first)</caption>
          <thead>
            <tr>
              <th scope="col">Priority</th>
              <th scope="col">Entries</th>
              <th scope="col" class="num">
                Waiting
              </th>
              <th scope="col" class="num">
                Taken
              </th>
              <th scope="col">Oldest wait</th>
            </tr>
          </thead>
          <tbody>
            {queue.priorities.map((band) => (
              <tr>
                <th scope="row">{band.priority}</th>
                <td class="bar-cell" aria-hidden="true">
                  <span class="bar taken" style={{ width: `${String((band.taken / most) * 100)}%` }} />
                  <span class="bar waiting" style={{ width: `${String((band.waiting / most) * 100)}%` }} />
                </td>
                <td class="num">{formatCount(band.waiting)}</td>
                <td class="num">{formatCount(band.taken)}</td>
                <td>{band.oldestAgeSeconds === undefined ? '-' : formatDuration(band.oldestAgeSeconds)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {queue.takenEntries.length === 0 ? null : (
        <table>
          <caption>Taken entries</caption>
          <thead>
            <tr>
              <th scope="col">Entry</th>
              <th scope="col">Job</th>
              <th scope="col">Executor</th>
              <th scope="col">For</th>
            </tr>
          </thead>
          <tbody>
            {queue.takenEntries.map((entry) => (
              <tr>
                <td class="mono">{entry.entry}</td>
                <td>
                  {entry.jobId === undefined ? (
                    '-'
                  ) : (
                    <a href={`#/job/${entry.jobId.replace(/^job\//, '')}`} class="mono">
                      {shortId(entry.jobId)}
                    </a>
                  )}
                </td>
                <td class="mono">{entry.executor ?? '(another consumer)'}</td>
                <td>{formatDuration(entry.forSeconds)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {queue.rejected.length === 0 ? null : (
        <table>
          <caption>Rejected entries (not a job id; kept for inspection)</caption>
          <thead>
            <tr>
              <th scope="col">Entry</th>
              <th scope="col">Data</th>
              <th scope="col">Rejected</th>
            </tr>
          </thead>
          <tbody>
            {queue.rejected.map((entry) => (
              <tr>
                <td class="mono">{entry.entry}</td>
                <td class="mono">{entry.text ?? `${String(entry.bytes)} bytes`}</td>
                <td>{formatTime(entry.rejectedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

export function QueuesPage({ params }: { params: URLSearchParams }) {
  const engine = useEngine();
  const only = params.get('queue');
  return (
    <main id="main" tabIndex={-1}>
      <header class="page-header">
        <h1>Distributions and queues</h1>
      </header>
      {engine.kind === 'loading' ? <p>Reading ZooKeeper…</p> : null}
      {engine.kind === 'off' ? <EngineOff message={engine.message} /> : null}
      {engine.kind === 'ok' ? (
        <>
          <DistributionsPanel leaders={engine.snapshot.leaders} electionPath={engine.snapshot.electionPath} detailed={true} />
          {engine.snapshot.queues.length === 0 ? <ErrorNote>No queue under {engine.snapshot.queuePath}.</ErrorNote> : null}
          {engine.snapshot.queues
            .filter((queue) => only === null || queue.name === only)
            .map((queue) => (
              <QueueSection queue={queue} />
            ))}
        </>
      ) : null}
    </main>
  );
}
