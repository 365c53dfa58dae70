/**
 * How an error message about a payload, a definition or a job spec names the value it refuses. Shared by
 * the contracts here and by the modules written against them (the bundled actions use it for their payloads).
 */

/** A value as an error message about a payload or a definition names it: `"text"`, `3`, `null`, `an array`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  return `a value of type ${typeof value}`;
}
