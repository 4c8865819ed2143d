// The baseline for the accept benchmark: a bare Fastify 5 server with the same route as Herald's
// POST /v1/notifications. It parses the JSON body with Fastify's default parser (as Herald does),
// does no auth, validation or storage, and answers 202 with a JSON body shaped and sized like
// Herald's answer (one delivery). Run as its own process by bench/run.ts.
//
// Prints one JSON line {"port": n} on stdout once listening. Listens on 127.0.0.1 only.
// Environment: PORT (default 0 = any free port).

import Fastify from 'fastify';

const app = Fastify({ logger: false, bodyLimit: 262_144 });

let seq = 0;
// Same length as Herald's ids: a 3-letter prefix, "_" and a 26-character ULID.
const id = (prefix: string) => `${prefix}_${(++seq).toString(32).toUpperCase().padStart(26, '0')}`;

app.post('/v1/notifications', async (request, reply) => {
  const body = request.body as { to?: unknown };
  const recipient = typeof body?.to === 'string' ? body.to : 'unknown';
  return reply.code(202).send({
    id: id('ntf'),
    status: 'accepted',
    deliveries: [{ id: id('dlv'), recipient, channel: 'webhook', status: 'pending' }],
  });
});

const address = await app.listen({ host: '127.0.0.1', port: Number(process.env.PORT ?? 0) });
process.stdout.write(JSON.stringify({ port: Number(new URL(address).port) }) + '\n');

const stop = () => void app.close().then(() => process.exit(0));
process.once('SIGTERM', stop);
process.once('SIGINT', stop);
