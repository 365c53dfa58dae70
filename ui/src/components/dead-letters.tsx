/**
 * The overview's dead letters (jobs the engine gave up on: FAILED with `dead-letter`, as `jobctl dead`
 * lists them): how many, and how many per action, each linked to the jobs table filtered to them.
 * Per action counts the newest SAMPLE only, and says so when there are more.
 */
import { useCallback, useEffect, useState } from 'preact/hooks';
import { describeFailure, request } from '../api';
import { formatCount } from '../format';
import { parseJobPage } from '../model';
import { ErrorNote } from './common';

export const DEAD_LETTER_FILTER = "state='FAILED' and dead-letter/reason!=null";
const SAMPLE = 1000;
/** Counted up to the sample: the filter reads the document, so a count costs a row read per FAILED job. */
const COUNT_LIMIT = SAMPLE;
const POLL_MS = 10_000;

interface DeadLetters {
  readonly count: number;
  readonly capped: boolean;
  readonly sampled: number;
  readonly byAction: readonly (readonly [string, number])[];
}

export function DeadLettersPanel() {
  const [dead, setDead] = useState<DeadLetters | undefined>(undefined);
  const [error, setError] = useState<string | undefined>(undefined);
  const load = useCallback(async () => {
    const query = new URLSearchParams({
      filter: DEAD_LETTER_FILTER,
      select: 'state,action',
      // Newest created first: the (state, created) index reads the FAILED jobs in that order and stops early.
      orderby: 'created:desc',
      last: String(SAMPLE),
      'count-limit': String(COUNT_LIMIT),
    });
    try {
      const page = parseJobPage(await request('GET', `/api/job?${query.toString()}`));
      const counts = new Map<string, number>();
      for (const job of page.jobs) counts.set(job.action, (counts.get(job.action) ?? 0) + 1);
      setDead({
        count: page.count,
        capped: page.countCapped,
        sampled: page.jobs.length,
        byAction: [...counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])),
      });
      setError(undefined);
    } catch (failure) {
      setError(describeFailure(failure));
    }
  }, []);
  useEffect(() => {
    void load();
    const timer = window.setInterval(() => void load(), POLL_MS);
    return () => {
      window.clearInterval(timer);
    };
  }, [load]);

  return (
    <section aria-labelledby="dead-title">
      <h2 id="dead-title">Dead letters</h2>
      {error === undefined ? null : <ErrorNote>{error}</ErrorNote>}
      {dead === undefined ? null : dead.count === 0 ? (
        <p class="notice" data-dead-count="0">
          No dead letter: no job was given up after its last attempt.
        </p>
      ) : (
        <>
          <p>
            <a href="#/jobs?dead=1" data-dead-count={dead.count}>
              {dead.capped ? `more than ${formatCount(dead.count)}` : formatCount(dead.count)} dead{' '}
              {dead.count === 1 ? 'letter' : 'letters'}
            </a>
            {dead.sampled < dead.count || dead.capped ? ` (per action: the newest ${formatCount(dead.sampled)})` : ''}
          </p>
          <div class="table-wrap">
            <table class="dead-letters">
              <thead>
                <tr>
                  <th scope="col">Action</th>
                  <th scope="col" class="num">
                    Dead letters
                  </th>
                </tr>
              </thead>
              <tbody>
                {dead.byAction.map(([action, count]) => (
                  <tr data-dead-action={action}>
                    <th scope="row">
                      <a href={`#/jobs?dead=1&action=${encodeURIComponent(action)}`}>{action}</a>
                    </th>
                    <td class="num">{formatCount(count)}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </>
      )}
    </section>
  );
}
