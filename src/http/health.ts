// Health probes (no auth):
//   /healthz/live     the process is up and serving HTTP
//   /healthz/ready    the store answers and its migrations are applied (503 otherwise)
//   /healthz/startup  start-up (migrations, bootstrap, workers) has finished (503 before)

import { Type } from 'typebox';
import { LATEST_MIGRATION } from '../store/migrations/index.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from './api.ts';

const Opt = Type.Optional(Type.String());
const Health = Type.Object({
  status: Type.String(),
  role: Opt,
  version: Opt,
  worker_id: Opt,
  store: Opt,
  migration: Opt,
  applied: Type.Optional(Type.Union([Type.String(), Type.Null()])),
  expected: Opt,
  error: Opt,
});

function healthRoutes(app: Api, s: Services): void {
  const schema = { tags: ['health'], security: [], response: { 200: Health, 503: Health } };

  app.get('/healthz/live', { schema: { ...schema, summary: 'Liveness' } }, async () => ({ status: 'ok' }));

  app.get('/healthz/startup', { schema: { ...schema, summary: 'Start-up finished' } }, async (_req, reply) =>
    s.state.started ? { status: 'ok' } : reply.code(503).send({ status: 'starting' }),
  );

  app.get('/healthz/ready', { schema: { ...schema, summary: 'Readiness' } }, async (_req, reply) => {
    const info = { role: s.roles.join(','), version: s.version, worker_id: s.workerId, store: s.store.dialect };
    try {
      await s.store.ping();
      const applied = await s.store.appliedMigration();
      if (applied !== LATEST_MIGRATION) return reply.code(503).send({ status: 'migrations_pending', applied: applied ?? null, expected: LATEST_MIGRATION, ...info });
    } catch (err) {
      return reply.code(503).send({ status: 'store_unavailable', error: (err as Error).message, ...info });
    }
    if (s.state.stopping) return reply.code(503).send({ status: 'stopping', ...info });
    return { status: 'ok', migration: LATEST_MIGRATION, ...info };
  });
}

export const healthModule: RouteModule = { name: 'health', prefix: '', auth: 'none', apiRole: false, routes: healthRoutes };
