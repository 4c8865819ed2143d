// GET /metrics: Prometheus text format. Queue depth (and the broker's stored events and consumer lag) is sampled from the store at scrape time;
// when the store cannot answer, the scrape still succeeds without it (herald_store_up 0), so
// process metrics stay visible during a database outage.

import type { Services } from '../services.ts';
import type { Api, RouteModule } from './api.ts';

function metricsRoutes(app: Api, s: Services): void {
  app.get('/metrics', { schema: { hide: true } }, async (_req, reply) => {
    s.metrics.queueDepth.reset();
    try {
      for (const r of await s.deliveries.queueDepth()) s.metrics.queueDepth.set({ channel: r.channel, status: r.status }, r.n);
      await s.inbound.sampleMetrics();
      s.metrics.storeUp.set(1);
    } catch (err) {
      if (!s.store.isUnavailable(err)) throw err;
      s.metrics.storeUp.set(0);
    }
    return reply.type(s.metrics.registry.contentType).send(await s.metrics.registry.metrics());
  });
}

export const metricsModule: RouteModule = { name: 'metrics', prefix: '', auth: 'none', apiRole: false, routes: metricsRoutes };
