/**
 * Notices, for every job this executor runs, that the job was canceled, deleted, or given to another
 * executor by someone else, so its action is stopped within a poll interval instead of at its next
 * write (Nuvla's executor only found out then). One search per interval covers all running jobs.
 */
import type { JobApiClient } from '../api/client/index.js';
import type { JobDocument } from '../api/job/document.js';
import { delay } from '../util/delay.js';
import { toError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import type { LostReason } from './owned-job.js';

export interface WatchedJob {
  readonly id: string;
  readonly owner: string;
  readonly attempt: number;
  /** Called once, when the job stopped being ours. */
  readonly onLost: (reason: Exclude<LostReason, 'session-lost'>, detail: string) => void;
}

/** Ids per search request, so the filter stays a reasonable size. */
const IDS_PER_SEARCH = 200;

export class JobWatch {
  readonly #api: JobApiClient;
  readonly #intervalMs: number;
  readonly #logger: Logger;
  readonly #watched = new Map<string, WatchedJob>();
  readonly #stopped = new AbortController();
  #loop: Promise<void> | undefined;

  readonly #paused: () => boolean;

  /** `paused`: while it says so (the API is known to be down), no search is sent. */
  constructor(api: JobApiClient, intervalMs: number, logger: Logger, paused: () => boolean) {
    this.#api = api;
    this.#paused = paused;
    this.#intervalMs = intervalMs;
    this.#logger = logger;
  }

  /** Follows the job until the returned function is called. */
  watch(job: WatchedJob): () => void {
    this.#watched.set(job.id, job);
    this.#loop ??= this.#run();
    return () => {
      if (this.#watched.get(job.id) === job) this.#watched.delete(job.id);
    };
  }

  async stop(): Promise<void> {
    this.#stopped.abort();
    await this.#loop;
  }

  async #run(): Promise<void> {
    const signal = this.#stopped.signal;
    while (!signal.aborted) {
      try {
        await delay(this.#intervalMs, signal);
      } catch {
        return;
      }
      if (this.#watched.size === 0 || this.#paused()) continue;
      const ids = [...this.#watched.keys()];
      for (let start = 0; start < ids.length; start += IDS_PER_SEARCH) {
        await this.#check(ids.slice(start, start + IDS_PER_SEARCH));
      }
    }
  }

  async #check(ids: readonly string[]): Promise<void> {
    let found: Pick<JobDocument, 'id' | 'state' | 'executor' | 'attempt'>[];
    try {
      const filter = `id=[${ids.map((id) => `'${id.replaceAll("'", "\\'")}'`).join(',')}]`;
      found = (await this.#api.search({ filter, select: ['state', 'executor', 'attempt'], last: ids.length })).jobs;
    } catch (error) {
      // The API being down is handled by the writes' own back-off; the next poll tries again.
      this.#logger.debug('running jobs could not be checked', { error: toError(error) });
      return;
    }
    const byId = new Map(found.map((job) => [job.id, job]));
    for (const id of ids) {
      const watched = this.#watched.get(id);
      if (watched === undefined) continue;
      const job = byId.get(id);
      if (job === undefined) {
        this.#lose(watched, 'gone', `job ${id} was deleted while it ran`);
      } else if (job.state === 'CANCELED') {
        this.#lose(watched, 'canceled', `job ${id} was canceled`);
      } else if (job.state !== 'RUNNING' || job.executor !== watched.owner || job.attempt !== watched.attempt) {
        const where = job.executor === undefined ? '' : ` on ${job.executor}`;
        this.#lose(watched, 'taken-over', `job ${id} is no longer this executor's: it is ${job.state}${where}`);
      }
    }
  }

  #lose(watched: WatchedJob, reason: Exclude<LostReason, 'session-lost'>, detail: string): void {
    this.#watched.delete(watched.id);
    watched.onLost(reason, detail);
  }
}
