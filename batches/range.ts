/**
 * `range`: tasks 0 .. count-1 (args `{"count": N, "payload"?: {...}}`), each with the payload
 * `{...payload, "i": <index>}`. The smallest useful generator: load tests, benchmarks, and an example
 * of resuming from a marker (here the last index given).
 */
import { defineBatch } from 'zk-job-engine';

function countOf(args: Readonly<Record<string, unknown>>): number {
  const { count } = args;
  if (typeof count !== 'number' || !Number.isSafeInteger(count) || count < 0) {
    throw new Error(`range needs args {"count": N} with N a whole number, got ${JSON.stringify(count)}`);
  }
  return count;
}

export default defineBatch({
  name: 'range',
  description: 'tasks 0 .. count-1, payload {...payload, i}',
  estimate: (args) => countOf(args),
  *tasks(args, fromMarker) {
    const count = countOf(args);
    const extra = typeof args.payload === 'object' && args.payload !== null ? args.payload : {};
    for (let i = fromMarker === undefined ? 0 : Number(fromMarker) + 1; i < count; i += 1) {
      yield { spec: { payload: { ...extra, i } }, marker: String(i) };
    }
  },
});
