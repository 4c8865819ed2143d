// GET /metrics: Prometheus text format. Queue depth is sampled from the store at scrape time.

import { CLAIMABLE } from '../domain/delivery-status.ts';
import type { Services } from '../services.ts';
import type { Api } from './server.ts';

export function metricsRoutes(app: Api, s: Services): void {
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    const rows = await s.store.db
      .selectFrom('deliveries')
      .select(['channel', 'status', (eb) => eb.fn.countAll<number>().as('n')])
      .where('status', 'in', [...CLAIMABLE, 'exhausted'])
      .groupBy(['channel', 'status'])
      .execute();
    s.metrics.queueDepth.reset();
    for (const r of rows) s.metrics.queueDepth.set({ channel: r.channel, status: r.status }, Number(r.n));
    return reply.type(s.metrics.registry.contentType).send(await s.metrics.registry.metrics());
  });
}
