// The dead-letter queue (admin scope): exhausted deliveries and the operator actions on them.
// Every action is recorded in the audit log (who: the key, why: the reason).
//   GET  /v1/dlq                          exhausted deliveries, newest first, filtered, keyset cursor
//   GET  /v1/dlq/stats                    counts per time bucket of completed_at, channel, error class
//   GET  /v1/dlq/jobs/{id}                a bulk job's progress
//   GET  /v1/dlq/{deliveryId}             one entry with its attempt log and notification content
//   POST /v1/dlq/{deliveryId}/replay      {reason?}  back to pending with a fresh retry budget
//   POST /v1/dlq/{deliveryId}/discard     {reason}   discarded for good
//   POST /v1/dlq/bulk-replay              {filters…, reason?, confirm?}
//   POST /v1/dlq/bulk-discard             {filters…, reason, confirm?}
// Filters: channel, error (error class), from/to (ISO date-times; completed_at in [from, to)).
// A bulk action without "confirm": true is a dry run (200: count and a sample; nothing changes);
// with it, 202 and a background job over the entries matching at that moment.

import { Type, type Static } from 'typebox';
import { actorOf } from '../auth/principal.ts';
import { CHANNEL_NAMES } from '../channels/channel.ts';
import { parseDuration } from '../domain/duration.ts';
import { Problem } from '../errors.ts';
import { jobScope, type DlqFilter } from './service.ts';
import type { DlqJobsTable } from '../store/schema.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { Cursor, iso, Limit, Page, pageOf, pageRequest, problems, Timestamp } from '../http/schemas.ts';
import { deliveryView, DeliveryView } from '../http/views.ts';

/** The most buckets one stats request may span. */
export const MAX_STATS_BUCKETS = 1000;

const Channel = Type.Union(CHANNEL_NAMES.map((c) => Type.Literal(c)));
const ErrorClass = Type.String({ minLength: 1, maxLength: 100, description: 'An error class, e.g. http_400, smtp_550, timeout' });
const Reason = Type.String({ minLength: 1, maxLength: 1000, pattern: '\\S', description: 'Why; kept in the audit log' });
const DeliveryId = Type.Object({ deliveryId: Type.String({ maxLength: 64 }) });

const filterFields = {
  channel: Type.Optional(Channel),
  from: Type.Optional({ ...Timestamp, description: 'Completed at or after this time' }),
  to: Type.Optional({ ...Timestamp, description: 'Completed before this time' }),
  error: Type.Optional(ErrorClass),
};

const Filters = Type.Object({
  channel: Type.Optional(Type.String()),
  from: Type.Optional(Type.String()),
  to: Type.Optional(Type.String()),
  error: Type.Optional(Type.String()),
});

export const DlqEntryView = Type.Object({
  ...DeliveryView.properties,
  notification: Type.Object({ id: Type.String(), kind: Type.String(), title: Type.String(), body: Type.String() }),
});

export const DlqJobView = Type.Object({
  id: Type.String(),
  action: Type.Union([Type.Literal('replay'), Type.Literal('discard')]),
  status: Type.Union([Type.Literal('running'), Type.Literal('completed'), Type.Literal('failed')]),
  total: Type.Integer({ description: 'Entries matching when the job was created' }),
  processed: Type.Integer({ description: 'Entries acted on so far; entries that left the DLQ before the job reached them are not counted' }),
  filters: Filters,
  max_id: Type.Union([Type.String(), Type.Null()], { description: 'The newest delivery id in the job; later entries are not touched' }),
  reason: Type.Union([Type.String(), Type.Null()]),
  actor: Type.String(),
  created_at: Type.String(),
  updated_at: Type.String(),
  finished_at: Type.Union([Type.String(), Type.Null()]),
});

const DryRunView = Type.Object({
  dry_run: Type.Literal(true),
  count: Type.Integer(),
  sample: Type.Array(Type.String(), { description: 'Up to 20 of the newest matching delivery ids' }),
});

const BulkReplayBody = Type.Object(
  { ...filterFields, reason: Type.Optional(Reason), confirm: Type.Optional(Type.Boolean({ description: 'true to act; otherwise a dry run' })) },
  { additionalProperties: false },
);
const BulkDiscardBody = Type.Object(
  { ...filterFields, reason: Reason, confirm: Type.Optional(Type.Boolean({ description: 'true to act; otherwise a dry run' })) },
  { additionalProperties: false },
);

function jobView(j: DlqJobsTable): Static<typeof DlqJobView> {
  const scope = jobScope(j);
  return {
    id: j.id,
    action: j.action,
    status: j.status,
    total: j.total,
    processed: j.processed,
    filters: scope.filters,
    max_id: scope.max_id,
    reason: j.reason,
    actor: j.actor,
    created_at: iso(j.created_at)!,
    updated_at: iso(j.updated_at)!,
    finished_at: iso(j.finished_at),
  };
}

const ms = (t: string | undefined) => (t === undefined ? undefined : Date.parse(t));

function toFilter(q: { channel?: string | undefined; from?: string | undefined; to?: string | undefined; error?: string | undefined }): DlqFilter {
  return { channel: q.channel, from: ms(q.from), to: ms(q.to), errorClass: q.error };
}

function dlqRoutes(app: Api, s: Services): void {
  app.get(
    '/dlq',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'List dead-lettered (exhausted) deliveries, newest first',
        tags: ['dlq'],
        querystring: Type.Object({ ...filterFields, limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) }, { additionalProperties: false }),
        response: {
          200: Page(DeliveryView),
          ...problems(400, 401, 403, 422),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const { before, limit } = pageRequest(q);
      const page = pageOf(await s.dlq.list(request.principal.workspaceId, toFilter(q), { before, limit: limit + 1 }), limit);
      return { data: page.rows.map((d) => deliveryView(d)), next_cursor: page.next_cursor };
    },
  );

  app.get(
    '/dlq/stats',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Dead-lettered deliveries per time bucket, channel and error class',
        description:
          'Counts entries with completed_at in [from, to). Buckets are aligned to multiples of the bucket size since the epoch (UTC); ' +
          `empty groups are omitted. Defaults: to = now, from = 24 buckets before to. At most ${MAX_STATS_BUCKETS} buckets.`,
        tags: ['dlq'],
        querystring: Type.Object(
          {
            from: Type.Optional(Timestamp),
            to: Type.Optional(Timestamp),
            bucket: Type.Optional(Type.String({ maxLength: 20, default: '1h', description: 'A duration such as 5m, 1h, 1d' })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            bucket_ms: Type.Integer(),
            from: Type.String(),
            to: Type.String(),
            buckets: Type.Array(Type.Object({ start: Type.String(), channel: Type.String(), error_class: Type.Union([Type.String(), Type.Null()]), count: Type.Integer() })),
          }),
          ...problems(401, 403, 422),
        },
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
      if (bucketMs < 1) throw invalidField('querystring.bucket', 'must be a positive duration');
      const to = ms(q.to) ?? Date.now();
      const from = ms(q.from) ?? to - 24 * bucketMs;
      if (from >= to) throw invalidField('querystring.from', 'must be before "to"');
      const spanned = Math.floor((to - 1) / bucketMs) - Math.floor(from / bucketMs) + 1;
      if (spanned > MAX_STATS_BUCKETS) {
        throw invalidField('querystring.bucket', `spans ${spanned} buckets between from and to; at most ${MAX_STATS_BUCKETS} are allowed (use a larger bucket or a shorter range)`);
      }
      const rows = await s.dlq.stats(request.principal.workspaceId, { from, to, bucketMs });
      return {
        bucket_ms: bucketMs,
        from: iso(from)!,
        to: iso(to)!,
        buckets: rows.map((r) => ({ start: iso(r.start)!, channel: r.channel, error_class: r.error_class, count: r.count })),
      };
    },
  );

  app.get(
    '/dlq/jobs/:id',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'A bulk DLQ job and its progress',
        tags: ['dlq'],
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: { 200: Type.Object({ job: DlqJobView }), ...problems(401, 403, 404) },
      },
    },
    async (request) => {
      const job = await s.dlq.job(request.principal.workspaceId, request.params.id);
      if (!job) throw new Problem('not_found', `No DLQ job "${request.params.id}"`);
      return { job: jobView(job) };
    },
  );

  app.get(
    '/dlq/:deliveryId',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'A dead-lettered delivery with its attempt log and notification content',
        tags: ['dlq'],
        params: DeliveryId,
        response: { 200: DlqEntryView, ...problems(401, 403, 404) },
      },
    },
    async (request) => {
      const entry = await s.dlq.entry(request.principal.workspaceId, request.params.deliveryId);
      if (!entry) throw new Problem('not_found', `No dead-lettered delivery "${request.params.deliveryId}"`);
      return { ...deliveryView(entry.delivery, entry.attempts), notification: entry.notification };
    },
  );

  app.post(
    '/dlq/:deliveryId/replay',
    {
      config: { scope: 'admin' },
      // The body is optional: a request without one is validated as {}.
      preValidation: async (request) => {
        request.body ??= {};
      },
      schema: {
        summary: 'Replay a dead-lettered delivery',
        description: 'Back to pending, due now, with a fresh retry budget. Answers the delivery as it is after the replay (a worker may already have claimed it). 409 if the delivery is not exhausted.',
        tags: ['dlq'],
        params: DeliveryId,
        body: Type.Object({ reason: Type.Optional(Reason) }, { additionalProperties: false }),
        response: { 200: DeliveryView, ...problems(401, 403, 404, 409, 422) },
      },
    },
    async (request) => {
      const { principal } = request;
      const d = await s.dlq.replay(principal.workspaceId, request.params.deliveryId, actorOf(principal), request.body.reason ?? null);
      return deliveryView(d);
    },
  );

  app.post(
    '/dlq/:deliveryId/discard',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Discard a dead-lettered delivery',
        description: 'Status discarded, with the reason. 409 if the delivery is not exhausted.',
        tags: ['dlq'],
        params: DeliveryId,
        body: Type.Object({ reason: Reason }, { additionalProperties: false }),
        response: { 200: DeliveryView, ...problems(401, 403, 404, 409, 422) },
      },
    },
    async (request) => {
      const { principal } = request;
      const d = await s.dlq.discard(principal.workspaceId, request.params.deliveryId, actorOf(principal), request.body.reason);
      return deliveryView(d);
    },
  );

  for (const action of ['replay', 'discard'] as const) {
    app.post(
      `/dlq/bulk-${action}`,
      {
        config: { scope: 'admin' },
        schema: {
          summary: action === 'replay' ? 'Replay every dead-lettered delivery matching filters' : 'Discard every dead-lettered delivery matching filters',
          description: 'Without "confirm": true, a dry run: the count and a sample, nothing changes. With it, a background job (202) over the entries matching now.',
          tags: ['dlq'],
          body: action === 'replay' ? BulkReplayBody : BulkDiscardBody,
          response: { 200: DryRunView, 202: Type.Object({ job: DlqJobView }), ...problems(401, 403, 415, 422) },
        },
      },
      async (request, reply) => {
        const { principal } = request;
        const body = request.body as Static<typeof BulkReplayBody>;
        const filter = toFilter(body);
        if (body.confirm !== true) {
          const dry = await s.dlq.preview(principal.workspaceId, filter);
          return reply.code(200).send({ dry_run: true as const, ...dry });
        }
        const job = await s.dlq.createJob(principal.workspaceId, action, filter, actorOf(principal), body.reason ?? null);
        return reply.code(202).send({ job: jobView(job) });
      },
    );
  }
}

function invalidField(path: string, message: string): Problem {
  return new Problem('validation_failed', `${path} ${message}`, { errors: [{ path, message }] });
}

export const dlqModule: RouteModule = { name: 'dlq', prefix: '/v1', auth: 'principal', apiRole: true, routes: dlqRoutes };
