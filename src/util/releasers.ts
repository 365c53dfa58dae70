/**
 * How a daemon lets go of what it holds: each resource registers its closer the moment it is open,
 * and `releaseAll()` runs the closers last-opened-first, every one of them even when one fails, so a
 * session is closed after the queue on it and a failing closer never keeps a port or a file open. A
 * start that fails half-way releases what it had opened with the same call.
 */
import { toError } from './errors.js';

export type Release = () => unknown;

/** Thrown by `releaseAll()` when closers failed; `errors` holds each failure, named after its resource. */
export class ReleaseError extends AggregateError {
  override readonly name = 'ReleaseError';
  readonly code = 'release-failed';
}

export class Releasers {
  readonly #stack: { readonly what: string; readonly release: Release }[] = [];
  #released: Promise<void> | undefined;

  /** Registers the closer of a resource that is now open. */
  add(what: string, release: Release): void {
    if (this.#released !== undefined) throw new Error(`cannot hold ${what}: its owner is already released`);
    this.#stack.push({ what, release });
  }

  /** Opens a resource and registers its closer in one step, so nothing opened goes unregistered. */
  async open<T>(what: string, opening: Promise<T> | (() => Promise<T>), close: (resource: T) => unknown): Promise<T> {
    const resource = await (typeof opening === 'function' ? opening() : opening);
    this.add(what, () => close(resource));
    return resource;
  }

  /** Runs every closer, last first. Idempotent: a second call gets the first call's promise. */
  releaseAll(): Promise<void> {
    this.#released ??= this.#releaseAll();
    return this.#released;
  }

  async #releaseAll(): Promise<void> {
    const failures: Error[] = [];
    for (let entry = this.#stack.pop(); entry !== undefined; entry = this.#stack.pop()) {
      try {
        await entry.release();
      } catch (error) {
        const cause = toError(error);
        failures.push(new Error(`${entry.what}: ${cause.message}`, { cause }));
      }
    }
    if (failures.length > 0)
      throw new ReleaseError(failures, `released with problems: ${failures.map((failure) => failure.message).join('; ')}`);
  }
}

/**
 * Runs a start-up that opens resources into `releasers`; if it fails, what it had opened is released
 * (last first) and the start's own error is rethrown unchanged: it says why the start failed, and a
 * failure to release goes to `onReleaseFailure` (the daemon's log).
 */
export async function startOrRelease<T>(
  releasers: Releasers,
  start: (releasers: Releasers) => Promise<T>,
  onReleaseFailure: (error: Error) => void = () => undefined,
): Promise<T> {
  try {
    return await start(releasers);
  } catch (error) {
    await releasers.releaseAll().catch((releaseError: unknown) => {
      onReleaseFailure(toError(releaseError));
    });
    throw error;
  }
}
