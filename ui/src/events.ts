/**
 * The job event stream (GET /api/job/events, server-sent events) as the pages use it: one
 * EventSource per filter, opened while someone listens and closed when the last listener leaves.
 * EventSource reconnects by itself and sends Last-Event-ID, so the API replays what was missed.
 * Opened with `after=0`, the stream first replays the history the API keeps: the overview's
 * throughput of the last hour, and a job page's whole timeline.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { parseJobEvent, type JobEvent } from './model';

/** Every type the API sends (docs/contracts.md, lifecycle events): SSE named events need a listener each. */
export const EVENT_TYPES = [
  'created',
  'enqueued',
  'taken',
  'started',
  'progress',
  'finished',
  'timed-out',
  'cancelled',
  'released',
] as const;

export type StreamStatus = 'connecting' | 'live' | 'reconnecting';

export interface EventStreamHandle {
  close(): void;
}

export function openEventStream(
  query: string,
  onEvent: (event: JobEvent) => void,
  onStatus: (status: StreamStatus) => void,
): EventStreamHandle {
  const source = new EventSource(`/api/job/events${query === '' ? '' : `?${query}`}`);
  onStatus('connecting');
  const listener = (message: MessageEvent<unknown>): void => {
    const event = typeof message.data === 'string' ? parseJobEvent(message.data) : undefined;
    if (event !== undefined) onEvent(event);
  };
  for (const type of EVENT_TYPES) source.addEventListener(type, listener);
  source.onopen = () => {
    onStatus('live');
  };
  source.onerror = () => {
    onStatus(source.readyState === EventSource.CLOSED ? 'reconnecting' : 'connecting');
  };
  return {
    close() {
      source.close();
    },
  };
}

/** Calls `onEvent` for each event of the stream `query` while the component is mounted; returns the stream's status. */
export function useEventStream(query: string, onEvent: (event: JobEvent) => void): StreamStatus {
  const [status, setStatus] = useState<StreamStatus>('connecting');
  const handler = useRef(onEvent);
  handler.current = onEvent;
  useEffect(() => {
    const stream = openEventStream(
      query,
      (event) => {
        handler.current(event);
      },
      setStatus,
    );
    return () => {
      stream.close();
    };
  }, [query]);
  return status;
}
