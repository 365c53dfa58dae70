/**
 * A seeded pseudo-random source (mulberry32), so that a chaos run's choices (which fault, when, on
 * whom, which jobs) can be replayed from its seed. Each consumer forks its own stream, so one part
 * drawing more or fewer numbers (e.g. because a fault took longer) does not shift another's choices.
 */
export class Random {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A new, independent stream derived from this seed and a label. */
  fork(label: string): Random {
    let hash = this.#state ^ 0x9e3779b9;
    for (let i = 0; i < label.length; i++) hash = Math.imul(hash ^ label.charCodeAt(i), 0x85ebca6b) >>> 0;
    return new Random(hash);
  }

  /** In [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** In [min, max). */
  between(min: number, max: number): number {
    return min + (max - min) * this.next();
  }

  /** An integer in [min, max]. */
  integer(min: number, max: number): number {
    return Math.floor(this.between(min, max + 1));
  }

  chance(probability: number): boolean {
    return this.next() < probability;
  }

  pick<T>(items: readonly T[]): T {
    const item = items[Math.floor(this.next() * items.length)];
    if (item === undefined) throw new Error('pick from an empty list');
    return item;
  }

  /** One of `choices`, each as likely as its weight. */
  weighted<T>(choices: readonly { readonly value: T; readonly weight: number }[]): T {
    const total = choices.reduce((sum, choice) => sum + choice.weight, 0);
    let at = this.next() * total;
    for (const choice of choices) {
      at -= choice.weight;
      if (at < 0) return choice.value;
    }
    const last = choices[choices.length - 1];
    if (last === undefined) throw new Error('weighted pick from an empty list');
    return last.value;
  }
}

/** A seed for a run that was given none. */
export function newSeed(): number {
  return Math.floor(Math.random() * 0x7fffffff);
}
