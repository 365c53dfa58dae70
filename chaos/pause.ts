import { delay } from '../src/util/delay.js';

/**
 * Waits `ms` as part of a chaos run's work (it keeps the process alive); false when `signal` cut it
 * short, so loops read `while (await pause(...))`.
 */
export async function pause(ms: number, signal: AbortSignal): Promise<boolean> {
  try {
    await delay(ms, signal, { keepProcessAlive: true });
    return true;
  } catch {
    return false;
  }
}
