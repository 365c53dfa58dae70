/**
 * The jobs table: one server-side page of the REST search at a time (filter, orderby, first/last),
 * so it stays as fast with millions of jobs as with ten. Filters by state, action, target, tag and
 * age, plus a CIMI filter box whose syntax errors are the API's own words, shown under it. Rows follow
 * the event stream: a row's state and progress change in place, and the page is asked again (at most
 * once a second) so new and finished jobs appear where the sort puts them.
 */
import { useCallback, useEffect, useMemo, useRef, useState } from 'preact/hooks';
import { ApiFailure, describeFailure, request } from '../api';
import { ConfirmDialog, type ConfirmRequest } from '../components/confirm';
import { ErrorNote, LiveIndicator, ProgressBar, StateBadge } from '../components/common';
import { useEventStream } from '../events';
import { formatAgo, formatCount, shortId } from '../format';
import { FINAL_STATES, JOB_STATES, abilitiesOf, isJobState, parseJobPage, type Job, type JobEvent, type Session } from '../model';
import { DEAD_LETTER_FILTER } from '../components/dead-letters';
import { SCOPE_NOTE, VERBS, countOf, runBulk, runBulkByFilter, scopedFilter, type BulkOperation } from './bulk';

const PAGE_SIZES = [25, 50, 100] as const;
/** Counted up to this many: beyond, the table says "more than" and pages on without a last page. */
const COUNT_LIMIT = 10_000;
const AGES = [
  { value: '', label: 'any time' },
  { value: 'now-1h', label: 'last hour' },
  { value: 'now-1d', label: 'last day' },
  { value: 'now-7d', label: 'last 7 days' },
] as const;
type SortField = 'created' | 'updated' | 'state' | 'action' | 'priority' | 'progress';

/** A CIMI string literal: a backslash escapes the next character. */
function quoted(value: string): string {
  return `'${value.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

interface Filters {
  readonly state: string;
  readonly action: string;
  readonly target: string;
  readonly tag: string;
  readonly age: string;
  readonly cimi: string;
  /** Dead letters only (as `jobctl dead`). */
  readonly dead: boolean;
}

/** The search filter the form says; the CIMI box comes first, in parentheses, so its error positions stay readable. */
export function buildFilter(filters: Filters): string {
  const parts: string[] = [];
  if (filters.cimi.trim() !== '') parts.push(`(${filters.cimi.trim()})`);
  if (isJobState(filters.state)) parts.push(`state='${filters.state}'`);
  if (filters.action.trim() !== '') parts.push(`action=${quoted(filters.action.trim())}`);
  if (filters.target.trim() !== '') parts.push(`target-resource/href=${quoted(filters.target.trim())}`);
  if (filters.tag.trim() !== '') parts.push(`tags=${quoted(filters.tag.trim())}`);
  if (filters.age !== '') parts.push(`created>'${filters.age}'`);
  if (filters.dead) parts.push(DEAD_LETTER_FILTER);
  // Alone, the box goes as typed: its errors then name only what the user wrote.
  return parts.length === 1 && filters.cimi.trim() !== '' ? filters.cimi.trim() : parts.join(' and ');
}

/** The API's message about the CIMI box, its position counted in the box's own text rather than the whole filter. */
function filterError(failure: ApiFailure, cimi: string): string {
  const position = failure.details.position;
  const sent = failure.details.filter;
  if (typeof position !== 'number' || typeof sent !== 'string' || !sent.startsWith(`(${cimi.trim()})`)) return failure.message;
  return failure.message.replace(/at position \d+/, `at position ${String(Math.max(0, position - 1))}`);
}

function initialFilters(params: URLSearchParams): Filters {
  return {
    state: params.get('state') ?? '',
    action: params.get('action') ?? '',
    target: params.get('target') ?? '',
    tag: params.get('tag') ?? '',
    age: params.get('age') ?? '',
    cimi: params.get('filter') ?? '',
    dead: params.get('dead') === '1',
  };
}

export function JobsPage({ session, params }: { session: Session; params: URLSearchParams }) {
  const abilities = abilitiesOf(session);
  const [draft, setDraft] = useState<Filters>(() => initialFilters(params));
  const [filters, setFilters] = useState<Filters>(draft);
  const [sort, setSort] = useState<{ field: SortField; desc: boolean }>({ field: 'created', desc: true });
  const [pageSize, setPageSize] = useState<number>(25);
  const [pageIndex, setPageIndex] = useState(0);
  const [jobs, setJobs] = useState<readonly Job[]>([]);
  const [count, setCount] = useState<number | undefined>(undefined);
  const [capped, setCapped] = useState(false);
  const [cimiError, setCimiError] = useState<string | undefined>(undefined);
  const [loadError, setLoadError] = useState<string | undefined>(undefined);
  const [selected, setSelected] = useState<ReadonlySet<string>>(new Set());
  const [confirm, setConfirm] = useState<ConfirmRequest | undefined>(undefined);
  const [outcome, setOutcome] = useState<string | undefined>(undefined);
  const [serverMs, setServerMs] = useState<number | undefined>(undefined);
  const generation = useRef(0);

  const filter = useMemo(() => buildFilter(filters), [filters]);
  const load = useCallback(async () => {
    const mine = ++generation.current;
    const direction = sort.desc ? 'desc' : 'asc';
    const query = new URLSearchParams({
      // Then by creation, the same way: the (column, created) indexes serve the page from one range.
      orderby: sort.field === 'created' ? `created:${direction}` : `${sort.field}:${direction},created:${direction}`,
      first: String(pageIndex * pageSize + 1),
      last: String((pageIndex + 1) * pageSize),
      'count-limit': String(COUNT_LIMIT),
    });
    if (filter !== '') query.set('filter', filter);
    const started = performance.now();
    try {
      const page = parseJobPage(await request('GET', `/api/job?${query.toString()}`));
      if (mine !== generation.current) return;
      setServerMs(performance.now() - started);
      setJobs(page.jobs);
      setCount(page.count);
      setCapped(page.countCapped);
      setCimiError(undefined);
      setLoadError(undefined);
    } catch (failure) {
      if (mine !== generation.current) return;
      if (failure instanceof ApiFailure && failure.status === 400) {
        setCimiError(filterError(failure, filters.cimi));
        setServerMs(undefined);
        setJobs([]);
        setCount(undefined);
      } else setLoadError(describeFailure(failure));
    }
  }, [filter, filters.cimi, sort, pageIndex, pageSize]);

  useEffect(() => {
    void load();
  }, [load]);

  // Events: patch the row now, ask for the page again soon (at most once a second).
  const refetch = useRef<number | undefined>(undefined);
  const loadRef = useRef(load);
  loadRef.current = load;
  const onEvent = useCallback((event: JobEvent) => {
    setJobs((rows) =>
      rows.some((row) => row.id === event.job)
        ? rows.map((row) =>
            row.id === event.job
              ? { ...row, state: event.state, progress: event.progress ?? (event.state === 'SUCCESS' ? 100 : row.progress) }
              : row,
          )
        : rows,
    );
    refetch.current ??= window.setTimeout(() => {
      refetch.current = undefined;
      void loadRef.current();
    }, 1000);
  }, []);
  useEffect(
    () => () => {
      if (refetch.current !== undefined) window.clearTimeout(refetch.current);
    },
    [],
  );
  const stream = useEventStream('', onEvent);

  const apply = (event: Event): void => {
    event.preventDefault();
    setPageIndex(0);
    setSelected(new Set());
    setFilters(draft);
    const query = new URLSearchParams();
    for (const [name, value] of Object.entries({ ...draft, filter: draft.cimi, cimi: '', dead: draft.dead ? '1' : '' })) {
      if (value !== '') query.set(name, value);
    }
    history.replaceState(null, '', `#/jobs${query.size === 0 ? '' : `?${query.toString()}`}`);
  };

  const toggleSort = (field: SortField): void => {
    setSort((current) => (current.field === field ? { field, desc: !current.desc } : { field, desc: true }));
    setPageIndex(0);
  };

  const visibleIds = jobs.map((job) => job.id);
  const allSelected = visibleIds.length > 0 && visibleIds.every((id) => selected.has(id));
  const chosen = jobs.filter((job) => selected.has(job.id));
  const pages = count === undefined ? 1 : Math.max(1, Math.ceil(count / pageSize));
  const countText = count === undefined ? '…' : capped ? `more than ${formatCount(count)}` : formatCount(count);

  const bulk = (operation: BulkOperation, targets: readonly Job[]): void => {
    const verbs = { cancel: ['Cancel', 'canceled'], retry: ['Retry', 'retried'], delete: ['Delete', 'deleted'] } as const;
    const [verb] = verbs[operation];
    setConfirm({
      title: `${verb} ${String(targets.length)} ${targets.length === 1 ? 'job' : 'jobs'}?`,
      message:
        operation === 'delete'
          ? `${String(targets.length)} selected ${targets.length === 1 ? 'job is' : 'jobs are'} deleted for good.`
          : operation === 'cancel'
            ? `${String(targets.length)} selected ${targets.length === 1 ? 'job' : 'jobs'} will be CANCELED; running actions are stopped.`
            : `${String(targets.length)} selected ${targets.length === 1 ? 'job goes' : 'jobs go'} back to QUEUED as a new attempt (the queue reconciler enqueues them).`,
      confirmLabel: `${verb} ${String(targets.length)}`,
      danger: operation !== 'retry',
      onConfirm: () => {
        void runBulk(
          operation,
          targets.map((job) => job.id),
        ).then((result) => {
          setOutcome(result);
          setSelected(new Set());
          void load();
        });
      },
    });
  };

  const matching = (operation: BulkOperation): void => {
    if (filter === '') return;
    const scoped = scopedFilter(operation, filter, abilities);
    void countOf(scoped).then(
      (exact) => {
        const [verb, done] = VERBS[operation];
        setConfirm({
          title: `${verb} every job the filter matches?`,
          message:
            exact === 0
              ? `No job the filter matches can be ${done}.`
              : `${formatCount(exact)} matching ${exact === 1 ? 'job' : 'jobs'} will be ${done}${SCOPE_NOTE[operation]}. ` +
                'Jobs that start to match meanwhile are included.',
          confirmLabel: `${verb} ${formatCount(exact)} matching`,
          danger: operation !== 'retry',
          onConfirm: () => {
            if (exact === 0) return;
            void runBulkByFilter(operation, filter).then((result) => {
              setOutcome(result);
              setSelected(new Set());
              void load();
            });
          },
        });
      },
      (failure: unknown) => {
        setOutcome(`could not count the matching jobs: ${describeFailure(failure)}`);
      },
    );
  };

  const field = (name: Exclude<keyof Filters, 'dead'>) => ({
    value: draft[name],
    onInput: (event: { currentTarget: HTMLInputElement | HTMLSelectElement }) => {
      const value = event.currentTarget.value;
      setDraft((current) => ({ ...current, [name]: value }));
    },
  });

  const sortHeader = (name: SortField, label: string) => (
    <th scope="col" aria-sort={sort.field === name ? (sort.desc ? 'descending' : 'ascending') : 'none'}>
      <button
        type="button"
        class="sort"
        onClick={() => {
          toggleSort(name);
        }}
      >
        {label}
        <span aria-hidden="true">{sort.field === name ? (sort.desc ? ' ▼' : ' ▲') : ''}</span>
      </button>
    </th>
  );

  const anyAction = abilities.cancel || abilities.retry || abilities.delete !== 'none';

  return (
    <main id="main" tabIndex={-1}>
      <header class="page-header">
        <h1>Jobs</h1>
        <LiveIndicator status={stream} />
      </header>
      <form class="filters" onSubmit={apply} aria-label="Filter jobs">
        <div class="field">
          <label for="f-state">State</label>
          <select id="f-state" {...field('state')}>
            <option value="">any</option>
            {JOB_STATES.map((state) => (
              <option value={state}>{state}</option>
            ))}
          </select>
        </div>
        <div class="field">
          <label for="f-action">Action</label>
          <input id="f-action" {...field('action')} />
        </div>
        <div class="field">
          <label for="f-target">Target</label>
          <input id="f-target" placeholder="href" {...field('target')} />
        </div>
        <div class="field">
          <label for="f-tag">Tag</label>
          <input id="f-tag" {...field('tag')} />
        </div>
        <div class="field">
          <label for="f-age">Created</label>
          <select id="f-age" {...field('age')}>
            {AGES.map((age) => (
              <option value={age.value}>{age.label}</option>
            ))}
          </select>
        </div>
        <div class="field wide">
          <label for="f-cimi">CIMI filter</label>
          <input
            id="f-cimi"
            class="mono"
            placeholder="state=['QUEUED','RUNNING'] and created<'now-1h'"
            aria-invalid={cimiError === undefined ? 'false' : 'true'}
            aria-describedby="f-cimi-error"
            {...field('cimi')}
          />
          <div id="f-cimi-error" aria-live="polite">
            {cimiError === undefined ? null : <ErrorNote>{cimiError}</ErrorNote>}
          </div>
        </div>
        <div class="field check">
          <input
            id="f-dead"
            type="checkbox"
            checked={draft.dead}
            onChange={(event) => {
              const checked = event.currentTarget.checked;
              setDraft((current) => ({ ...current, dead: checked }));
            }}
          />
          <label for="f-dead">Dead letters only</label>
        </div>
        <div class="field buttons">
          <button type="submit" class="primary">
            Apply
          </button>
        </div>
      </form>

      {loadError === undefined ? null : <ErrorNote>{loadError}</ErrorNote>}
      {outcome === undefined ? null : (
        <p class="notice" role="status">
          {outcome}
        </p>
      )}

      <div class="toolbar">
        <span aria-live="polite">
          <span data-count={count} data-capped={capped ? 'true' : 'false'}>{`${countText} jobs`}</span>
          {serverMs === undefined ? '' : ` · page in ${serverMs.toFixed(0)} ms`}
        </span>
        {anyAction && chosen.length > 0 ? (
          <span class="bulk" role="group" aria-label="Selected jobs">
            {chosen.length} selected:
            {abilities.cancel ? (
              <button
                type="button"
                onClick={() => {
                  bulk(
                    'cancel',
                    chosen.filter((job) => !FINAL_STATES.has(job.state)),
                  );
                }}
                disabled={!chosen.some((job) => !FINAL_STATES.has(job.state))}
              >
                Cancel
              </button>
            ) : null}
            {abilities.retry ? (
              <button
                type="button"
                onClick={() => {
                  bulk(
                    'retry',
                    chosen.filter((job) => FINAL_STATES.has(job.state)),
                  );
                }}
                disabled={!chosen.some((job) => FINAL_STATES.has(job.state))}
              >
                Retry
              </button>
            ) : null}
            {abilities.delete !== 'none' ? (
              <button
                type="button"
                class="danger"
                onClick={() => {
                  bulk('delete', abilities.delete === 'any' ? chosen : chosen.filter((job) => FINAL_STATES.has(job.state)));
                }}
              >
                Delete
              </button>
            ) : null}
          </span>
        ) : null}
        {anyAction && filter !== '' && count !== undefined && count > 0 ? (
          <span class="bulk" role="group" aria-label="Every job the filter matches">
            All matching:
            {abilities.cancel ? (
              <button
                type="button"
                class="subtle"
                onClick={() => {
                  matching('cancel');
                }}
              >
                Cancel all matching…
              </button>
            ) : null}
            {abilities.retry ? (
              <button
                type="button"
                class="subtle"
                onClick={() => {
                  matching('retry');
                }}
              >
                Retry all matching…
              </button>
            ) : null}
            {abilities.delete !== 'none' ? (
              <button
                type="button"
                class="danger subtle"
                onClick={() => {
                  matching('delete');
                }}
              >
                Delete all matching…
              </button>
            ) : null}
          </span>
        ) : null}
      </div>

      <div class="table-wrap">
        <table class="jobs">
          <caption class="visually-hidden">
            Jobs, page {pageIndex + 1} of {pages}
          </caption>
          <thead>
            <tr>
              {anyAction ? (
                <th scope="col" class="check">
                  <input
                    type="checkbox"
                    aria-label="Select every job on this page"
                    checked={allSelected}
                    onChange={() => {
                      setSelected(allSelected ? new Set() : new Set(visibleIds));
                    }}
                  />
                </th>
              ) : null}
              <th scope="col">Job</th>
              {sortHeader('state', 'State')}
              {sortHeader('action', 'Action')}
              <th scope="col">Target</th>
              {sortHeader('progress', 'Progress')}
              {sortHeader('priority', 'Priority')}
              {sortHeader('created', 'Created')}
              {sortHeader('updated', 'Updated')}
            </tr>
          </thead>
          <tbody>
            {jobs.length === 0 ? (
              <tr>
                <td colSpan={anyAction ? 9 : 8} class="empty">
                  {count === undefined ? '' : 'No job matches.'}
                </td>
              </tr>
            ) : (
              jobs.map((job) => (
                <tr key={job.id} data-job={job.id} data-state={job.state}>
                  {anyAction ? (
                    <td class="check">
                      <input
                        type="checkbox"
                        aria-label={`Select ${job.id}`}
                        checked={selected.has(job.id)}
                        onChange={() => {
                          setSelected((current) => {
                            const next = new Set(current);
                            if (next.has(job.id)) next.delete(job.id);
                            else next.add(job.id);
                            return next;
                          });
                        }}
                      />
                    </td>
                  ) : null}
                  <td>
                    <a href={`#/job/${job.id.replace(/^job\//, '')}`} class="mono" title={job.id}>
                      {shortId(job.id)}
                    </a>
                  </td>
                  <td>
                    <StateBadge state={job.state} />
                  </td>
                  <td>{job.action}</td>
                  <td class="target">{job.target ?? '-'}</td>
                  <td>
                    <ProgressBar value={job.progress} label={`progress of ${job.id}`} />
                  </td>
                  <td class="num">{job.priority ?? '-'}</td>
                  <td title={job.created}>{formatAgo(job.created)}</td>
                  <td title={job.updated}>{formatAgo(job.updated)}</td>
                </tr>
              ))
            )}
          </tbody>
        </table>
      </div>

      <nav class="pager" aria-label="Pages">
        <button
          type="button"
          disabled={pageIndex === 0}
          onClick={() => {
            setPageIndex(0);
          }}
        >
          First
        </button>
        <button
          type="button"
          disabled={pageIndex === 0}
          onClick={() => {
            setPageIndex((index) => index - 1);
          }}
        >
          Previous
        </button>
        <span>
          Page {pageIndex + 1} of {capped ? `more than ${formatCount(pages)}` : formatCount(pages)}
        </span>
        <button
          type="button"
          disabled={pageIndex + 1 >= pages && !capped}
          onClick={() => {
            setPageIndex((index) => index + 1);
          }}
        >
          Next
        </button>
        <label for="page-size">Rows</label>
        <select
          id="page-size"
          value={String(pageSize)}
          onChange={(event) => {
            setPageSize(Number(event.currentTarget.value));
            setPageIndex(0);
          }}
        >
          {PAGE_SIZES.map((size) => (
            <option value={String(size)}>{size}</option>
          ))}
        </select>
      </nav>
      <ConfirmDialog
        request={confirm}
        onClose={() => {
          setConfirm(undefined);
        }}
      />
    </main>
  );
}
