/** Small pieces every page uses: state badges, the progress bar, the stream's status, errors. */
import type { ComponentChildren } from 'preact';
import type { JobState } from '../model';
import type { StreamStatus } from '../events';

export function StateBadge({ state }: { state: JobState }) {
  return <span class={`badge state-${state.toLowerCase()}`}>{state}</span>;
}

export function ProgressBar({ value, label }: { value: number; label: string }) {
  const clamped = Math.max(0, Math.min(100, value));
  return (
    <div class="progress" role="progressbar" aria-label={label} aria-valuemin={0} aria-valuemax={100} aria-valuenow={Math.round(clamped)}>
      <div class="progress-fill" style={{ width: `${String(clamped)}%` }} />
      <span class="progress-text">{Math.round(clamped)}%</span>
    </div>
  );
}

export function LiveIndicator({ status }: { status: StreamStatus }) {
  const words = { connecting: 'connecting to the event stream', live: 'live', reconnecting: 'event stream lost, reconnecting' } as const;
  return (
    <span class={`live live-${status}`} role="status" data-stream={status}>
      {words[status]}
    </span>
  );
}

export function ErrorNote({ children }: { children: ComponentChildren }) {
  return (
    <p class="error" role="alert">
      {children}
    </p>
  );
}
