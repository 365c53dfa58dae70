/**
 * `cleanup_jobs`: deletes final jobs (SUCCESS, FAILED, CANCELED) that ended more than a given age ago,
 * 7 days by default, as the daily distribution of the same name in Nuvla and SlipStream (docs/contracts.md §6).
 *
 * Payload (optional JSON): `{ "olderThanDays": number }`, a positive number of days, fractions allowed
 * (0.5 is twelve hours), at most 36500.
 *
 * The age is measured on `updated`: the server refuses every edit of a final job, so a final job's last
 * update is the moment it ended. The cut-off is sent as an absolute ISO-8601 time computed here rather
 * than as date math (`now-7d`), because date math has whole units only and a fractional age would have
 * to be rounded. The API key of the executor needs to delete final jobs (role maintenance, operator or admin) for this action.
 */
import { ApiError, defineAction, describeValue, toError, whenAborted } from 'zk-job-engine/action';

interface CleanupPayload {
  readonly olderThanDays: number;
}

const DEFAULT_DAYS = 7;
// A hundred years: beyond that the cut-off leaves the range of a Date, and no job is that old anyway.
const MAX_DAYS = 36_500;
const DAY_MS = 86_400_000;
// Listed explicitly, never derived from "not QUEUED or RUNNING": a state added later must not become
// deletable by accident.
const FINAL_STATES = ['SUCCESS', 'FAILED', 'CANCELED'] as const;

function parseCleanupPayload(raw: unknown): CleanupPayload {
  if (raw === undefined) return { olderThanDays: DEFAULT_DAYS };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new Error(`payload must be an object such as {"olderThanDays": ${DEFAULT_DAYS}}, got ${describeValue(raw)}`);
  }
  const fields = raw as Record<string, unknown>;
  // A misspelt field would otherwise silently fall back to the default age: deleting more than asked.
  const unknown = Object.keys(fields).filter((key) => key !== 'olderThanDays');
  if (unknown.length > 0) throw new Error(`unknown payload field(s) ${unknown.join(', ')}; expected "olderThanDays"`);
  const { olderThanDays } = fields;
  if (olderThanDays === undefined) return { olderThanDays: DEFAULT_DAYS };
  if (typeof olderThanDays !== 'number' || !Number.isFinite(olderThanDays) || olderThanDays <= 0 || olderThanDays > MAX_DAYS) {
    throw new Error(`"olderThanDays" must be a number of days above 0 and at most ${MAX_DAYS}, got ${describeValue(olderThanDays)}`);
  }
  return { olderThanDays };
}

/** A CIMI string literal: the filter lexer reads a backslash as "take the next character literally". */
function quoted(text: string): string {
  return `'${text.replace(/[\\']/g, (char) => `\\${char}`)}'`;
}

export default defineAction({
  name: 'cleanup_jobs',
  timeoutSeconds: 600,
  description: `deletes final jobs that ended more than olderThanDays (default ${DEFAULT_DAYS}) days ago`,
  parsePayload: parseCleanupPayload,
  async run(context) {
    const { job, payload, signal, log, api } = context;
    const { olderThanDays } = payload;
    const cutoff = new Date(Date.now() - olderThanDays * DAY_MS).toISOString();
    // The job running this is RUNNING, so the state condition alone spares it; naming it too keeps that
    // true even if an executor were ever to run an action on a job recorded in another state.
    const filter = `state=[${FINAL_STATES.map(quoted).join(',')}] and updated<${quoted(cutoff)} and id!=${quoted(job.id)}`;
    log.info('deleting final jobs', { olderThanDays, cutoff, filter });
    context.progress(0, `deleting final jobs last updated before ${cutoff}`);
    signal.throwIfAborted();

    // The client takes no signal: a bulk delete is one request, bounded by the client's own timeout. On
    // abort the action gives up waiting at once; the server may still finish the delete, which is harmless.
    const abort = whenAborted(signal);
    let deleted: number | undefined;
    try {
      deleted = await Promise.race([api.deleteMatching(filter), abort.promise]);
    } catch (error) {
      signal.throwIfAborted();
      if (error instanceof ApiError && error.code === 'forbidden') {
        throw new Error(
          `cleanup_jobs needs an API key that may delete final jobs (role maintenance, operator or admin): ${error.message}`,
          { cause: error },
        );
      }
      throw toError(error);
    } finally {
      abort.dispose();
    }
    signal.throwIfAborted();
    const count = deleted ?? 0;
    const age = `${olderThanDays} day${olderThanDays === 1 ? '' : 's'}`;
    log.info('deleted final jobs', { deleted: count, olderThanDays, cutoff });
    return { message: `deleted ${count} final job${count === 1 ? '' : 's'} older than ${age} (last updated before ${cutoff})` };
  },
});
