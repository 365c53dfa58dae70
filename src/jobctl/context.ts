/**
 * What a command runs with: its compiled options, output, an abort signal (Ctrl-C, wired by the
 * entry point), and the connections it asks for, opened on first use and closed by `close()` in
 * reverse order, every one of them even when one fails (docs/style.md).
 */
import { JobApiClient } from '../api/client/index.js';
import { QueueRoutes } from '../recipes/queue-routes.js';
import { ZkClient } from '../zk/client.js';
import { toError } from '../util/errors.js';
import { ReleaseError, Releasers } from '../util/releasers.js';
import type { Output } from './output.js';
import { requireZkHosts, type JobctlOptions } from './options.js';

/** A CLI answers in seconds: a few quick retries, not the daemons' patient back-off. */
const CLI_RETRY = { retries: 2, baseDelayMs: 200, maxDelayMs: 1000 } as const;

export class CommandContext {
  readonly options: JobctlOptions;
  readonly out: Output;
  readonly signal: AbortSignal;
  readonly now: () => number;
  readonly #releasers = new Releasers();
  #api: Promise<JobApiClient> | undefined;
  #zk: Promise<ZkClient> | undefined;

  constructor(options: JobctlOptions, out: Output, signal: AbortSignal, now: () => number = Date.now) {
    this.options = options;
    this.out = out;
    this.signal = signal;
    this.now = now;
  }

  api(): Promise<JobApiClient> {
    this.#api ??= this.#releasers.open(
      'job API client',
      JobApiClient.create({
        baseUrl: this.options.api.baseUrls,
        timeoutMs: this.options.api.timeoutMs,
        compatibility: this.options.api.compatibility,
        retry: CLI_RETRY,
        ...(this.options.api.credentials === undefined ? {} : { credentials: this.options.api.credentials }),
        ...(this.options.api.ca === undefined ? {} : { ca: this.options.api.ca }),
      }),
      (client) => client.close(),
    );
    return this.#api;
  }

  /** A ZooKeeper session; `why` completes "--zk-hosts is required to ..." when it is missing. */
  zk(why: string): Promise<ZkClient> {
    const hosts = requireZkHosts(this.options, why);
    this.#zk ??= this.#releasers.open(
      'ZooKeeper session',
      ZkClient.connect({
        connectionString: hosts,
        ...(this.options.zk.auth === undefined ? {} : { auth: this.options.zk.auth }),
        sessionTimeoutMs: this.options.zk.sessionTimeoutMs,
        connectTimeoutMs: this.options.zk.connectTimeoutMs,
      }),
      (client) => client.close(),
    );
    return this.#zk;
  }

  /** The job queues at --queue-path (each job into the queue it names), for commands that enqueue. */
  async queue(why: string): Promise<QueueRoutes> {
    const queue = new QueueRoutes(await this.zk(why), this.options.zk.queuePath);
    this.#releasers.add('queue', () => queue.close());
    return queue;
  }

  /** Closes what was opened, last first; returns the failures (the command's own result matters more). */
  async close(): Promise<Error[]> {
    try {
      await this.#releasers.releaseAll();
      return [];
    } catch (error) {
      return error instanceof ReleaseError ? error.errors.map((failure) => toError(failure)) : [toError(error)];
    }
  }
}
