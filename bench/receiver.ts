// Benchmark webhook receiver: a minimal node:http server, run as its own process by bench/run.ts.
// It answers every delivery with 200 "ok" and counts them; it does not verify signatures (the test
// suite's receiver does that) because here it must cost as little as possible.
//
//   POST|PUT anything except /_*   a delivery: read the body, count it, answer 200
//   GET  /_count                   {"count", "bytes", "firstAt", "lastAt"}; times are
//                                  performance.timeOrigin + performance.now() (ms, sub-ms)
//   POST /_reset                   zero the counters
//
// Prints one JSON line {"port": n} on stdout once listening. Listens on 127.0.0.1 only.
// Environment: PORT (default 0 = any free port).

import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

let count = 0;
let bytes = 0;
let firstAt = 0;
let lastAt = 0;
const now = () => performance.timeOrigin + performance.now();
const OK = Buffer.from('ok');

const server = createServer((req, res) => {
  const url = req.url ?? '/';
  if (url.startsWith('/_')) {
    req.resume();
    req.on('end', () => {
      if (url === '/_count') {
        const body = JSON.stringify({ count, bytes, firstAt, lastAt });
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
        res.end(body);
      } else if (url === '/_reset' && req.method === 'POST') {
        count = bytes = firstAt = lastAt = 0;
        res.writeHead(204).end();
      } else {
        res.writeHead(404).end();
      }
    });
    return;
  }
  req.on('data', (c: Buffer) => (bytes += c.length));
  req.on('end', () => {
    count++;
    lastAt = now();
    if (count === 1) firstAt = lastAt;
    res.writeHead(200, { 'content-type': 'text/plain', 'content-length': 2 });
    res.end(OK);
  });
});
// Keep-alive connections from Herald's connection pool are reused for the whole run.
server.keepAliveTimeout = 60_000;
server.headersTimeout = 65_000;
server.requestTimeout = 0;

server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: (server.address() as AddressInfo).port }) + '\n');
});

const stop = () => {
  server.closeAllConnections();
  server.close(() => process.exit(0));
};
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
