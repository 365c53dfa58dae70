/**
 * One job: its fields, progress with rate and time left, the events timeline (the API's history of
 * it replayed, then live) with the time between steps, the status message, the document as stored,
 * batch links (a batch's counters and tasks), its attempts, why it waits or was given up, and the
 * operations the key's role allows.
 */
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiFailure, describeFailure, jobPath, request } from '../api';
import { ConfirmDialog, type ConfirmRequest } from '../components/confirm';
import { ErrorNote, LiveIndicator, ProgressBar, StateBadge } from '../components/common';
import { AttemptsSection, BatchSection, DeadLetterNote, WaitingNote } from '../components/job-extras';
import { useEventStream } from '../events';
import { formatDuration, formatTime } from '../format';
import { FINAL_STATES, abilitiesOf, parseJob, type Job, type JobEvent, type Session } from '../model';
import { navigate } from '../router';

interface Rate {
  readonly perSecond: number;
  readonly etaSeconds: number | undefined;
}

/** Progress per second over the progress events seen (the first to the last), and the time left at that rate. */
function rateOf(events: readonly JobEvent[], progress: number): Rate | undefined {
  const points = events.filter((event) => event.progress !== undefined && event.type === 'progress');
  const first = points[0];
  const last = points[points.length - 1];
  if (first === undefined || last === undefined || first === last) return undefined;
  const seconds = (Date.parse(last.at) - Date.parse(first.at)) / 1000;
  const gained = (last.progress ?? 0) - (first.progress ?? 0);
  if (seconds <= 0 || gained <= 0) return undefined;
  const perSecond = gained / seconds;
  return { perSecond, etaSeconds: progress >= 100 ? undefined : (100 - progress) / perSecond };
}

function linkTo(id: string) {
  const uuid = id.replace(/^job\//, '');
  return (
    <a href={`#/job/${uuid}`} class="mono">
      {id}
    </a>
  );
}

export function JobPage({ session, id }: { session: Session; id: string }) {
  const abilities = abilitiesOf(session);
  const [job, setJob] = useState<Job | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const [events, setEvents] = useState<readonly JobEvent[]>([]);
  const [confirm, setConfirm] = useState<ConfirmRequest | undefined>(undefined);
  const [outcome, setOutcome] = useState<string | undefined>(undefined);

  const load = useCallback(async () => {
    try {
      const found = parseJob(await request('GET', jobPath(id)));
      if (found === undefined) throw new Error(`the API's answer for ${id} is not a job document`);
      setJob(found);
      setError(undefined);
    } catch (failure) {
      setError(
        failure instanceof ApiFailure && failure.status === 404
          ? `${id} does not exist (or your key may not see it)`
          : describeFailure(failure),
      );
    }
  }, [id]);
  useEffect(() => {
    setEvents([]);
    void load();
  }, [load]);

  const onEvent = useCallback(
    (event: JobEvent) => {
      setEvents((seen) => (seen.some((known) => known.seq === event.seq) ? seen : [...seen, event].sort((a, b) => a.seq - b.seq)));
      // The event carries state and progress; the rest (status message, return code, owner) is read again.
      void load();
    },
    [load],
  );
  const stream = useEventStream(new URLSearchParams({ job: id, after: '0' }).toString(), onEvent);

  const operate = (verb: 'cancel' | 'retry' | 'delete'): void => {
    const run = async (): Promise<void> => {
      try {
        if (verb === 'delete') {
          await request('DELETE', jobPath(id));
          navigate('#/jobs');
          return;
        }
        await request('POST', `${jobPath(id)}/${verb}`);
        setOutcome(verb === 'cancel' ? 'canceled' : 'retried: back to QUEUED (the queue reconciler enqueues it)');
      } catch (failure) {
        setOutcome(`${verb} refused: ${describeFailure(failure)}`);
      }
      await load();
    };
    if (verb === 'retry') {
      void run();
      return;
    }
    setConfirm({
      title: verb === 'cancel' ? 'Cancel this job?' : 'Delete this job?',
      message: verb === 'cancel' ? `${id} becomes CANCELED; a running action is stopped.` : `${id} is deleted for good.`,
      confirmLabel: verb === 'cancel' ? 'Cancel job' : 'Delete job',
      danger: true,
      onConfirm: () => {
        void run();
      },
    });
  };

  if (job === undefined) {
    return (
      <main id="main" tabIndex={-1}>
        <h1>Job</h1>
        {error === undefined ? <p>Loading {id}…</p> : <ErrorNote>{error}</ErrorNote>}
      </main>
    );
  }
  const final = FINAL_STATES.has(job.state);
  const rate = rateOf(events, job.progress);
  const canDelete = abilities.delete === 'any' || (abilities.delete === 'final' && final);
  const firstAt = events[0] === undefined ? undefined : Date.parse(events[0].at);
  return (
    <main id="main" tabIndex={-1}>
      <header class="page-header">
        <h1>
          Job <span class="mono">{job.id}</span>
        </h1>
        <LiveIndicator status={stream} />
      </header>
      <div class="job-summary">
        <StateBadge state={job.state} />
        <ProgressBar value={job.progress} label="progress" />
        <span class="rate">
          {rate === undefined
            ? ''
            : `${rate.perSecond.toFixed(rate.perSecond < 1 ? 2 : 1)} %/s${rate.etaSeconds === undefined ? '' : `, about ${formatDuration(rate.etaSeconds)} left`}`}
        </span>
        <div class="actions" role="group" aria-label="Job operations">
          {abilities.cancel && !final ? (
            <button
              type="button"
              class="danger"
              onClick={() => {
                operate('cancel');
              }}
            >
              Cancel
            </button>
          ) : null}
          {abilities.retry && final ? (
            <button
              type="button"
              onClick={() => {
                operate('retry');
              }}
            >
              Retry
            </button>
          ) : null}
          {canDelete ? (
            <button
              type="button"
              class="danger subtle"
              onClick={() => {
                operate('delete');
              }}
            >
              Delete
            </button>
          ) : null}
        </div>
      </div>
      {outcome === undefined ? null : (
        <p class="notice" role="status">
          {outcome}
        </p>
      )}
      {error === undefined ? null : <ErrorNote>{error}</ErrorNote>}
      <WaitingNote job={job} />
      <DeadLetterNote job={job} />
      <div class="columns">
        <section aria-labelledby="fields-title">
          <h2 id="fields-title">Fields</h2>
          <dl class="fields">
            <dt>Action</dt>
            <dd>{job.action}</dd>
            <dt>Target</dt>
            <dd>{job.target ?? '-'}</dd>
            <dt>Queue</dt>
            <dd>{job.queue ?? 'default'}</dd>
            <dt>Priority</dt>
            <dd>{job.priority ?? '-'}</dd>
            <dt>Attempt</dt>
            <dd>
              {job.attempt ?? 0}
              {job.maxAttempts === undefined ? '' : ` of at most ${String(job.maxAttempts)}`}
            </dd>
            <dt>Executor</dt>
            <dd class="mono">{job.executor ?? '-'}</dd>
            <dt>Return code</dt>
            <dd>{job.returnCode ?? '-'}</dd>
            <dt>Created</dt>
            <dd>{formatTime(job.created)}</dd>
            <dt>Started</dt>
            <dd>{formatTime(job.started)}</dd>
            <dt>Updated</dt>
            <dd>{formatTime(job.updated)}</dd>
            <dt>Duration</dt>
            <dd>{job.duration === undefined ? '-' : formatDuration(job.duration)}</dd>
            {job.notBefore === undefined ? null : (
              <>
                <dt>Not before</dt>
                <dd>{formatTime(job.notBefore)}</dd>
              </>
            )}
            <dt>Created by</dt>
            <dd class="mono">{job.createdBy ?? '-'}</dd>
            {job.tags.length === 0 ? null : (
              <>
                <dt>Tags</dt>
                <dd>{job.tags.join(', ')}</dd>
              </>
            )}
            {job.parent === undefined ? null : (
              <>
                <dt>Parent batch</dt>
                <dd>{linkTo(job.parent)}</dd>
              </>
            )}
          </dl>
          {job.nested.length === 0 ? null : (
            <>
              <h3>Nested jobs ({job.nested.length})</h3>
              <ul class="nested">
                {job.nested.map((nested) => (
                  <li>{linkTo(nested)}</li>
                ))}
              </ul>
            </>
          )}
        </section>
        <section aria-labelledby="timeline-title">
          <h2 id="timeline-title">Events</h2>
          {events.length === 0 ? (
            <p class="hint">No event of this job in the API's history (it keeps the last 10,000 events of every job).</p>
          ) : (
            <ol class="timeline">
              {events.map((event, index) => {
                const previous = events[index - 1];
                const since = previous === undefined ? undefined : (Date.parse(event.at) - Date.parse(previous.at)) / 1000;
                return (
                  <li class={`event event-${event.type}`} data-event={event.type}>
                    <span class="event-type">{event.type}</span>
                    <time dateTime={event.at}>{formatTime(event.at)}</time>
                    <span class="event-delta">
                      {since === undefined ? 'start' : `+${formatDuration(since)}`}
                      {firstAt === undefined || index === 0 ? '' : ` (${formatDuration((Date.parse(event.at) - firstAt) / 1000)} in)`}
                    </span>
                    <span class="event-detail">
                      {[
                        event.executor === undefined ? '' : `by ${event.executor}`,
                        event.attempt === undefined ? '' : `attempt ${String(event.attempt)}`,
                        event.progress === undefined || event.type !== 'progress' ? '' : `${String(Math.round(event.progress))}%`,
                        event.returnCode === undefined ? '' : `return code ${String(event.returnCode)}`,
                      ]
                        .filter((part) => part !== '')
                        .join(' · ')}
                    </span>
                  </li>
                );
              })}
            </ol>
          )}
        </section>
      </div>
      <BatchSection job={job} />
      <AttemptsSection job={job} />
      <section aria-labelledby="status-title">
        <h2 id="status-title">Status message</h2>
        <pre class="status-message" tabIndex={0}>
          {job.statusMessage ?? '(none)'}
        </pre>
      </section>
      <details>
        <summary>Document</summary>
        <pre class="document" tabIndex={0}>
          {JSON.stringify(job.document, null, 2)}
        </pre>
      </details>
      <ConfirmDialog
        request={confirm}
        onClose={() => {
          setConfirm(undefined);
        }}
      />
    </main>
  );
}
