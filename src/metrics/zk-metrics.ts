/**
 * The ZooKeeper session as metrics, for every daemon that holds one: its state (read from the client
 * at each scrape) and counters of the transitions an operator alerts on. The state is one-hot, one
 * series per state with exactly one at 1, so `zkje_zookeeper_session_state{state="CONNECTED"} == 0`
 * is the alert and no numeric code has to be remembered.
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import type { ClientState, ZkClient } from '../zk/client.js';
import { METRIC_PREFIX } from './registry.js';

const STATES: readonly ClientState[] = ['CONNECTING', 'CONNECTED', 'SUSPENDED', 'LOST', 'CLOSED'];

export class ZooKeeperMetrics {
  #client: ZkClient | undefined;
  #unsubscribe: (() => void) | undefined;
  readonly #reconnects: Counter;
  readonly #lost: Counter;

  constructor(registry: Registry) {
    const state = new Gauge({
      name: `${METRIC_PREFIX}zookeeper_session_state`,
      help: 'The ZooKeeper client state, one-hot: 1 for the current state (CONNECTING, CONNECTED, SUSPENDED, LOST, CLOSED), 0 for the others',
      labelNames: ['state'],
      registers: [registry],
      collect: () => {
        const current = this.#client?.state;
        // No series before the daemon has a client: "not known yet" rather than a made-up state.
        if (current === undefined) return;
        for (const name of STATES) state.set({ state: name }, name === current ? 1 : 0);
      },
    });
    this.#reconnects = new Counter({
      name: `${METRIC_PREFIX}zookeeper_reconnects_total`,
      help: 'Connections regained with the same session after the connection to ZooKeeper dropped',
      registers: [registry],
    });
    this.#lost = new Counter({
      name: `${METRIC_PREFIX}zookeeper_sessions_lost_total`,
      help: 'ZooKeeper sessions lost (expired, or cut off for a whole session timeout); a new session follows',
      registers: [registry],
    });
  }

  /** Follows the daemon's client from now on (it is connected: the start does not count as a reconnect). */
  attach(client: ZkClient): void {
    this.#unsubscribe?.();
    this.#client = client;
    this.#unsubscribe = client.onStateChange((change) => {
      if (change.state === 'CONNECTED' && change.reconnected) this.#reconnects.inc();
      if (change.state === 'LOST') this.#lost.inc();
    });
  }

  /** Whether the client is connected now, as a readiness check. */
  readiness(): string | undefined {
    const state = this.#client?.state;
    if (state === undefined) return 'not connected yet';
    return state === 'CONNECTED' ? undefined : `ZooKeeper ${state.toLowerCase()}`;
  }

  detach(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
  }
}
