// GET /v1/stats?from=&to=&bucket=   (read)
// Notifications accepted per bucket; deliveries that ended per bucket, channel and final status;
// the waiting queue per channel (count, due, oldest due age) and the dead-letter count, now.
// Buckets are aligned to multiples of the bucket size since the epoch (UTC); empty groups are
// omitted. Defaults: to = now, from = 24 buckets before to, bucket 1h; at most 1000 buckets.

import { Type } from 'typebox';
import { parseDuration } from '../domain/duration.ts';
import { Problem } from '../errors.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { iso, problems, Timestamp } from '../http/schemas.ts';

export const MAX_BUCKETS = 1000;

const StatsView = Type.Object({
  from: Type.String(),
  to: Type.String(),
  bucket_ms: Type.Integer(),
  now: Type.String(),
  accepted: Type.Array(Type.Object({ start: Type.String(), count: Type.Integer() }), { description: 'Notifications accepted per bucket' }),
  deliveries: Type.Array(Type.Object({ start: Type.String(), channel: Type.String(), status: Type.String(), count: Type.Integer() }), {
    description: 'Deliveries that reached an end (sent, exhausted, skipped, cancelled…) per bucket, channel and status',
  }),
  queue: Type.Array(
    Type.Object({
      channel: Type.String(),
      waiting: Type.Integer({ description: 'Pending, scheduled, throttled, or failed between retries' }),
      due: Type.Integer({ description: 'Of those, due now' }),
      oldest_due_age_ms: Type.Union([Type.Integer(), Type.Null()], { description: 'How long the oldest due one has been due; null when none is' }),
    }),
  ),
  dead_letters: Type.Integer({ description: 'Deliveries in the dead-letter queue now' }),
});

function invalidField(path: string, message: string): Problem {
  return new Problem('validation_failed', `${path} ${message}`, { errors: [{ path, message }] });
}

function statsRoutes(app: Api, s: Services): void {
  app.get(
    '/stats',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Accepted notifications and ended deliveries per time bucket; the queue and dead letters now',
        description: `Read from the store: every node answers the same. Buckets are aligned to multiples of the bucket size since the epoch (UTC); empty groups are omitted. Defaults: to = now, from = 24 buckets before to. At most ${MAX_BUCKETS} buckets.`,
        tags: ['stats'],
        querystring: Type.Object(
          {
            from: Type.Optional(Timestamp),
            to: Type.Optional(Timestamp),
            bucket: Type.Optional(Type.String({ maxLength: 20, default: '1h', description: 'A duration such as 1m, 5m, 1h, 1d' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: StatsView, ...problems(400, 401, 403, 422) },
      },
    },
    async (request) => {
      const q = request.query;
      let bucketMs: number;
      try {
        bucketMs = parseDuration(q.bucket ?? '1h');
      } catch (err) {
        throw invalidField('querystring.bucket', (err as Error).message);
      }
      if (!(bucketMs >= 1000)) throw invalidField('querystring.bucket', 'must be at least 1s');
      const now = Date.now();
      const to = q.to === undefined ? now : Date.parse(q.to);
      const from = q.from === undefined ? to - 24 * bucketMs : Date.parse(q.from);
      if (!Number.isFinite(from)) throw invalidField('querystring.from', 'must be an RFC 3339 time');
      if (!Number.isFinite(to)) throw invalidField('querystring.to', 'must be an RFC 3339 time');
      if (from >= to) throw invalidField('querystring.from', 'must be before "to"');
      const spanned = Math.floor((to - 1) / bucketMs) - Math.floor(from / bucketMs) + 1;
      if (spanned > MAX_BUCKETS) {
        throw invalidField('querystring.bucket', `spans ${spanned} buckets between from and to; at most ${MAX_BUCKETS} are allowed (use a larger bucket or a shorter range)`);
      }
      const st = await s.stats.read(request.principal.workspaceId, { from, to, bucketMs, now });
      return {
        from: iso(from)!,
        to: iso(to)!,
        bucket_ms: bucketMs,
        now: iso(now)!,
        accepted: st.accepted.map((r) => ({ start: iso(r.start)!, count: r.count })),
        deliveries: st.deliveries.map((r) => ({ start: iso(r.start)!, channel: r.channel, status: r.status, count: r.count })),
        queue: st.queue.map((r) => ({ channel: r.channel, waiting: r.waiting, due: r.due, oldest_due_age_ms: r.oldest_due_at === null ? null : Math.max(0, now - r.oldest_due_at) })),
        dead_letters: st.deadLetters,
      };
    },
  );
}

export const statsModule: RouteModule = { name: 'stats', prefix: '/v1', auth: 'principal', apiRole: true, routes: statsRoutes };
