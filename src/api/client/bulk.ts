/**
 * How createMany splits its jobs into bulk requests: at most 1000 jobs (the server's usual limit of
 * one bulk create is far above) and about 1 MiB of JSON per request (the server's body limit is
 * 4 MiB by default, and a few large payloads must not make a whole batch too large). A server
 * configured lower still answers 413, and then the batch is halved: a 413 means nothing was created.
 */
import type { NewJob } from './inputs.js';

export const BULK_CREATE_CHUNK = 1000;
export const BULK_CREATE_MAX_BYTES = 1024 * 1024;

/** Consecutive runs of jobs within both limits, in input order; a job larger than the byte limit goes alone. */
export function bulkChunks(jobs: readonly NewJob[], maxJobs = BULK_CREATE_CHUNK, maxBytes = BULK_CREATE_MAX_BYTES): NewJob[][] {
  const chunks: NewJob[][] = [];
  let current: NewJob[] = [];
  let bytes = 2;
  for (const job of jobs) {
    const size = Buffer.byteLength(JSON.stringify(job)) + 1;
    if (current.length > 0 && (current.length >= maxJobs || bytes + size > maxBytes)) {
      chunks.push(current);
      current = [];
      bytes = 2;
    }
    current.push(job);
    bytes += size;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** A batch the server found too large, as two halves in order. */
export function halves(chunk: readonly NewJob[]): [NewJob[], NewJob[]] {
  const middle = Math.ceil(chunk.length / 2);
  return [chunk.slice(0, middle), chunk.slice(middle)];
}
