import { appendFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { defineAction } from 'zk-job-engine/action';

/** What a chaos job is asked to do; the checker reads the same payload to know what to expect. */
interface ChaosWork {
  readonly outcome: 'succeed' | 'fail' | 'timeout' | 'hang';
  readonly ms: number;
}

const OUTCOMES: ReadonlySet<string> = new Set(['succeed', 'fail', 'timeout', 'hang']);
/** Chosen so that a failure the action asked for cannot be mistaken for one of the engine's codes. */
const ASKED_FAILURE_CODE = 3;
const BEAT_MS = 20;

function parseChaosWork(raw: unknown): ChaosWork {
  if (typeof raw !== 'object' || raw === null) throw new Error('payload must be {"outcome": ..., "ms": number}');
  const { outcome, ms } = raw as { outcome?: unknown; ms?: unknown };
  if (typeof outcome !== 'string' || !OUTCOMES.has(outcome)) throw new Error(`outcome must be one of ${[...OUTCOMES].join(', ')}`);
  if (typeof ms !== 'number' || !(ms >= 0)) throw new Error('ms must be a number >= 0');
  return { outcome: outcome as ChaosWork['outcome'], ms };
}

function sideEffectLog(): string {
  const file = process.env.CHAOS_SIDE_EFFECT_LOG;
  if (file === undefined || file === '') throw new Error('CHAOS_SIDE_EFFECT_LOG is not set: the chaos action has nowhere to log');
  return file;
}

/**
 * The chaos suite's action: it stands for work with effects outside ZooKeeper and the job API. Every
 * 20 ms it appends "<job> <run> <pid> start|beat|end <epoch ms>" to the side-effect log, and only
 * while its signal says the run is still its own, as a careful action does: the checker then finds
 * any moment when two runs of one job both had effects.
 */
export default defineAction({
  name: 'chaos_work',
  timeoutSeconds: 30,
  parsePayload: parseChaosWork,
  async run({ job, payload, signal }) {
    const file = sideEffectLog();
    const run = randomUUID();
    const note = (what: string): void => {
      signal.throwIfAborted();
      appendFileSync(file, `${job.id} ${run} ${String(process.pid)} ${what} ${String(Date.now())}\n`);
    };
    note('start');
    const started = Date.now();
    if (payload.outcome === 'hang') {
      // Never yields: only the executor's hard kill of the thread ends it.
      while (Date.now() - started < payload.ms) Math.sqrt(Math.random());
      return { message: 'the hang ended by itself' };
    }
    while (Date.now() - started < payload.ms) {
      await sleep(BEAT_MS, undefined, { signal });
      note('beat');
    }
    note('end');
    if (payload.outcome === 'fail') return { returnCode: ASKED_FAILURE_CODE, message: 'failing, as the chaos workload asked' };
    return { message: `worked ${String(payload.ms)} ms` };
  },
});
