/**
 * What the throughput benchmarks share: reading a completion count with the moment it held, waiting
 * for the completion rate to settle before a measuring window, and percentiles.
 */
import { delay } from '../src/util/delay.js';

/** A count of completed jobs, stamped with the middle of the request that read it (epoch ms). */
export interface CountSample {
  readonly count: number;
  readonly at: number;
}

/** Epoch milliseconds with sub-millisecond resolution, on the clock actions report their start on. */
export const now = (): number => performance.timeOrigin + performance.now();

export async function sampleCount(read: () => Promise<number>): Promise<CountSample> {
  const before = now();
  const count = await read();
  return { count, at: (before + now()) / 2 };
}

export interface RampUpTimings {
  /** At least this long at full rate. */
  readonly minMs: number;
  /** Never longer than this: the rate is then reported as unsteady. */
  readonly maxMs: number;
  /** Steady: the last second's rate is within this fraction of the second before. */
  readonly steady: number;
}

export const RAMP_UP: RampUpTimings = { minMs: 2000, maxMs: 30_000, steady: 0.15 };

/** Returns when the completion rate has settled; how long that took, and whether it did. */
export async function rampUp(
  sample: () => Promise<CountSample>,
  signal: AbortSignal,
  timings: RampUpTimings = RAMP_UP,
): Promise<{ ms: number; steady: boolean }> {
  const started = performance.now();
  const samples: CountSample[] = [];
  const rate = (a: CountSample, b: CountSample): number => ((b.count - a.count) * 1000) / (b.at - a.at);
  for (;;) {
    samples.push(await sample());
    const elapsed = performance.now() - started;
    if (elapsed >= timings.maxMs) return { ms: elapsed, steady: false };
    // Samples are 500 ms apart: the last three seconds' worth.
    const [a, b, c] = [samples.at(-5), samples.at(-3), samples.at(-1)];
    if (elapsed >= timings.minMs && a !== undefined && b !== undefined && c !== undefined) {
      const previous = rate(a, b);
      if (previous > 0 && Math.abs(rate(b, c) - previous) <= timings.steady * previous) return { ms: elapsed, steady: true };
    }
    await delay(500, signal);
  }
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] ?? Number.NaN;
}

export const rampNote = (ramp: { ms: number; steady: boolean }): string =>
  `${(ramp.ms / 1000).toFixed(1)} s${ramp.steady ? '' : ', rate still unsteady'}`;

/** Rounded for reports: 2 decimals. */
export const round2 = (value: number): number => Math.round(value * 100) / 100;
