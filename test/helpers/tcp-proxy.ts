// A TCP proxy on 127.0.0.1 in front of a server (PostgreSQL, Redis), to take that server away
// from one client without touching the server itself, which other tests share.
//
//   cut()      destroys every proxied connection and refuses new ones (the listener closes, so a
//              connect gets ECONNREFUSED), as a server that went down would.
//   blackhole() stops forwarding: existing connections stay open but nothing passes either way,
//              and new connections are accepted and then ignored, as behind a dead network path.
//   restore()  forwards again: after cut(), listens again on the same port; after blackhole(),
//              destroys the connections it held (their protocol state is unknown) and proxies
//              new ones.

import { connect, createServer, type Server, type Socket } from 'node:net';

export interface TcpProxy {
  readonly port: number;
  /** Connections proxied since start (each client connection counts once). */
  readonly accepted: number;
  cut(): Promise<void>;
  blackhole(): void;
  restore(): Promise<void>;
  close(): Promise<void>;
}

export async function startTcpProxy(target: { host: string; port: number }): Promise<TcpProxy> {
  let mode: 'open' | 'cut' | 'blackhole' = 'open';
  let accepted = 0;
  const pairs = new Set<[Socket, Socket | undefined]>();

  const onConnection = (client: Socket) => {
    client.on('error', () => undefined);
    if (mode !== 'open') {
      // blackhole: held, never answered, destroyed by restore() or close()
      const pair: [Socket, Socket | undefined] = [client, undefined];
      pairs.add(pair);
      client.once('close', () => pairs.delete(pair));
      return;
    }
    accepted++;
    const upstream = connect(target.port, target.host);
    upstream.on('error', () => undefined);
    const pair: [Socket, Socket | undefined] = [client, upstream];
    pairs.add(pair);
    const forward = (from: Socket, to: Socket) => {
      from.on('data', (chunk: Buffer) => {
        if (mode === 'open' && !to.destroyed) to.write(chunk);
      });
    };
    forward(client, upstream);
    forward(upstream, client);
    const end = () => {
      pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.once('close', end);
    upstream.once('close', end);
  };

  let server: Server = createServer(onConnection);
  const listen = (port: number) =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  const closeListener = () => new Promise<void>((resolve) => server.close(() => resolve()));
  const destroyAll = () => {
    for (const [a, b] of pairs) {
      a.destroy();
      b?.destroy();
    }
    pairs.clear();
  };

  await listen(0);
  const port = (server.address() as { port: number }).port;

  return {
    port,
    get accepted() {
      return accepted;
    },
    async cut() {
      if (mode === 'cut') return;
      mode = 'cut';
      const closed = closeListener();
      destroyAll();
      await closed;
    },
    blackhole() {
      if (mode !== 'open') throw new Error(`blackhole() while ${mode}`);
      mode = 'blackhole';
    },
    async restore() {
      if (mode === 'cut') {
        server = createServer(onConnection);
        await listen(port); // EADDRINUSE here means another process took the port meanwhile
      } else if (mode === 'blackhole') {
        destroyAll();
      }
      mode = 'open';
    },
    async close() {
      const wasListening = mode !== 'cut';
      mode = 'cut';
      destroyAll();
      if (wasListening) await closeListener();
    },
  };
}
