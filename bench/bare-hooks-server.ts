// The baseline for the ingest benchmark (bench/ingest.ts): a bare Fastify 5 server with a route
// like Herald's POST /hooks/{path}, doing the same HTTP work and nothing else: it takes the body
// as raw bytes (Herald must, to verify a signature on them), parses it as JSON, and answers 202
// with a JSON body shaped and sized like Herald's ({id, received_at}). No source lookup, no
// signature check, no storage.
//
// Prints one JSON line {"port": n} on stdout once listening. Listens on 127.0.0.1 only.
// Environment: PORT (default 0 = any free port).

import Fastify from 'fastify';

const app = Fastify({ logger: false, bodyLimit: 1_048_576 });
app.removeAllContentTypeParsers();
app.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));

let seq = 0;
// Same length as Herald's event ids: "evt_" and a 26-character ULID.
const id = () => `evt_${(++seq).toString(32).toUpperCase().padStart(26, '0')}`;

app.post('/hooks/*', async (request, reply) => {
  const raw = request.body as Buffer;
  JSON.parse(raw.toString('utf8'));
  return reply.code(202).send({ id: id(), received_at: new Date().toISOString() });
});

const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
process.stdout.write(JSON.stringify({ port: Number(new URL(address).port) }) + '\n');

const stop = () => void app.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
