import { defineDistribution } from 'zk-job-engine';

/** Targets per tick; the checker counts the jobs of each (tick, target): more than one is a duplicate. */
const TARGETS = 3;

/**
 * The chaos suite's scheduled work: every 3 s, one short job per target. The tick is in the payload,
 * so that the checker can find two jobs made for one tick, and a new leader makes up a missed tick
 * (the case where two leaders could both make one).
 */
export default defineDistribution({
  name: 'chaos_tick',
  schedule: { everySeconds: 3 },
  catchUpSeconds: 6,
  jobs: ({ tick }) =>
    Array.from({ length: TARGETS }, (_, index) => ({
      action: 'chaos_work',
      target: `chaos-tick/${String(index)}`,
      payload: { outcome: 'succeed', ms: 150, tick: tick.toISOString() },
    })),
});
