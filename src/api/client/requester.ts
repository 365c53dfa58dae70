/**
 * A call to the job API as the client's methods see it: logged in (once per replica, shared by
 * concurrent calls), retried when that is safe, logged in again once on a 401 and replayed. With
 * several replicas, a call that got no answer from one goes at once to another that answers, when
 * that cannot do it twice: the request never reached the first, or a replay is harmless. Answers of
 * any status come back to the caller, which knows what each status means for its call; only a call
 * that got no answer at all, after its retries, throws.
 */
import { ApiError } from '../errors.js';
import type { Logger } from '../../util/logger.js';
import type { FlavourDetector } from './compat.js';
import { errorFromResponse, isRetryable, mayHaveBeenApplied, withAttempts } from './errors.js';
import type { HttpRequest, HttpResponse, HttpTransport } from './http.js';
import type { ApiCredentials, RetryPolicy } from './options.js';
import type { Replica, ReplicaSet } from './replicas.js';
import { backoffDelayMs, isRetryableStatus } from './retry.js';
import { delay } from '../../util/delay.js';
import { StallWatch, type WatchedCall } from './stall-watch.js';

export interface Call extends HttpRequest {
  /** A replay after a lost reply is harmless; only such calls are retried (see retry.ts). */
  readonly idempotent: boolean;
  /** Retry a 500 too: for reads only. */
  readonly retryOn500?: boolean;
  /** False for the login itself. */
  readonly authenticated?: boolean;
  /** Sent to this replica only (a login, whose cookie is that replica's). */
  readonly replica?: Replica;
}

export interface CallResult {
  readonly response: HttpResponse;
  /** HTTP requests made for this call, replays and the replay after a new login included. */
  readonly attempts: number;
  /**
   * An earlier attempt failed in a way that may have reached the server, so this answer may describe
   * the state after our own first attempt (e.g. a 404 for a delete that already happened).
   */
  readonly afterAmbiguousAttempt: boolean;
}

const API_KEY_TEMPLATE = 'session-template/api-key';

/** Statuses by which a replica says it cannot serve now (restarting, draining, its gateway lost it). */
const REPLICA_UNAVAILABLE: ReadonlySet<number> = new Set([502, 503, 504]);

export class Requester {
  readonly #stalls: StallWatch;

  constructor(
    private readonly http: HttpTransport,
    private readonly replicas: ReplicaSet,
    private readonly detector: FlavourDetector,
    private readonly credentials: ApiCredentials | undefined,
    private readonly retry: RetryPolicy,
    private readonly logger: Logger,
  ) {
    this.#stalls = new StallWatch(logger);
  }

  /** Logs once when the call (its retries included) waits over 5 s for an answer, and once when answered. */
  async call(call: Call): Promise<CallResult> {
    const watched = this.#stalls.begin(call);
    try {
      return await this.#call(call, watched);
    } finally {
      watched.end();
    }
  }

  async #call(call: Call, watched: WatchedCall): Promise<CallResult> {
    const authenticated = call.authenticated !== false && this.credentials !== undefined;
    let attempts = 0;
    let retries = 0;
    let reloggedIn = false;
    let ambiguous = false;
    // The replicas this round of the call found silent; a back-off starts a new round over all of them.
    const silent = new Set<Replica>();
    for (;;) {
      const replica = call.replica ?? this.replicas.pick(silent) ?? this.replicas.pick();
      if (replica === undefined) throw new ApiError('internal', 'the job API client has no replica to call');
      if (authenticated && replica.session.needsLogin(Date.now())) {
        try {
          await this.#login(replica, replica.session.generation);
        } catch (error) {
          // One replica: the login had its own retries. Several: another replica may log us in now.
          if (!(error instanceof ApiError) || !isRetryable(error) || call.replica !== undefined || this.replicas.size === 1) throw error;
          this.#silent(replica, silent, error.message);
          if (this.replicas.hasAnswering(silent)) continue;
          if (!call.idempotent || retries >= this.retry.retries) throw withAttempts(error, attempts);
          retries += 1;
          silent.clear();
          await this.#backOff(call, retries, error.message, undefined);
          continue;
        }
      }
      const generation = replica.session.generation;
      attempts += 1;
      let response: HttpResponse;
      try {
        response = await this.http.send(call, authenticated ? replica.session.header : undefined, replica.baseUrl);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        const maybeApplied = mayHaveBeenApplied(error);
        ambiguous ||= maybeApplied;
        if (isRetryable(error)) {
          this.#silent(replica, silent, error.message);
          if (this.#mayTurnElsewhere(call, silent, maybeApplied)) continue;
        }
        if (call.idempotent && retries < this.retry.retries && isRetryable(error) && !this.#pinnedAmongMany(call)) {
          retries += 1;
          silent.clear();
          await this.#backOff(call, retries, error.message, undefined);
          continue;
        }
        throw withAttempts(error, attempts);
      }
      watched.answered();
      this.detector.observe(response);
      if (REPLICA_UNAVAILABLE.has(response.status)) {
        this.#silent(replica, silent, `HTTP ${response.status}`);
        // A 502 or 504 may have been forwarded and carried out; a 503 was refused before any work.
        if (this.#mayTurnElsewhere(call, silent, response.status !== 503)) {
          ambiguous ||= response.status !== 503;
          continue;
        }
      } else {
        replica.answered();
      }
      if (authenticated && !reloggedIn && this.#sessionRefused(response.status)) {
        // Once: a second refusal right after a fresh login is about the key, not the session.
        reloggedIn = true;
        this.logger.info('job API session no longer accepted; logging in again', {
          method: call.method,
          path: call.path,
          status: response.status,
          ...(this.replicas.size > 1 ? { replica: replica.baseUrl } : {}),
        });
        await this.#login(replica, generation);
        continue;
      }
      if (call.idempotent && retries < this.retry.retries && isRetryableStatus(response.status, call.retryOn500 === true)) {
        ambiguous ||= response.status !== 503 && response.status !== 429;
        retries += 1;
        silent.clear();
        await this.#backOff(call, retries, `HTTP ${response.status}`, response.retryAfter);
        continue;
      }
      return { response, attempts, afterAmbiguousAttempt: ambiguous };
    }
  }

  /** A login to one of several replicas fails fast, so that its call turns to another replica instead of waiting. */
  #pinnedAmongMany(call: Call): boolean {
    return call.replica !== undefined && this.replicas.size > 1;
  }

  /** Another replica now, without a back-off: one answers, and sending the call there cannot do it twice. */
  #mayTurnElsewhere(call: Call, silent: ReadonlySet<Replica>, maybeApplied: boolean): boolean {
    return call.replica === undefined && (call.idempotent || !maybeApplied) && this.replicas.hasAnswering(silent);
  }

  #silent(replica: Replica, silent: Set<Replica>, reason: string): void {
    silent.add(replica);
    if (this.replicas.size === 1) return;
    const wasBenched = replica.isBenched(Date.now());
    const benchMs = this.replicas.failed(replica);
    if (!wasBenched) {
      this.logger.warn('job API replica did not answer; calls go to the others for a while', {
        replica: replica.baseUrl,
        forMs: benchMs,
        reason,
      });
    }
  }

  /** Logs in now (a fresh session even if one is held) to the next replica: checks the credentials early. */
  async login(): Promise<void> {
    if (this.credentials === undefined) {
      throw new ApiError('unauthorized', 'the job API client has no credentials to log in with (option "credentials")');
    }
    const replica = this.replicas.pick();
    if (replica !== undefined) await this.#login(replica, replica.session.generation);
  }

  /**
   * Logs in to the replica unless a login happened there since the caller's cookie was current
   * (another call already replaced it); concurrent callers share one login request.
   */
  #login(replica: Replica, seenGeneration: number): Promise<void> {
    if (replica.loggingIn !== undefined) return replica.loggingIn;
    if (seenGeneration !== replica.session.generation && !replica.session.needsLogin(Date.now())) return Promise.resolve();
    replica.loggingIn = this.#loginNow(replica).finally(() => {
      replica.loggingIn = undefined;
    });
    return replica.loggingIn;
  }

  async #loginNow(replica: Replica): Promise<void> {
    const credentials = this.credentials;
    if (credentials === undefined) return;
    const path = '/api/session';
    const { response, attempts } = await this.call({
      method: 'POST',
      path,
      body: { json: { template: { href: API_KEY_TEMPLATE, key: credentials.key, secret: credentials.secret } } },
      idempotent: true,
      authenticated: false,
      replica,
    });
    if (response.status !== 200 && response.status !== 201) {
      const error = errorFromResponse(response.status, response.body, { method: 'POST', path, attempts });
      throw new ApiError(error.code, `login with API key ${credentials.key} failed: ${error.message}`, {
        details: { ...error.details, key: credentials.key },
      });
    }
    if (!replica.session.accept(response.setCookie, Date.now())) {
      throw new ApiError('unauthorized', `login with API key ${credentials.key} answered ${response.status} but set no session cookie`, {
        details: { httpStatus: response.status, method: 'POST', path },
      });
    }
    this.logger.debug('logged in to the job API', {
      key: credentials.key,
      ...(this.replicas.size > 1 ? { replica: replica.baseUrl } : {}),
    });
  }

  /**
   * Nuvla treats a request without a valid session as anonymous, which its ACLs refuse with 403; its
   * own Python client logs in again on 403 as well. Ours says 401 and keeps 403 for roles.
   */
  #sessionRefused(status: number): boolean {
    return status === 401 || (status === 403 && this.detector.flavour !== 'engine');
  }

  async #backOff(call: Call, retry: number, reason: string, retryAfter: string | undefined): Promise<void> {
    const delayMs = backoffDelayMs(retry, this.retry, retryAfter);
    this.logger.debug('job API call failed; retrying', {
      method: call.method,
      path: call.path,
      retry,
      of: this.retry.retries,
      delayMs,
      reason,
    });
    try {
      // A call waiting to retry is work in progress: a CLI awaiting it must not exit meanwhile.
      await delay(delayMs, this.http.signal, { keepProcessAlive: true });
    } catch (error) {
      throw new ApiError('unavailable', `${call.method} ${call.path}: the job API client was closed while waiting to retry`, {
        cause: error,
        details: { method: call.method, path: call.path, retryable: false },
      });
    }
  }
}
