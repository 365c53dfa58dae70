/**
 * The dashboard's entry: asks the API who the session is (GET /api/session), shows the login form
 * when nobody is, and otherwise the page the URL's hash names. What the key's role may not do is not
 * offered; the API refuses it anyway.
 */
import { render } from 'preact';
import { useCallback, useEffect, useState } from 'preact/hooks';
import { ApiFailure, describeFailure, request } from './api';
import { ErrorNote } from './components/common';
import { parseSession, type Session } from './model';
import { JobPage } from './pages/job';
import { JobsPage } from './pages/jobs';
import { LoginPage } from './pages/login';
import { OverviewPage } from './pages/overview';
import { QueuesPage } from './pages/queues';
import { useRoute, type Route } from './router';
import 'uplot/dist/uPlot.min.css';
import '../styles.css';

type SessionState =
  { kind: 'checking' } | { kind: 'anonymous'; notice?: string } | { kind: 'in'; session: Session } | { kind: 'error'; message: string };

const PAGES: readonly { page: Route['page']; hash: string; label: string }[] = [
  { page: 'overview', hash: '#/overview', label: 'Overview' },
  { page: 'jobs', hash: '#/jobs', label: 'Jobs' },
  { page: 'queues', hash: '#/distributions', label: 'Distributions & queues' },
];

function App() {
  const [state, setState] = useState<SessionState>({ kind: 'checking' });
  const route = useRoute();
  const check = useCallback(async () => {
    try {
      setState({ kind: 'in', session: parseSession(await request('GET', '/api/session')) });
    } catch (failure) {
      if (failure instanceof ApiFailure && failure.status === 401) setState({ kind: 'anonymous' });
      else setState({ kind: 'error', message: describeFailure(failure) });
    }
  }, []);
  useEffect(() => {
    void check();
  }, [check]);

  if (state.kind === 'checking') return <p class="loading">Loading…</p>;
  if (state.kind === 'error') return <ErrorNote>{state.message}</ErrorNote>;
  if (state.kind === 'anonymous') return <LoginPage onLoggedIn={() => void check()} notice={state.notice} />;
  const { session } = state;
  const logout = async (): Promise<void> => {
    await request('DELETE', '/api/session').catch(() => undefined);
    setState({ kind: 'anonymous', notice: 'Logged out.' });
  };
  return (
    <>
      <a
        class="skip"
        href="#main"
        onClick={(event) => {
          event.preventDefault();
          document.getElementById('main')?.focus();
        }}
      >
        Skip to content
      </a>
      <header class="top">
        <span class="brand">zk-job-engine</span>
        <nav aria-label="Pages">
          <ul>
            {PAGES.map((page) => (
              <li>
                <a href={page.hash} aria-current={route.page === page.page ? 'page' : undefined}>
                  {page.label}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="who" data-role={session.role}>
          <span class="mono" title={session.key}>
            {session.role}
          </span>
          <button type="button" class="subtle" onClick={() => void logout()}>
            Log out
          </button>
        </span>
      </header>
      {route.page === 'overview' ? <OverviewPage /> : null}
      {route.page === 'jobs' ? <JobsPage session={session} params={route.params} /> : null}
      {route.page === 'job' && route.id !== undefined ? <JobPage session={session} id={route.id} key={route.id} /> : null}
      {route.page === 'queues' ? <QueuesPage params={route.params} /> : null}
    </>
  );
}

const root = document.getElementById('app');
if (root !== null) render(<App />, root);
