/**
 * `dummy_test_action`: Nuvla's and SlipStream's smoke-test action (docs/contracts.md §6, distributed every 15 s
 * there). It sleeps a few seconds and reports progress on the way, so a whole engine (distributor,
 * queue, executor, API) can be watched working without any action doing real work.
 *
 * Payload (optional JSON): `{ "seconds": number }`, 0 to 3600, fractions allowed, 5 when absent.
 */
import { defineAction, describeValue } from 'zk-job-engine/action';

interface DummyPayload {
  readonly seconds: number;
}

const DEFAULT_SECONDS = 5;
const MAX_SECONDS = 3600;
// At most this long between two progress reports (and the longest sleep of one step); short sleeps take
// about twenty steps instead, so that progress visibly moves even over a fraction of a second.
const MAX_STEP_MS = 1000;
const STEPS = 20;

function parseDummyPayload(raw: unknown): DummyPayload {
  if (raw === undefined) return { seconds: DEFAULT_SECONDS };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`payload must be an object such as {"seconds": ${DEFAULT_SECONDS}}, got ${describeValue(raw)}`);
  }
  const fields = raw as Record<string, unknown>;
  // A misspelt "second" would otherwise silently sleep the default.
  const unknown = Object.keys(fields).filter((key) => key !== 'seconds');
  if (unknown.length > 0) throw new Error(`unknown payload field(s) ${unknown.join(', ')}; expected "seconds"`);
  const { seconds } = fields;
  if (seconds === undefined) return { seconds: DEFAULT_SECONDS };
  if (typeof seconds !== 'number' || !Number.isFinite(seconds) || seconds < 0 || seconds > MAX_SECONDS) {
    throw new Error(`"seconds" must be a number from 0 to ${MAX_SECONDS}, got ${describeValue(seconds)}`);
  }
  return { seconds };
}

/**
 * Resolves after `ms`, or as soon as the signal aborts (resolving, not rejecting: the caller then calls
 * `signal.throwIfAborted()`, which rejects with the signal's own reason rather than a wrapping AbortError).
 */
function pause(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      signal.removeEventListener('abort', done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal.addEventListener('abort', done, { once: true });
  });
}

export default defineAction({
  name: 'dummy_test_action',
  // Room for the longest sleep a payload may ask for; a job's own timeout can still cut it shorter.
  timeoutSeconds: MAX_SECONDS + 60,
  description: 'sleeps a few seconds (payload {"seconds": n}, default 5), reporting progress',
  parsePayload: parseDummyPayload,
  async run(context) {
    const { payload, signal, log } = context;
    const totalMs = payload.seconds * 1000;
    const stepMs = Math.min(MAX_STEP_MS, Math.max(1, totalMs / STEPS));
    log.info('sleeping', { seconds: payload.seconds });
    context.progress(0, `sleeping ${payload.seconds} s`);
    // Steps are measured against a fixed end, not added up, so timer lateness does not accumulate.
    const start = Date.now();
    const end = start + totalMs;
    for (let now = start; now < end; now = Date.now()) {
      signal.throwIfAborted();
      await pause(Math.min(stepMs, end - now), signal);
      signal.throwIfAborted();
      const elapsed = Math.min(Date.now() - start, totalMs);
      context.progress(Math.floor((100 * elapsed) / totalMs), `slept ${(elapsed / 1000).toFixed(1)} of ${payload.seconds} s`);
    }
    signal.throwIfAborted();
    return { message: `slept ${payload.seconds} s` };
  },
});
