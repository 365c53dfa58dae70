/** How times, durations and counts read on the dashboard. */

export function formatDuration(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return '-';
  if (seconds < 1) return `${String(Math.round(seconds * 1000))} ms`;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 1 : 0)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${String(minutes)} min ${String(Math.round(seconds % 60))} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${String(hours)} h ${String(minutes % 60)} min`;
  return `${String(Math.floor(hours / 24))} d ${String(hours % 24)} h`;
}

export function formatTime(iso: string | undefined): string {
  if (iso === undefined) return '-';
  const date = new Date(iso);
  if (Number.isNaN(date.getTime())) return iso;
  return date.toLocaleString(undefined, { dateStyle: 'short', timeStyle: 'medium' });
}

export function formatAgo(iso: string | undefined, now = Date.now()): string {
  if (iso === undefined) return '-';
  const at = Date.parse(iso);
  return Number.isNaN(at) ? iso : `${formatDuration(Math.max(0, (now - at) / 1000))} ago`;
}

export function formatCount(count: number): string {
  return count.toLocaleString();
}

export function shortId(id: string): string {
  return id.replace(/^job\//, '').slice(0, 8);
}

export function formatUntil(iso: string | undefined, now = Date.now()): string {
  if (iso === undefined) return '-';
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return iso;
  return at <= now ? 'due now' : `in ${formatDuration((at - now) / 1000)}`;
}
