// Notifications.
//   POST /v1/notifications        send (send scope): 202 once durably stored; Idempotency-Key honoured
//   GET  /v1/notifications/{id}   the notification, each delivery's status and its attempt log (read)
//   GET  /v1/notifications        newest first, filtered by recipient and status, keyset cursor (read)

import { Type } from 'typebox';
import { CHANNEL_NAMES } from '../channels/channel.ts';
import { CHANNEL_OPTIONS } from '../channels/registry.ts';
import { NOTIFICATION_STATUSES } from '../domain/delivery-status.ts';
import { Problem } from '../errors.ts';
import type { DeliveryAttemptsTable } from '../store/schema.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { Cursor, Limit, Page, pageOf, pageRequest, problems, RecipientId, TopicKey } from '../http/schemas.ts';
import { deliveryView, notificationView, NotificationView } from '../http/views.ts';

export const SendBody = Type.Object(
  {
    to: Type.Union(
      [
        RecipientId,
        Type.Array(RecipientId, { minItems: 1, maxItems: 1000 }),
        Type.Object({ topic: TopicKey }, { additionalProperties: false, description: "A topic: every member gets it (deliveries are made in the background; the answer's deliveries is empty)" }),
      ],
      { description: 'A recipient id, up to 1000 of them, or {"topic": key}' },
    ),
    kind: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$', default: 'transactional' })),
    title: Type.Optional(Type.String({ maxLength: 1000 })),
    body: Type.Optional(Type.String({ maxLength: 100_000 })),
    data: Type.Optional(Type.Unknown({ description: 'Any JSON, passed to channels that carry data (webhooks)' })),
    channels: Type.Optional(Type.Array(Type.Union(CHANNEL_NAMES.map((c) => Type.Literal(c))), { minItems: 1, maxItems: CHANNEL_NAMES.length, uniqueItems: true })),
    channel_options: Type.Optional(
      Type.Object(
        Object.fromEntries(Object.entries(CHANNEL_OPTIONS).map(([c, schema]) => [c, Type.Optional(schema)])),
        { additionalProperties: false, description: 'Options only one channel has, by channel (e.g. {"pushover": {"priority": 2, "retry": 60, "expire": 3600}})' },
      ),
    ),
    dedupe_key: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'Recipients that got a notification with this key inside dedupe_window get this one as `deduplicated`' })),
    dedupe_window: Type.Optional(Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$', default: '1d', description: 'How long a dedupe_key holds, e.g. "1d" or "12h" (at most 30d)' })),
    digest: Type.Optional(
      Type.Object(
        {
          key: Type.String({ minLength: 1, maxLength: 255 }),
          window: Type.String({ pattern: '^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$', description: 'e.g. "1h" (1s to 7d)' }),
          template: Type.Optional(Type.String({ maxLength: 128, description: 'A template rendered with {count, items: [{title, body, data}]}' })),
        },
        { additionalProperties: false, description: 'Notifications to a recipient with this key within the window go out as one delivery when it closes (overrides the kind\'s digest)' },
      ),
    ),
    routing: Type.Optional(Type.Union([Type.Literal('all'), Type.Literal('first')], { description: '"first": one channel at a time in priority order (channels, or the default order); the next only if it fails' })),
    template: Type.Optional(Type.String({ pattern: '^[a-z0-9][a-z0-9_.-]{0,63}$', description: 'A template key (PUT /v1/templates/{key}): title and body are rendered from `data` per recipient locale and channel' })),
    send_at: Type.Optional(Type.String({ format: 'date-time', description: 'Deliver at this time (ISO 8601 with offset); until then deliveries are `scheduled`' })),
    fallback: Type.Optional(Type.Boolean({ description: 'Let a channel that rejects the message hand it to its fallback channel (Kakao AlimTalk -> SMS)', default: false })),
    // The key limit must be a propertyNames constraint: a Record's key schema becomes a
    // patternProperties pattern, which drops maxLength.
    metadata: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { propertyNames: { maxLength: 100 } })),
  },
  { additionalProperties: false },
);

const Accepted = Type.Object({
  id: Type.String(),
  status: Type.Literal('accepted'),
  deliveries: Type.Array(
    Type.Object({
      id: Type.String(),
      recipient: Type.String(),
      channel: Type.String(),
      device: Type.Optional(Type.String()),
      status: Type.String(),
      reason: Type.Optional(Type.String()),
      scheduled_for: Type.Optional(Type.String({ description: 'When a `scheduled` delivery will go' })),
    }),
  ),
  topic: Type.Optional(Type.Object({ key: Type.String(), members: Type.Integer({ description: 'Members when accepted' }) })),
});

const IdempotencyHeaders = Type.Object({
  'idempotency-key': Type.Optional(Type.String({ minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$' })),
});

function notificationRoutes(app: Api, s: Services): void {
  app.post(
    '/notifications',
    {
      config: { scope: 'send' },
      schema: {
        summary: 'Send a notification',
        description: 'Answers 202 only once the notification and its deliveries are durably stored.',
        tags: ['notifications'],
        headers: IdempotencyHeaders,
        body: SendBody,
        response: { 202: Accepted, ...problems(400, 401, 403, 409, 413, 415, 422) },
      },
    },
    async (request, reply) => {
      const result = await s.notifications.send(request.principal.workspaceId, request.body, request.headers['idempotency-key']);
      if (result.replayed) reply.header('idempotent-replayed', 'true');
      return reply.code(202).send(result.response);
    },
  );

  app.get(
    '/notifications/:id',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'A notification with its deliveries and attempt log',
        tags: ['notifications'],
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: { 200: NotificationView, ...problems(401, 403, 404) },
      },
    },
    async (request) => {
      const found = await s.notifications.get(request.principal.workspaceId, request.params.id);
      if (!found) throw new Problem('not_found', `No notification "${request.params.id}"`);
      const byDelivery = new Map<string, DeliveryAttemptsTable[]>();
      for (const a of found.attempts) {
        const list = byDelivery.get(a.delivery_id) ?? [];
        list.push(a);
        byDelivery.set(a.delivery_id, list);
      }
      const fanout = await s.notifications.fanout(found.notification.id);
      return notificationView(found.notification, found.deliveries.map((d) => deliveryView(d, byDelivery.get(d.id) ?? [])), fanout);
    },
  );

  app.delete(
    '/notifications/:id',
    {
      config: { scope: 'send' },
      schema: {
        summary: 'Cancel what has not been sent',
        description:
          'Deliveries still waiting (pending, scheduled, throttled, or failed between retries) become `cancelled`; one being attempted at this moment finishes. Answers the notification afterwards.',
        tags: ['notifications'],
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: { 200: NotificationView, ...problems(401, 403, 404) },
      },
    },
    async (request) => {
      const ws = request.principal.workspaceId;
      const cancelled = await s.notifications.cancel(ws, request.params.id);
      if (cancelled === undefined) throw new Problem('not_found', `No notification "${request.params.id}"`);
      const found = (await s.notifications.get(ws, request.params.id))!;
      return notificationView(found.notification, found.deliveries.map((d) => deliveryView(d)));
    },
  );

  app.get(
    '/notifications',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'List notifications, newest first',
        tags: ['notifications'],
        querystring: Type.Object(
          {
            recipient: Type.Optional(RecipientId),
            status: Type.Optional(Type.Union(NOTIFICATION_STATUSES.map((st) => Type.Literal(st)))),
            limit: Type.Optional(Limit),
            cursor: Type.Optional(Cursor),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Page(NotificationView),
          ...problems(400, 401, 403, 422),
        },
      },
    },
    async (request) => {
      const q = request.query;
      const { before, limit } = pageRequest(q);
      const found = await s.notifications.list(request.principal.workspaceId, { recipient: q.recipient, status: q.status, before, limit: limit + 1 });
      const page = pageOf(found.notifications, limit);
      const byNotification = Map.groupBy(found.deliveries, (d) => d.notification_id);
      const data = page.rows.map((n) => notificationView(n, (byNotification.get(n.id) ?? []).map((d) => deliveryView(d))));
      return { data, next_cursor: page.next_cursor };
    },
  );
}

export const notificationsModule: RouteModule = { name: 'notifications', prefix: '/v1', auth: 'principal', apiRole: true, routes: notificationRoutes };
