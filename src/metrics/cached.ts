/**
 * A value read on scrape that is expensive to read (a listing of 100,000 queue entries, a count over
 * the job table): read at most once per `ttlMs`, and by one caller at a time, so a storm of scrapes
 * (several Prometheus servers, a curl loop) costs ZooKeeper or the database no more than one.
 */
export interface CachedRead<T> {
  /** The cached value while fresh, else the read in flight, else a new read. */
  get(): Promise<T>;
}

export function cachedRead<T>(read: () => Promise<T>, ttlMs: number, now: () => number = Date.now): CachedRead<T> {
  let fresh: { value: T; until: number } | undefined;
  let inFlight: Promise<T> | undefined;
  return {
    get() {
      if (fresh !== undefined && now() < fresh.until) return Promise.resolve(fresh.value);
      inFlight ??= read().then(
        (value) => {
          fresh = { value, until: now() + ttlMs };
          inFlight = undefined;
          return value;
        },
        (error: unknown) => {
          // A failure is not cached: the next scrape asks again (still one at a time).
          inFlight = undefined;
          throw error;
        },
      );
      return inFlight;
    },
  };
}
