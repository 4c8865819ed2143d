// Broker subscriptions (admin scope; docs/broker.md#subscriptions):
//   POST   /v1/subscriptions            {path_pattern, filter?, action}  201 (a forward's secret shown once)
//   GET    /v1/subscriptions            oldest first, key cursor
//   GET    /v1/subscriptions/{id}
//   DELETE /v1/subscriptions/{id}       204
//   GET    /v1/events/{id}/runs         what the subscriptions did with an event
//   POST   /v1/events/{id}/replay       {reason?}  runs the event's subscriptions again (audited) 202

import { Type, type Static } from 'typebox';
import { actorOf } from '../auth/principal.ts';
import { MAX_PATH_PATTERN_LENGTH } from '../domain/path-pattern.ts';
import { ROOM_NAME } from '../domain/realtime-protocol.ts';
import { Problem } from '../errors.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { iso, keyPageOf, keyPageRequest, KIND_PATTERN, Limit, problems, RecipientId, TopicKey, Cursor } from '../http/schemas.ts';
import type { Services } from '../services.ts';
import type { SubscriptionInput, SubscriptionView } from './service.ts';

const SubscriptionId = Type.Object({ id: Type.String({ maxLength: 64 }) });
const EventId = Type.Object({ id: Type.String({ maxLength: 64 }) });

const Forward = Type.Object(
  {
    forward: Type.Object(
      {
        url: Type.String({ maxLength: 2048, description: 'http(s) URL that receives the original body, signed with Standard Webhooks' }),
        secret: Type.Optional(Type.String({ maxLength: 200, description: 'Standard Webhooks secret (whsec_…); omitted: one is generated and shown once' })),
      },
      { additionalProperties: false },
    ),
  },
  { additionalProperties: false },
);
const Notify = Type.Object(
  {
    notify: Type.Object(
      {
        to: Type.Optional(Type.Union([RecipientId, Type.Array(RecipientId, { minItems: 1, maxItems: 1000 })])),
        topic: Type.Optional(TopicKey),
        to_path: Type.Optional(Type.String({ minLength: 1, maxLength: 256, pattern: '^[^.]+(\\.[^.]+)*$', description: 'A dotted path in the event document whose value is a recipient id or a list of them, e.g. payload.assignee.login' })),
        kind: Type.Optional(Type.String({ pattern: KIND_PATTERN })),
        template: Type.String({ pattern: KIND_PATTERN, description: 'A template key (PUT /v1/templates/{key}), rendered with the event document {payload, headers, path, type, source, id, received_at} merged with data' }),
        data: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { propertyNames: { maxLength: 100 }, description: 'Extra template data; wins over the event document' })),
      },
      { additionalProperties: false, description: 'Exactly one of to, topic, to_path' },
    ),
  },
  { additionalProperties: false },
);
const Realtime = Type.Object(
  { realtime: Type.Object({ channel: Type.String({ pattern: `^room:${ROOM_NAME.source.slice(1)}`, description: 'room:<name>: the event document is published there' }) }, { additionalProperties: false }) },
  { additionalProperties: false },
);

const SubscriptionBody = Type.Object(
  {
    path_pattern: Type.String({ minLength: 1, maxLength: MAX_PATH_PATTERN_LENGTH, description: 'Source path glob: * one segment (or part of one), ** any number of segments, e.g. /github/acme/* or /stripe/**' }),
    filter: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'A filter over {payload, headers, path, type, source} (docs/filters.md)' })),
    action: Type.Union([Forward, Notify, Realtime]),
  },
  { additionalProperties: false },
);

const SubscriptionViewSchema = Type.Object({
  id: Type.String(),
  path_pattern: Type.String(),
  filter: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  action: Type.Unknown({ description: 'As given; a forward without its secret except in the answer to the POST' }),
  created_by: Type.String(),
  created_at: Type.String(),
});

const RunView = Type.Object({
  subscription_id: Type.String(),
  run: Type.String({ description: '"event" for the run when the event arrived, else a replay id' }),
  outcome: Type.String({ description: 'forwarded | notified | skipped | failed' }),
  detail: Type.Union([Type.String(), Type.Null()]),
  created_at: Type.String(),
});

function view(v: SubscriptionView): Static<typeof SubscriptionViewSchema> {
  return { ...v, created_at: iso(v.created_at)! };
}

function subscriptionRoutes(app: Api, s: Services): void {
  app.post(
    '/subscriptions',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Create a subscription: an action for inbound events on matching paths that pass the filter',
        tags: ['subscriptions'],
        body: SubscriptionBody,
        response: { 201: Type.Object({ subscription: SubscriptionViewSchema }), ...problems(400, 401, 403, 422) },
      },
    },
    async (request, reply) => {
      const sub = await s.subscriptions.create(request.principal.workspaceId, request.body as SubscriptionInput, actorOf(request.principal));
      return reply.code(201).send({ subscription: view(sub) });
    },
  );

  app.get(
    '/subscriptions',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'List subscriptions, oldest first',
        tags: ['subscriptions'],
        querystring: Type.Object({ limit: Type.Optional(Limit), cursor: Type.Optional(Cursor) }, { additionalProperties: false }),
        response: { 200: Type.Object({ data: Type.Array(SubscriptionViewSchema), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...problems(400, 401, 403) },
      },
    },
    async (request) => {
      const { after, limit } = keyPageRequest(request.query, /^sub_[A-Za-z0-9]{1,60}$/);
      const page = keyPageOf(await s.subscriptions.list(request.principal.workspaceId, { after, limit: limit + 1 }), limit, (r) => r.id);
      return { data: page.rows.map(view), next_cursor: page.next_cursor };
    },
  );

  app.get(
    '/subscriptions/:id',
    {
      config: { scope: 'admin' },
      schema: { summary: 'One subscription', tags: ['subscriptions'], params: SubscriptionId, response: { 200: Type.Object({ subscription: SubscriptionViewSchema }), ...problems(401, 403, 404) } },
    },
    async (request) => {
      const sub = await s.subscriptions.get(request.principal.workspaceId, request.params.id);
      if (!sub) throw new Problem('not_found', `No subscription "${request.params.id}"`);
      return { subscription: view(sub) };
    },
  );

  app.delete(
    '/subscriptions/:id',
    {
      config: { scope: 'admin' },
      schema: { summary: 'Delete a subscription', tags: ['subscriptions'], params: SubscriptionId, response: { 204: Type.Null(), ...problems(401, 403, 404) } },
    },
    async (request, reply) => {
      if (!(await s.subscriptions.delete(request.principal.workspaceId, request.params.id, actorOf(request.principal)))) {
        throw new Problem('not_found', `No subscription "${request.params.id}"`);
      }
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/events/:id/runs',
    {
      config: { scope: 'admin' },
      schema: { summary: "What the subscriptions did with an event", tags: ['subscriptions'], params: EventId, response: { 200: Type.Object({ data: Type.Array(RunView) }), ...problems(401, 403, 404) } },
    },
    async (request) => {
      const runs = await s.subscriptions.runs(request.principal.workspaceId, request.params.id);
      if (!runs) throw new Problem('not_found', `No event "${request.params.id}"`);
      return { data: runs.map((r) => ({ subscription_id: r.subscription_id, run: r.run, outcome: r.outcome, detail: r.detail, created_at: iso(r.created_at)! })) };
    },
  );

  app.post(
    '/events/:id/replay',
    {
      config: { scope: 'admin' },
      schema: {
        summary: "Run an event's subscriptions again (audited)",
        tags: ['subscriptions'],
        params: EventId,
        body: Type.Optional(Type.Object({ reason: Type.Optional(Type.String({ minLength: 1, maxLength: 1000 })) }, { additionalProperties: false })),
        response: { 202: Type.Object({ event_id: Type.String(), run: Type.String() }), ...problems(401, 403, 404, 422) },
      },
    },
    async (request, reply) => {
      const r = await s.subscriptions.replay(request.principal.workspaceId, request.params.id, actorOf(request.principal), request.body?.reason);
      if (!r) throw new Problem('not_found', `No event "${request.params.id}"`);
      return reply.code(202).send({ event_id: request.params.id, run: r.run });
    },
  );
}

export const subscriptionsModule: RouteModule = { name: 'subscriptions', prefix: '/v1', auth: 'principal', apiRole: true, routes: subscriptionRoutes };
