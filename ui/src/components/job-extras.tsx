/**
 * The job page's parts for the engine's additions: why it waits (a delayed job's `not-before`, a
 * parked one), its dead letter, its attempts (`attempt-history`), and, for a batch, its counters and
 * a page of its tasks (the jobs whose `parent-job` it is).
 */
import { useEffect, useState } from 'preact/hooks';
import { describeFailure, request } from '../api';
import { formatCount, formatDuration, formatTime, formatUntil, shortId } from '../format';
import { parseJobPage, type Job, type JobPage } from '../model';
import { ErrorNote, StateBadge } from './common';

const TASKS_SHOWN = 20;

export function WaitingNote({ job }: { job: Job }) {
  if (job.state !== 'QUEUED') return null;
  if (job.notBefore !== undefined) {
    return (
      <p class="notice" data-not-before={job.notBefore}>
        Delayed: not started before <time dateTime={job.notBefore}>{formatTime(job.notBefore)}</time> ({formatUntil(job.notBefore)}
        ); the scheduler enqueues it then.
      </p>
    );
  }
  if (job.parked) return <p class="notice">Parked: its queue's window is full; the queue feeder enqueues it when there is room.</p>;
  return null;
}

export function DeadLetterNote({ job }: { job: Job }) {
  const dead = job.deadLetter;
  if (dead === undefined) return null;
  return (
    <p class="error" data-dead-letter="true">
      Dead letter: {dead.reason}
      {dead.attempt === undefined ? '' : ` (after attempt ${String(dead.attempt)})`}
      {dead.at === undefined ? '' : `, ${formatTime(dead.at)}`}. A retry sends it back for a new round of attempts.
    </p>
  );
}

export function AttemptsSection({ job }: { job: Job }) {
  if (job.attempts.length === 0) return null;
  return (
    <section aria-labelledby="attempts-title">
      <h2 id="attempts-title">Attempts ({job.attempts.length})</h2>
      <div class="table-wrap">
        <table class="attempts">
          <thead>
            <tr>
              <th scope="col" class="num">
                Attempt
              </th>
              <th scope="col">Started</th>
              <th scope="col">Took</th>
              <th scope="col">Ended as</th>
              <th scope="col">Return code</th>
              <th scope="col">Executor</th>
              <th scope="col">Status message</th>
            </tr>
          </thead>
          <tbody>
            {job.attempts.map((attempt) => {
              const took =
                attempt.started === undefined || attempt.ended === undefined
                  ? undefined
                  : (Date.parse(attempt.ended) - Date.parse(attempt.started)) / 1000;
              return (
                <tr data-attempt={attempt.attempt}>
                  <td class="num">{attempt.attempt}</td>
                  <td>{formatTime(attempt.started)}</td>
                  <td>{took === undefined ? (attempt.ended === undefined ? 'running' : '-') : formatDuration(took)}</td>
                  <td>{attempt.state === undefined ? '-' : <StateBadge state={attempt.state} />}</td>
                  <td>{attempt.returnCode ?? '-'}</td>
                  <td class="mono">{attempt.executor ?? '-'}</td>
                  <td class="message">{attempt.statusMessage ?? ''}</td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </section>
  );
}

export function BatchSection({ job }: { job: Job }) {
  const batch = job.batch;
  const [tasks, setTasks] = useState<JobPage | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const updated = job.updated;
  useEffect(() => {
    if (batch === undefined) return;
    const query = new URLSearchParams({
      filter: `parent-job='${job.id}'`,
      orderby: 'created:desc',
      last: String(TASKS_SHOWN),
      'count-limit': '100000',
    });
    request('GET', `/api/job?${query.toString()}`).then(
      (body) => {
        setTasks(parseJobPage(body));
        setError(undefined);
      },
      (failure: unknown) => {
        setError(describeFailure(failure));
      },
    );
  }, [job.id, batch, updated]);
  if (batch === undefined) return null;
  const total = batch.total === undefined ? '?' : `${batch.totalEstimated ? 'about ' : ''}${formatCount(batch.total)}`;
  const tasksLink = `#/jobs?${new URLSearchParams({ filter: `parent-job='${job.id}'` }).toString()}`;
  return (
    <section aria-labelledby="batch-title">
      <h2 id="batch-title">Batch</h2>
      <dl class="fields batch-counters">
        <dt>Tasks' action</dt>
        <dd>{batch.action}</dd>
        <dt>Phase</dt>
        <dd>
          {batch.phase}
          {batch.paused ? ' (paused)' : ''}
        </dd>
        <dt>Created</dt>
        <dd data-batch="sent">
          {formatCount(batch.sent)} of {total}
        </dd>
        <dt>Succeeded</dt>
        <dd data-batch="succeeded">{formatCount(batch.succeeded)}</dd>
        <dt>Failed</dt>
        <dd data-batch="failed">{formatCount(batch.failed)}</dd>
        <dt>Canceled</dt>
        <dd data-batch="canceled">{formatCount(batch.canceled)}</dd>
        {Object.entries(batch.counters).map(([name, value]) => (
          <>
            <dt>{name}</dt>
            <dd>{formatCount(value)}</dd>
          </>
        ))}
      </dl>
      <h3>
        Tasks{' '}
        {tasks === undefined
          ? ''
          : `(${tasks.countCapped ? 'more than ' : ''}${formatCount(tasks.count)}; the newest ${String(tasks.jobs.length)})`}
      </h3>
      {error === undefined ? null : <ErrorNote>{error}</ErrorNote>}
      {tasks === undefined || tasks.jobs.length === 0 ? null : (
        <ul class="tasks">
          {tasks.jobs.map((task) => (
            <li data-task={task.id}>
              <a href={`#/job/${task.id.replace(/^job\//, '')}`} class="mono" title={task.id}>
                {shortId(task.id)}
              </a>{' '}
              <StateBadge state={task.state} />
            </li>
          ))}
        </ul>
      )}
      <p>
        <a href={tasksLink}>All its tasks in the jobs table</a>
      </p>
    </section>
  );
}
