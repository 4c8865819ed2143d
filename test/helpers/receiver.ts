// A local webhook receiver that records every request and verifies Standard Webhooks signatures
// with the `standardwebhooks` package, an implementation independent of Herald's.

import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Webhook } from 'standardwebhooks';

export interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  /** The body decoded as UTF-8; `raw` holds its bytes. */
  body: string;
  raw: Buffer;
  at: number;
}

export type Responder = (req: Received, count: number) => { status: number; headers?: Record<string, string>; body?: string; delayMs?: number };

export interface Receiver {
  url: string;
  received: Received[];
  /** How the receiver answers; default 200. `count` is how many requests this path has had. */
  respond: Responder;
  /** Verifies a received request's signature with `secret`; returns the parsed payload or throws. */
  verify(r: Received, secret: string): any;
  close(): Promise<void>;
}

export async function startReceiver(respond: Responder = () => ({ status: 200 })): Promise<Receiver> {
  const received: Received[] = [];
  const counts = new Map<string, number>();
  const self: Receiver = {
    url: '',
    received,
    respond,
    verify(r, secret) {
      return new Webhook(secret).verify(r.body, {
        'webhook-id': String(r.headers['webhook-id']),
        'webhook-timestamp': String(r.headers['webhook-timestamp']),
        'webhook-signature': String(r.headers['webhook-signature']),
      });
    },
    close: () => new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    }),
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const r: Received = { path: req.url ?? '/', headers: req.headers, body: raw.toString('utf8'), raw, at: Date.now() };
      received.push(r);
      const n = (counts.get(r.path) ?? 0) + 1;
      counts.set(r.path, n);
      const answer = self.respond(r, n);
      const send = () => {
        res.writeHead(answer.status, answer.headers ?? {});
        res.end(answer.body ?? '');
      };
      if (answer.delayMs) setTimeout(send, answer.delayMs);
      else send();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  self.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return self;
}

/** A webhook endpoint that holds every request until released, then answers 200 at once. */
export async function startGate(): Promise<{ url: string; arrived: string[]; release(): void; close(): Promise<void> }> {
  const held: ServerResponse[] = [];
  const arrived: string[] = [];
  let open = false;
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    req.resume();
    req.on('end', () => {
      arrived.push(String(req.headers['webhook-id']));
      if (open) res.end();
      else held.push(res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    arrived,
    release() {
      open = true;
      for (const res of held.splice(0)) if (!res.destroyed) res.end();
    },
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
