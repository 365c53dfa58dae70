/**
 * A daemon's own metrics registry, with Node's process metrics (CPU, memory, event-loop lag, GC,
 * handles) under their usual names so stock dashboards find them. Each daemon makes one in its entry
 * point and hands it down: nothing registers in prom-client's global registry, so two daemons in one
 * process (tests) never mix their numbers.
 */
import { Registry, collectDefaultMetrics } from 'prom-client';

/** Every metric of this engine starts with it. */
export const METRIC_PREFIX = 'zkje_';

export function createDaemonRegistry(): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return registry;
}
