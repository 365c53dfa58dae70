/**
 * Routes in the URL's hash (`#/jobs?state=RUNNING`, `#/job/<uuid>`): the server serves one page
 * under /ui/, and a reload or a shared link opens the same view.
 */
import { useEffect, useState } from 'preact/hooks';

export interface Route {
  readonly page: 'overview' | 'jobs' | 'job' | 'queues';
  readonly id?: string;
  readonly params: URLSearchParams;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export function parseRoute(hash: string): Route {
  const [path = '', query = ''] = hash.replace(/^#/, '').split('?', 2);
  const params = new URLSearchParams(query);
  const parts = path.split('/').filter((part) => part !== '');
  if (parts[0] === 'jobs') return { page: 'jobs', params };
  if (parts[0] === 'queues' || parts[0] === 'distributions') return { page: 'queues', params };
  if (parts[0] === 'job' && parts[1] !== undefined && UUID.test(parts[1])) return { page: 'job', id: `job/${parts[1]}`, params };
  return { page: 'overview', params };
}

export function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const changed = (): void => {
      setRoute(parseRoute(location.hash));
    };
    window.addEventListener('hashchange', changed);
    return () => {
      window.removeEventListener('hashchange', changed);
    };
  }, []);
  return route;
}

export function navigate(hash: string): void {
  location.hash = hash;
}
