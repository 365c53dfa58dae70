/** The engine's ZooKeeper view (GET /api/engine/overview), polled while a page shows it. */
import { useEffect, useState } from 'preact/hooks';
import { describeFailure, request } from './api';
import { parseEngineSnapshot, type EngineSnapshot } from './model';

export type EngineState =
  | { readonly kind: 'loading' }
  | { readonly kind: 'ok'; readonly snapshot: EngineSnapshot }
  | { readonly kind: 'off'; readonly message: string };

const POLL_MS = 5000;

export function useEngine(): EngineState {
  const [state, setState] = useState<EngineState>({ kind: 'loading' });
  useEffect(() => {
    let stopped = false;
    let timer: number | undefined;
    const poll = async (): Promise<void> => {
      try {
        const snapshot = parseEngineSnapshot(await request('GET', '/api/engine/overview'));
        if (!stopped) setState({ kind: 'ok', snapshot });
      } catch (failure) {
        if (!stopped) setState({ kind: 'off', message: describeFailure(failure) });
      }
      if (!stopped) timer = window.setTimeout(() => void poll(), POLL_MS);
    };
    void poll();
    return () => {
      stopped = true;
      if (timer !== undefined) window.clearTimeout(timer);
    };
  }, []);
  return state;
}
