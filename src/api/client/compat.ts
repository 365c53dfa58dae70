/**
 * Which API the client talks to: this engine's, with its additions (revision/ETag and If-Match,
 * idempotency keys, bulk create, error codes), or Nuvla's, without them. Told by the caller, or found
 * out once: passively from answers the client receives anyway (a job document with or without
 * `revision`, an error body with our `code`), and when a call needs to know before any such answer
 * came, from one cheap probe (a GET of a job that cannot exist: both servers answer 404 or 401/403,
 * ours with a `code`, Nuvla's without).
 */
import { ApiError } from '../errors.js';
import type { Logger } from '../../util/logger.js';
import { isRecord } from '../../util/is-record.js';
import type { HttpResponse } from './http.js';
import type { Compatibility, ServerFlavour } from './options.js';

export const PROBE_PATH = '/api/job/00000000-0000-4000-8000-000000000000';

export class FlavourDetector {
  #flavour: ServerFlavour | undefined;
  #probing: Promise<ServerFlavour> | undefined;

  constructor(
    setting: Compatibility,
    private readonly baseUrl: string,
    private readonly logger: Logger,
  ) {
    this.#flavour = setting === 'auto' ? undefined : setting;
  }

  /** Known once told or detected; undefined while auto-detection has seen no evidence yet. */
  get flavour(): ServerFlavour | undefined {
    return this.#flavour;
  }

  /** Learns from an answer the client received for another reason. */
  observe(response: HttpResponse): void {
    if (this.#flavour !== undefined) return;
    const found = evidenceIn(response, false);
    if (found !== undefined) this.#settle(found.flavour, found.why);
  }

  /** The flavour, probing the server once (single-flight) when nothing has told it yet. */
  async resolve(probe: () => Promise<HttpResponse>): Promise<ServerFlavour> {
    if (this.#flavour !== undefined) return this.#flavour;
    this.#probing ??= (async () => {
      const response = await probe();
      if (this.#flavour !== undefined) return this.#flavour;
      const found = evidenceIn(response, true);
      if (found === undefined) {
        throw new ApiError(
          'internal',
          `cannot tell whether ${this.baseUrl} is this engine's job API or Nuvla's: GET ${PROBE_PATH} answered ` +
            `${response.status} without a JSON error body; set the client option compatibility to 'engine' or 'nuvla'`,
          { details: { httpStatus: response.status, retryable: false } },
        );
      }
      this.#settle(found.flavour, found.why);
      return found.flavour;
    })().finally(() => {
      this.#probing = undefined;
    });
    return this.#probing;
  }

  #settle(flavour: ServerFlavour, why: string): void {
    this.#flavour = flavour;
    this.logger.info(`job API at ${this.baseUrl} is ${flavour === 'engine' ? "this engine's" : "Nuvla's (no engine additions)"}`, { why });
  }
}

function evidenceIn(response: HttpResponse, probing: boolean): { flavour: ServerFlavour; why: string } | undefined {
  const body = response.body;
  if (!isRecord(body)) return undefined;
  if (response.status >= 400) {
    // 4xx bodies in the API's own shape only: a gateway's 5xx page says nothing about the API behind it.
    if (response.status >= 500 || body.status !== response.status || typeof body.message !== 'string') return undefined;
    if (typeof body.code === 'string') return { flavour: 'engine', why: 'error bodies carry a code' };
    // Only the probe's error is conclusive: a call both servers answer with their own error body.
    return probing ? { flavour: 'nuvla', why: 'error bodies carry no code' } : undefined;
  }
  if (body['resource-type'] === 'job' && typeof body.id === 'string') {
    return typeof body.revision === 'number'
      ? { flavour: 'engine', why: 'job documents carry a revision' }
      : { flavour: 'nuvla', why: 'job documents carry no revision' };
  }
  if (typeof body['resource-id'] === 'string' && typeof body.created === 'boolean') {
    return { flavour: 'engine', why: 'create answers say whether the job was created' };
  }
  return undefined;
}
