/**
 * The job API's metrics: requests by route pattern and status with their latency (it is the app's
 * RequestObserver), and the jobs in the store per state, counted on scrape and cached for a few
 * seconds (a count over a large job table is not free, and several scrapers may ask at once); its
 * readiness is the store answering. Made in the entry point with the daemon's registry.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import { JOB_STATES, type JobState } from '../api/job/document.js';
import type { RequestObserver } from '../api/server/app.js';
import type { JobStore } from '../api/store/job-store.js';
import { messageOf, toError } from '../util/errors.js';
import type { Logger } from '../util/logger.js';
import { cachedRead } from './cached.js';
import type { ReadinessChecks } from './metrics-server.js';
import { METRIC_PREFIX } from './registry.js';

/** Counts older than this are read again on the next scrape. */
export const JOB_COUNTS_TTL_MS = 5000;
/** Loopback requests take about a millisecond; a bulk create of 10,000 jobs a second or two. */
const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Fastify answers any method Node parses; series are only made for these, the rest count as OTHER. */
const METHODS = new Set(['GET', 'HEAD', 'POST', 'PUT', 'PATCH', 'DELETE', 'OPTIONS']);
/** The route label of a request no route matched (a 404): never its URL, which would make a series per URL. */
export const UNMATCHED_ROUTE = 'unmatched';

export class ApiMetrics implements RequestObserver {
  readonly registry: Registry;
  readonly #requests: Counter<'method' | 'route' | 'status'>;
  readonly #latency: Histogram<'method' | 'route'>;
  readonly #counts: () => Promise<Record<JobState, number>>;

  constructor(registry: Registry, store: JobStore, logger: Logger) {
    this.registry = registry;
    const registers = [registry];
    this.#requests = new Counter({
      name: `${METRIC_PREFIX}api_requests_total`,
      help: 'Requests answered, by method, route pattern and status code',
      labelNames: ['method', 'route', 'status'],
      registers,
    });
    this.#latency = new Histogram({
      name: `${METRIC_PREFIX}api_request_duration_seconds`,
      help: "From a request's arrival to its response, by method and route pattern (an event stream counts when it ends)",
      labelNames: ['method', 'route'],
      buckets: LATENCY_BUCKETS,
      registers,
    });
    const counts = cachedRead(() => store.countByState(), JOB_COUNTS_TTL_MS);
    this.#counts = () => counts.get();
    const jobs = new Gauge({
      name: `${METRIC_PREFIX}api_jobs`,
      help: `Jobs in the store by state, counted at most every ${JOB_COUNTS_TTL_MS / 1000} s; NaN while the store does not answer`,
      labelNames: ['state'],
      registers,
      collect: async () => {
        const byState = await this.#counts().catch((error: unknown) => {
          logger.warn('jobs per state could not be counted for the metrics', { error: toError(error) });
          return undefined;
        });
        for (const state of JOB_STATES) jobs.set({ state }, byState?.[state] ?? Number.NaN);
      },
    });
  }

  observe(method: string, route: string | undefined, status: number, seconds: number): void {
    const labels = { method: METHODS.has(method) ? method : 'OTHER', route: route ?? UNMATCHED_ROUTE };
    this.#requests.inc({ ...labels, status: String(status) });
    this.#latency.observe(labels, seconds);
  }

  /** The store answers (the same cached count the gauge uses: a readiness probe every second costs nothing). */
  readiness(): ReadinessChecks {
    return {
      store: async () => {
        try {
          await this.#counts();
          return undefined;
        } catch (error) {
          return `the job store does not answer: ${messageOf(error)}`;
        }
      },
    };
  }
}
