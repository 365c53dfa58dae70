/**
 * A TCP proxy that can cut one process off from a server, as a network partition does: while cut,
 * open connections stay open but carry nothing either way (the peer notices only through its own
 * timeouts, as with a dropped link), and new connections are accepted and then ignored. Healing
 * closes the dead connections, so the client reconnects through the proxy at once.
 */
import { once } from 'node:events';
import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  /** `127.0.0.1:<port>` */
  readonly address: string;
  readonly port: number;
  readonly isCut: boolean;
  cut(): void;
  heal(): void;
  close(): Promise<void>;
}

interface Pair {
  readonly client: Socket;
  readonly upstream: Socket | undefined;
  /** Made while cut or cut since: never carries anything again. */
  dead: boolean;
}

export async function startTcpProxy(target: { readonly host: string; readonly port: number }, listenPort = 0): Promise<TcpProxy> {
  const pairs = new Set<Pair>();
  let cut = false;

  const server: Server = createServer((client) => {
    client.on('error', () => undefined);
    if (cut) {
      const pair: Pair = { client, upstream: undefined, dead: true };
      pairs.add(pair);
      client.on('close', () => pairs.delete(pair));
      return;
    }
    const upstream = connect(target.port, target.host);
    const pair: Pair = { client, upstream, dead: false };
    pairs.add(pair);
    upstream.on('error', () => client.destroy());
    upstream.on('close', () => client.destroy());
    client.on('close', () => {
      upstream.destroy();
      pairs.delete(pair);
    });
    client.on('data', (chunk: Buffer) => {
      if (!pair.dead) upstream.write(chunk);
    });
    upstream.on('data', (chunk: Buffer) => {
      if (!pair.dead) client.write(chunk);
    });
  });
  server.listen(listenPort, '127.0.0.1');
  await once(server, 'listening');
  const bound = server.address();
  if (bound === null || typeof bound === 'string') throw new Error('the proxy has no TCP address');
  const port = bound.port;

  return {
    address: `127.0.0.1:${String(port)}`,
    port,
    get isCut() {
      return cut;
    },
    cut: () => {
      cut = true;
      for (const pair of pairs) pair.dead = true;
    },
    heal: () => {
      cut = false;
      for (const pair of pairs) {
        if (!pair.dead) continue;
        pair.client.destroy();
        pair.upstream?.destroy();
      }
    },
    close: async () => {
      for (const pair of pairs) {
        pair.client.destroy();
        pair.upstream?.destroy();
      }
      server.close();
      await once(server, 'close');
    },
  };
}
