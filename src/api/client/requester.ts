/**
 * A call to the job API as the client's methods see it: logged in (once, shared by concurrent calls),
 * retried when that is safe, logged in again once on a 401 and replayed. Answers of any status come
 * back to the caller, which knows what each status means for its call; only a call that got no answer
 * at all, after its retries, throws.
 */
import { ApiError } from '../errors.js';
import type { Logger } from '../../util/logger.js';
import type { FlavourDetector } from './compat.js';
import { errorFromResponse, isRetryable, mayHaveBeenApplied, withAttempts } from './errors.js';
import type { HttpRequest, HttpResponse, HttpTransport } from './http.js';
import type { ApiCredentials, RetryPolicy } from './options.js';
import { backoffDelayMs, isRetryableStatus } from './retry.js';
import { delay } from '../../util/delay.js';
import { SessionCookie } from './session.js';
import { StallWatch, type WatchedCall } from './stall-watch.js';

export interface Call extends HttpRequest {
  /** A replay after a lost reply is harmless; only such calls are retried (see retry.ts). */
  readonly idempotent: boolean;
  /** Retry a 500 too: for reads only. */
  readonly retryOn500?: boolean;
  /** False for the login itself. */
  readonly authenticated?: boolean;
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

export class Requester {
  readonly #session = new SessionCookie();
  readonly #stalls: StallWatch;
  #loggingIn: Promise<void> | undefined;

  constructor(
    private readonly http: HttpTransport,
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
    for (;;) {
      if (authenticated && this.#session.needsLogin(Date.now())) await this.#login(this.#session.generation);
      const generation = this.#session.generation;
      attempts += 1;
      let response: HttpResponse;
      try {
        response = await this.http.send(call, authenticated ? this.#session.header : undefined);
      } catch (error) {
        if (!(error instanceof ApiError)) throw error;
        ambiguous ||= mayHaveBeenApplied(error);
        if (call.idempotent && retries < this.retry.retries && isRetryable(error)) {
          retries += 1;
          await this.#backOff(call, retries, error.message, undefined);
          continue;
        }
        throw withAttempts(error, attempts);
      }
      watched.answered();
      this.detector.observe(response);
      if (authenticated && !reloggedIn && this.#sessionRefused(response.status)) {
        // Once: a second refusal right after a fresh login is about the key, not the session.
        reloggedIn = true;
        this.logger.info('job API session no longer accepted; logging in again', {
          method: call.method,
          path: call.path,
          status: response.status,
        });
        await this.#login(generation);
        continue;
      }
      if (call.idempotent && retries < this.retry.retries && isRetryableStatus(response.status, call.retryOn500 === true)) {
        ambiguous ||= response.status !== 503 && response.status !== 429;
        retries += 1;
        await this.#backOff(call, retries, `HTTP ${response.status}`, response.retryAfter);
        continue;
      }
      return { response, attempts, afterAmbiguousAttempt: ambiguous };
    }
  }

  /** Logs in now (a fresh session even if one is held): checks the credentials early. */
  async login(): Promise<void> {
    if (this.credentials === undefined) {
      throw new ApiError('unauthorized', 'the job API client has no credentials to log in with (option "credentials")');
    }
    await this.#login(this.#session.generation);
  }

  /**
   * Logs in unless a login happened since the caller's cookie was current (another call already
   * replaced it); concurrent callers share one login request.
   */
  #login(seenGeneration: number): Promise<void> {
    if (this.#loggingIn !== undefined) return this.#loggingIn;
    if (seenGeneration !== this.#session.generation && !this.#session.needsLogin(Date.now())) return Promise.resolve();
    this.#loggingIn = this.#loginNow().finally(() => {
      this.#loggingIn = undefined;
    });
    return this.#loggingIn;
  }

  async #loginNow(): Promise<void> {
    const credentials = this.credentials;
    if (credentials === undefined) return;
    const path = '/api/session';
    const { response, attempts } = await this.call({
      method: 'POST',
      path,
      body: { json: { template: { href: API_KEY_TEMPLATE, key: credentials.key, secret: credentials.secret } } },
      idempotent: true,
      authenticated: false,
    });
    if (response.status !== 200 && response.status !== 201) {
      const error = errorFromResponse(response.status, response.body, { method: 'POST', path, attempts });
      throw new ApiError(error.code, `login with API key ${credentials.key} failed: ${error.message}`, {
        details: { ...error.details, key: credentials.key },
      });
    }
    if (!this.#session.accept(response.setCookie, Date.now())) {
      throw new ApiError('unauthorized', `login with API key ${credentials.key} answered ${response.status} but set no session cookie`, {
        details: { httpStatus: response.status, method: 'POST', path },
      });
    }
    this.logger.debug('logged in to the job API', { key: credentials.key });
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
