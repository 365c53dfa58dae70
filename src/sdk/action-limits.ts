/**
 * The checks of an action's fleet-wide limits, `maxConcurrent` and `ratePerSecond`, as `defineAction`
 * makes them: the same rules the operator's overrides are held to (recipes/limit-layout.ts).
 */
import { maxConcurrentProblem, ratePerSecondProblem } from '../recipes/limit-layout.js';

/** Every problem of the limit fields of a spec; none when both are absent or valid. */
export function limitProblems(fields: Readonly<Record<string, unknown>>): string[] {
  const problems: string[] = [];
  const { maxConcurrent, ratePerSecond } = fields;
  if (maxConcurrent !== undefined) {
    const problem = maxConcurrentProblem(maxConcurrent);
    if (problem !== undefined) problems.push(`${problem} (when given)`);
  }
  if (ratePerSecond !== undefined) {
    const problem = ratePerSecondProblem(ratePerSecond);
    if (problem !== undefined) problems.push(`${problem} (when given)`);
  }
  return problems;
}
