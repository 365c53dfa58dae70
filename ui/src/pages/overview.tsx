/**
 * The overview: jobs per state now and since the page opened, throughput and failures per minute over
 * the last hour (from the event stream's history, then live), and, with `job-api serve --zk-hosts`,
 * the queues, live executors and leaders as ZooKeeper shows them; the dead letters per action.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import type uPlot from 'uplot';
import { describeFailure, request } from '../api';
import { TimeChart, type Series } from '../components/chart';
import { ErrorNote, LiveIndicator } from '../components/common';
import { DeadLettersPanel } from '../components/dead-letters';
import { DistributionsPanel } from '../components/distributions';
import { useEngine } from '../engine';
import { useEventStream } from '../events';
import { formatCount, formatDuration } from '../format';
import { JOB_STATES, parseStateCounts, type JobEvent, type JobState } from '../model';

const STATE_COLORS: Record<JobState, string> = {
  QUEUED: '#6b5b00',
  RUNNING: '#0b5cad',
  SUCCESS: '#1c6b2c',
  FAILED: '#b00020',
  CANCELED: '#595959',
};
const STATE_SERIES: readonly Series[] = JOB_STATES.map((state) => ({ label: state, color: STATE_COLORS[state] }));
const RATE_SERIES: readonly Series[] = [
  { label: 'finished', color: '#1c6b2c', bars: true },
  { label: 'failed', color: '#b00020', bars: true },
];
const HOUR_S = 3600;
const COUNT_POLL_MS = 10_000;
const ENDINGS = new Set(['finished', 'timed-out', 'cancelled']);

interface Sample {
  readonly at: number;
  readonly counts: Record<JobState, number>;
}

/** Per minute of the last hour: jobs that ended, and those of them that FAILED. */
function perMinute(endings: ReadonlyMap<string, { at: number; failed: boolean }>, now: number): uPlot.AlignedData {
  const end = Math.floor(now / 60_000);
  const minutes = Array.from({ length: 60 }, (_, index) => end - 59 + index);
  const finished = new Array<number>(60).fill(0);
  const failed = new Array<number>(60).fill(0);
  for (const ending of endings.values()) {
    const slot = Math.floor(ending.at / 60_000) - (end - 59);
    if (slot < 0 || slot >= 60) continue;
    finished[slot] = (finished[slot] ?? 0) + 1;
    if (ending.failed) failed[slot] = (failed[slot] ?? 0) + 1;
  }
  return [minutes.map((minute) => minute * 60), finished, failed];
}

export function OverviewPage() {
  const [counts, setCounts] = useState<Record<JobState, number> | undefined>(undefined);
  const [samples, setSamples] = useState<readonly Sample[]>([]);
  const [countError, setCountError] = useState<string | undefined>(undefined);
  // One ending per job and event (a job retried and ended again counts again): keyed by seq.
  const [endings, setEndings] = useState<ReadonlyMap<string, { at: number; failed: boolean }>>(new Map());
  const [now, setNow] = useState(Date.now());
  const engine = useEngine();

  const loadCounts = useCallback(async () => {
    try {
      const fresh = parseStateCounts(await request('GET', '/api/job?last=0&aggregation=terms:state'));
      setCounts(fresh);
      setCountError(undefined);
      const at = Date.now();
      setSamples((old) => [...old.filter((sample) => at - sample.at < HOUR_S * 1000), { at, counts: fresh }]);
    } catch (failure) {
      setCountError(describeFailure(failure));
    }
  }, []);
  useEffect(() => {
    void loadCounts();
    const timer = window.setInterval(() => {
      setNow(Date.now());
      void loadCounts();
    }, COUNT_POLL_MS);
    return () => {
      window.clearInterval(timer);
    };
  }, [loadCounts]);

  const pending = useRef<number | undefined>(undefined);
  const onEvent = useCallback(
    (event: JobEvent) => {
      if (ENDINGS.has(event.type)) {
        const at = Date.parse(event.at);
        if (Date.now() - at < HOUR_S * 1000) {
          setEndings((old) => new Map(old).set(String(event.seq), { at, failed: event.state === 'FAILED' }));
        }
      }
      // Counts follow the events, asked again at most every two seconds.
      pending.current ??= window.setTimeout(() => {
        pending.current = undefined;
        setNow(Date.now());
        void loadCounts();
      }, 2000);
    },
    [loadCounts],
  );
  useEffect(
    () => () => {
      if (pending.current !== undefined) window.clearTimeout(pending.current);
    },
    [],
  );
  const stream = useEventStream('after=0', onEvent);

  const stateData = useMemo<uPlot.AlignedData>(
    () => [samples.map((sample) => sample.at / 1000), ...JOB_STATES.map((state) => samples.map((sample) => sample.counts[state]))],
    [samples],
  );
  const rateData = useMemo(() => perMinute(endings, now), [endings, now]);
  const recent = [...endings.values()].filter((ending) => now - ending.at < 5 * 60_000);
  const hourFailed = [...endings.values()].filter((ending) => ending.failed).length;

  return (
    <main id="main" tabIndex={-1}>
      <header class="page-header">
        <h1>Overview</h1>
        <LiveIndicator status={stream} />
      </header>
      {countError === undefined ? null : <ErrorNote>{countError}</ErrorNote>}
      <section aria-labelledby="states-title">
        <h2 id="states-title">Jobs per state</h2>
        <ul class="cards">
          {JOB_STATES.map((state) => (
            <li class={`card state-${state.toLowerCase()}`} data-state-count={state}>
              <a href={`#/jobs?state=${state}`}>
                <span class="card-value">{counts === undefined ? '…' : formatCount(counts[state])}</span>
                <span class="card-label">{state}</span>
              </a>
            </li>
          ))}
          <li class="card">
            <span class="card-value">{recent.length === 0 ? '0' : (recent.length / 5).toFixed(1)}</span>
            <span class="card-label">ended per minute (last 5 min)</span>
          </li>
          <li class="card">
            <span class="card-value">{endings.size === 0 ? '-' : `${((hourFailed / endings.size) * 100).toFixed(1)}%`}</span>
            <span class="card-label">failed (last hour, {formatCount(endings.size)} ended)</span>
          </li>
        </ul>
        <div class="charts">
          <TimeChart title="Jobs per state since this page opened" series={STATE_SERIES} data={stateData} />
          <TimeChart title="Jobs ended per minute, last hour" series={RATE_SERIES} data={rateData} />
        </div>
      </section>
      <DeadLettersPanel />
      <EnginePanels engine={engine} />
    </main>
  );
}

export function EngineOff({ message }: { message: string }) {
  return (
    <p class="notice engine-off" role="status">
      {message}
    </p>
  );
}

function EnginePanels({ engine }: { engine: ReturnType<typeof useEngine> }) {
  if (engine.kind === 'loading') return <p>Reading ZooKeeper…</p>;
  if (engine.kind === 'off') {
    return (
      <section aria-labelledby="engine-title">
        <h2 id="engine-title">Queues, executors and leaders</h2>
        <EngineOff message={engine.message} />
      </section>
    );
  }
  const { snapshot } = engine;
  return (
    <>
      <section aria-labelledby="queues-title">
        <h2 id="queues-title">Queues</h2>
        <div class="table-wrap">
          <table>
            <thead>
              <tr>
                <th scope="col">Queue</th>
                <th scope="col" class="num">
                  Waiting
                </th>
                <th scope="col" class="num">
                  Running
                </th>
                <th scope="col">Oldest wait</th>
                <th scope="col">Priority bands (waiting / taken)</th>
                <th scope="col" class="num">
                  Rejected
                </th>
                <th scope="col">Served by</th>
              </tr>
            </thead>
            <tbody>
              {snapshot.queues.map((queue) => (
                <tr data-queue={queue.name}>
                  <th scope="row">
                    <a href={`#/queues?queue=${encodeURIComponent(queue.name)}`}>{queue.name}</a>
                  </th>
                  <td class="num">{formatCount(queue.waiting)}</td>
                  <td class="num">{formatCount(queue.taken)}</td>
                  <td>{queue.oldestAgeSeconds === undefined ? '-' : formatDuration(queue.oldestAgeSeconds)}</td>
                  <td>
                    {queue.priorities.length === 0
                      ? '-'
                      : queue.priorities
                          .map((band) => `${String(band.priority)}: ${String(band.waiting)}/${String(band.taken)}`)
                          .join(', ')}
                  </td>
                  <td class="num">{queue.rejected.length}</td>
                  <td>{queue.unserved ? <strong class="warn">no live executor serves it</strong> : queue.servedBy.join(', ') || '-'}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      <section aria-labelledby="executors-title">
        <h2 id="executors-title">Live executors ({snapshot.executors.length})</h2>
        {snapshot.executors.length === 0 ? (
          <p class="notice">No executor is registered under {snapshot.queuePath}/executors.</p>
        ) : (
          <div class="table-wrap">
            <table>
              <thead>
                <tr>
                  <th scope="col">Executor</th>
                  <th scope="col">Host / pid</th>
                  <th scope="col">Slots in use</th>
                  <th scope="col">Queues</th>
                  <th scope="col">Actions offered</th>
                </tr>
              </thead>
              <tbody>
                {snapshot.executors.map((executor) => (
                  <tr data-executor={executor.name}>
                    <th scope="row" class="mono">
                      {executor.name}
                    </th>
                    <td>
                      {executor.host ?? '-'} / {executor.pid ?? '-'}
                    </td>
                    <td>
                      <meter min={0} max={executor.slots ?? 1} value={executor.busy} aria-label={`slots in use on ${executor.name}`} />{' '}
                      {executor.busy} of {executor.slots ?? '?'}
                    </td>
                    <td>{executor.queues.join(', ')}</td>
                    <td>{executor.actions === undefined ? '(does not say: any)' : executor.actions.join(', ')}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <DistributionsPanel leaders={snapshot.leaders} electionPath={snapshot.electionPath} detailed={false} />
    </>
  );
}
