// The webhook broker's HTTP routes.
//   POST   /hooks/{path}                      ingest; the signature is the authentication (hooksModule)
//   PUT    /v1/sources/{id}                   create or replace a source (admin)
//   GET    /v1/sources, /v1/sources/{id}      sources, secrets masked (admin)
//   DELETE /v1/sources/{id}                   (admin)
//   GET    /v1/events, /v1/events/{id}        events the caller may read (inbound/service.ts ACL)
//   PUT    /v1/consumers/{name}               create or update a pull consumer (read)
//   GET    /v1/consumers/{name}               with its lag
//   DELETE /v1/consumers/{name}
//   GET    /v1/consumers/{name}/events        lease up to `limit` events, long-polling up to `wait`
//   POST   /v1/consumers/{name}/ack|nack      {ids, delay?}
//   GET    /v1/consumers/{name}/dead-letters  events that reached max_deliveries

import { Type, type Static } from 'typebox';
import { parseDuration } from '../domain/duration.ts';
import { PROVIDERS, SOURCE_PATH_PATTERN, VISIBILITIES } from '../domain/inbound.ts';
import { Problem } from '../errors.ts';
import type { EventRow } from './service.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { Cursor, iso, keyPageOf, keyPageRequest, problems } from '../http/schemas.ts';

const NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$';
const EVENT_ID_PATTERN = '^evt_[0-9A-HJKMNP-TV-Z]{0,26}$';
const MAX_WAIT_MS = 60_000;

const Secret = Type.String({ minLength: 1, maxLength: 500, pattern: '^[\\x21-\\x7e]+$', description: 'A signing secret (printable ASCII, no spaces)' });
const SourceBody = Type.Object(
  {
    path: Type.String({ maxLength: 200, pattern: SOURCE_PATH_PATTERN, description: 'Where the source receives: POST /hooks<path>, e.g. /github/acme/api' }),
    provider: Type.Union(PROVIDERS.map((p) => Type.Literal(p))),
    secrets: Type.Optional(Type.Array(Secret, { maxItems: 10, description: 'Accepted secrets; list the old and the new one while rotating' })),
    hmac: Type.Optional(
      Type.Object(
        {
          header: Type.String({ minLength: 1, maxLength: 100, pattern: "^[A-Za-z0-9!#$%&'*+.^_`|~-]+$" }),
          algorithm: Type.Union([Type.Literal('sha256'), Type.Literal('sha1')]),
          encoding: Type.Union([Type.Literal('hex'), Type.Literal('base64')]),
          prefix: Type.Optional(Type.String({ maxLength: 50, pattern: '^[\\x20-\\x7e]*$' })),
        },
        { additionalProperties: false, description: 'Provider hmac only' },
      ),
    ),
    visibility: Type.Optional(Type.Union(VISIBILITIES.map((v) => Type.Literal(v)), { default: 'org' })),
    owner: Type.Optional(Type.String({ minLength: 1, maxLength: 64, pattern: '^[A-Za-z0-9_]+$', description: 'A user of the organization; default: the creator' })),
    retention: Type.Optional(Type.String({ maxLength: 20, description: 'How long events are kept, e.g. 7d; default HERALD_EVENT_RETENTION' })),
    event_type_path: Type.Optional(Type.String({ maxLength: 200, pattern: '^(payload|headers)(\\.[A-Za-z0-9_-]+)+$', description: 'Where the event type is, e.g. payload.event' })),
    unsigned: Type.Optional(Type.Boolean({ description: 'Must be true for provider none' })),
    github_read: Type.Optional(
      Type.Boolean({
        description:
          'Provider github, organization linked to a GitHub organization: every user whose GitHub account can read the repository the path ends in (/<github org>/<repository>) reads these events',
      }),
    ),
  },
  { additionalProperties: false },
);

const SourceView = Type.Object({
  id: Type.String(),
  path: Type.String(),
  hook_url: Type.String({ description: 'Where the provider sends (relative to this server)' }),
  provider: Type.String(),
  secrets: Type.Array(Type.String(), { description: 'Masked' }),
  hmac: Type.Union([Type.Object({ header: Type.String(), algorithm: Type.String(), encoding: Type.String(), prefix: Type.Optional(Type.String()) }), Type.Null()]),
  visibility: Type.String(),
  owner: Type.Union([Type.String(), Type.Null()]),
  retention_ms: Type.Union([Type.Integer(), Type.Null()]),
  event_type_path: Type.Union([Type.String(), Type.Null()]),
  github_repo: Type.Union([Type.String(), Type.Null()], { description: 'owner/repo whose GitHub readers read these events (github_read); null: no grant' }),
  created_at: Type.String(),
  updated_at: Type.String(),
});

const EventView = Type.Object({
  id: Type.String(),
  source: Type.String(),
  organization: Type.String(),
  path: Type.String(),
  provider: Type.String(),
  type: Type.Union([Type.String(), Type.Null()]),
  delivery_id: Type.Union([Type.String(), Type.Null()]),
  visibility: Type.String(),
  owner: Type.Union([Type.String(), Type.Null()]),
  content_type: Type.Union([Type.String(), Type.Null()]),
  headers: Type.Record(Type.String(), Type.String()),
  payload: Type.Optional(Type.Unknown({ description: 'The parsed body, when JSON or form' })),
  body: Type.Optional(Type.String({ description: 'The raw body, when it is UTF-8 text' })),
  body_base64: Type.Optional(Type.String({ description: 'The raw body, base64, when it is not UTF-8 text' })),
  size: Type.Integer(),
  received_at: Type.String(),
  deliveries: Type.Optional(Type.Integer({ description: 'Consumer pulls: how many times this event has been handed out' })),
});

function eventView(e: EventRow, withBody: boolean): Static<typeof EventView> {
  return {
    id: e.id,
    source: e.source_id,
    organization: e.workspace_id,
    path: e.path,
    provider: e.provider,
    type: e.event_type,
    delivery_id: e.delivery_id,
    visibility: e.visibility,
    owner: e.owner_id,
    content_type: e.content_type,
    headers: JSON.parse(e.headers) as Record<string, string>,
    ...(e.payload !== null && { payload: JSON.parse(e.payload) as unknown }),
    ...(withBody && (e.body_encoding === 'utf8' ? { body: e.body } : { body_base64: e.body })),
    size: Number(e.size),
    received_at: iso(Number(e.received_at))!,
  };
}

const SourceParams = Type.Object({ id: Type.String({ pattern: NAME_PATTERN }) });
const ConsumerParams = Type.Object({ name: Type.String({ pattern: NAME_PATTERN }) });
const Ids = Type.Array(Type.String({ pattern: EVENT_ID_PATTERN }), { minItems: 1, maxItems: 1000 });

const ConsumerBody = Type.Object(
  {
    filter: Type.Object(
      {
        path: Type.String({ minLength: 1, maxLength: 200, description: 'A source path or glob: "*" one segment, "**" any number' }),
        types: Type.Optional(Type.Array(Type.String({ minLength: 1, maxLength: 200, pattern: '^[\\x20-\\x7e]+$' }), { minItems: 1, maxItems: 50 })),
        match: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { description: 'A filter (docs/filters.md) over {payload, headers, path, type, source}' })),
      },
      { additionalProperties: false },
    ),
    ack_timeout: Type.Optional(Type.String({ maxLength: 20, description: 'How long a pulled event is leased, e.g. 30s (1s to 12h)' })),
    max_deliveries: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, description: 'Handed out this many times without an ack: dead letter. Default 5' })),
    after_id: Type.Optional(Type.String({ pattern: EVENT_ID_PATTERN, description: 'New consumers: start after this event id' })),
    start: Type.Optional(Type.Union([Type.Literal('now'), Type.Literal('earliest')], { description: 'New consumers: from events received now on (default) or every stored event' })),
  },
  { additionalProperties: false },
);
const ConsumerView = Type.Object({
  name: Type.String(),
  filter: Type.Object({ path: Type.String(), types: Type.Optional(Type.Array(Type.String())), match: Type.Optional(Type.Unknown()) }),
  ack_timeout_ms: Type.Integer(),
  max_deliveries: Type.Integer(),
  created_at: Type.String(),
  updated_at: Type.String(),
});

function durationField(path: string, value: string | undefined, def: number, max: number): number {
  if (value === undefined) return def;
  let ms: number;
  try {
    ms = parseDuration(value);
  } catch (err) {
    throw new Problem('validation_failed', `${path} ${(err as Error).message}`, { errors: [{ path, message: (err as Error).message }] });
  }
  if (ms > max) throw new Problem('validation_failed', `${path} must be at most ${max / 1000}s`, { errors: [{ path, message: `must be at most ${max / 1000}s` }] });
  return ms;
}

function brokerRoutes(app: Api, s: Services): void {
  const sourceView = (v: Awaited<ReturnType<typeof s.inbound.getSource>>): Static<typeof SourceView> => ({
    id: v.id,
    path: v.path,
    hook_url: `/hooks${v.path}`,
    provider: v.provider,
    secrets: v.secrets,
    hmac: v.hmac,
    visibility: v.visibility,
    owner: v.owner,
    retention_ms: v.retention,
    event_type_path: v.event_type_path,
    github_repo: v.github_repo,
    created_at: iso(v.created_at)!,
    updated_at: iso(v.updated_at)!,
  });

  app.put(
    '/sources/:id',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Create or replace a webhook source',
        description: 'Secrets are sealed at rest and masked in every answer. A path under a reserved prefix, or taken by another source, is refused.',
        tags: ['broker'],
        params: SourceParams,
        body: SourceBody,
        response: { 200: SourceView, 201: SourceView, ...problems(401, 403, 409, 415, 422) },
      },
    },
    async (request, reply) => {
      const r = await s.inbound.putSource(request.principal, request.params.id, request.body);
      return reply.code(r.created ? 201 : 200).send(sourceView(r.source));
    },
  );

  app.get(
    '/sources',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'List webhook sources',
        tags: ['broker'],
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })), cursor: Type.Optional(Cursor) }, { additionalProperties: false }),
        response: { 200: Type.Object({ data: Type.Array(SourceView), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...problems(400, 401, 403, 422) },
      },
    },
    async (request) => {
      const { after, limit } = keyPageRequest(request.query, new RegExp(NAME_PATTERN));
      const rows = await s.inbound.listSources(request.principal.workspaceId, after, limit + 1);
      const page = keyPageOf(rows, limit, (r) => r.id);
      return { data: page.rows.map(sourceView), next_cursor: page.next_cursor };
    },
  );

  app.get(
    '/sources/:id',
    { config: { scope: 'admin' }, schema: { summary: 'Read a webhook source', tags: ['broker'], params: SourceParams, response: { 200: SourceView, ...problems(401, 403, 404) } } },
    async (request) => sourceView(await s.inbound.getSource(request.principal.workspaceId, request.params.id)),
  );

  app.delete(
    '/sources/:id',
    {
      config: { scope: 'admin' },
      schema: { summary: 'Delete a webhook source (its events stay until their retention ends)', tags: ['broker'], params: SourceParams, response: { 204: Type.Null(), ...problems(401, 403, 404) } },
    },
    async (request, reply) => {
      await s.inbound.deleteSource(request.principal.workspaceId, request.params.id);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/events',
    {
      schema: {
        summary: 'Received webhook events the caller may read',
        description: 'Newest first, or oldest first with order=asc; `after` is the last id of the previous page (a cursor in either order).',
        tags: ['broker'],
        querystring: Type.Object(
          {
            source: Type.Optional(Type.String({ pattern: NAME_PATTERN })),
            path: Type.Optional(Type.String({ maxLength: 200, pattern: SOURCE_PATH_PATTERN })),
            type: Type.Optional(Type.String({ minLength: 1, maxLength: 200, pattern: '^[\\x20-\\x7e]+$' })),
            after: Type.Optional(Type.String({ pattern: EVENT_ID_PATTERN })),
            order: Type.Optional(Type.Union([Type.Literal('desc'), Type.Literal('asc')], { default: 'desc' })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 200, default: 50 })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ data: Type.Array(EventView), next_after: Type.Union([Type.String(), Type.Null()]) }), ...problems(401, 403, 422) },
      },
    },
    async (request) => {
      const qs = request.query;
      const limit = qs.limit ?? 50;
      const rows = await s.inbound.browse(request.principal, { source: qs.source, path: qs.path, type: qs.type, after: qs.after, order: qs.order ?? 'desc', limit: limit + 1 });
      const page = rows.slice(0, limit);
      return { data: page.map((e) => eventView(e, false)), next_after: rows.length > limit ? page.at(-1)!.id : null };
    },
  );

  app.get(
    '/events/:id',
    {
      schema: {
        summary: 'One received webhook event with its headers, payload and raw body',
        tags: ['broker'],
        params: Type.Object({ id: Type.String({ maxLength: 64 }) }),
        response: { 200: EventView, ...problems(401, 404) },
      },
    },
    async (request) => eventView(await s.inbound.read(request.principal, request.params.id), true),
  );

  const consumerView = (c: Awaited<ReturnType<typeof s.inbound.putConsumer>>['consumer']) => ({
    name: c.name,
    filter: c.filter,
    ack_timeout_ms: c.ack_timeout_ms,
    max_deliveries: c.max_deliveries,
    created_at: iso(c.created_at)!,
    updated_at: iso(c.updated_at)!,
  });

  app.put(
    '/consumers/:name',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Create or update a pull consumer',
        description: 'An update keeps the consumer\'s position and its events\' states; after_id and start apply to a new consumer only.',
        tags: ['broker'],
        params: ConsumerParams,
        body: ConsumerBody,
        response: { 200: ConsumerView, 201: ConsumerView, ...problems(401, 403, 415, 422) },
      },
    },
    async (request, reply) => {
      const r = await s.inbound.putConsumer(request.principal, request.params.name, request.body);
      return reply.code(r.created ? 201 : 200).send(consumerView(r.consumer));
    },
  );

  app.get(
    '/consumers/:name',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'A consumer and its lag',
        tags: ['broker'],
        params: ConsumerParams,
        response: {
          200: Type.Object({
            ...ConsumerView.properties,
            unacked: Type.Integer({ description: 'Matching events not acknowledged yet (pending or leased)' }),
            dead: Type.Integer({ description: 'Dead-lettered events' }),
            oldest_unacked_id: Type.Union([Type.String(), Type.Null()]),
            oldest_unacked_age_ms: Type.Union([Type.Integer(), Type.Null()]),
          }),
          ...problems(401, 403, 404),
        },
      },
    },
    async (request) => {
      const c = await s.inbound.getConsumer(request.principal.workspaceId, request.params.name);
      return { ...consumerView(c), unacked: c.unacked, dead: c.dead, oldest_unacked_id: c.oldest_unacked_id, oldest_unacked_age_ms: c.oldest_unacked_age_ms };
    },
  );

  app.delete(
    '/consumers/:name',
    { config: { scope: 'read' }, schema: { summary: 'Delete a consumer and its state', tags: ['broker'], params: ConsumerParams, response: { 204: Type.Null(), ...problems(401, 403, 404) } } },
    async (request, reply) => {
      await s.inbound.deleteConsumer(request.principal.workspaceId, request.params.name);
      return reply.code(204).send(null);
    },
  );

  app.get(
    '/consumers/:name/events',
    {
      config: { scope: 'read' },
      schema: {
        summary: "Lease the consumer's next events",
        description: `Up to \`limit\` unacknowledged matching events, oldest first, each leased for the consumer's ack_timeout; when none is ready, waits up to \`wait\` (at most ${MAX_WAIT_MS / 1000}s) for one.`,
        tags: ['broker'],
        params: ConsumerParams,
        querystring: Type.Object(
          { limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 500, default: 10 })), wait: Type.Optional(Type.String({ maxLength: 20, description: 'e.g. 30s; default 0' })) },
          { additionalProperties: false },
        ),
        response: { 200: Type.Object({ data: Type.Array(EventView) }), ...problems(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const waitMs = durationField('querystring.wait', request.query.wait, 0, MAX_WAIT_MS);
      const r = await s.inbound.pull(request.principal.workspaceId, request.params.name, request.query.limit ?? 10, waitMs);
      return { data: r.events.map((e) => ({ ...eventView(e, true), deliveries: r.deliveries.get(e.id) ?? 1 })) };
    },
  );

  app.post(
    '/consumers/:name/ack',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Acknowledge events: they are never handed out again to this consumer',
        tags: ['broker'],
        params: ConsumerParams,
        body: Type.Object({ ids: Ids }, { additionalProperties: false }),
        response: { 200: Type.Object({ acked: Type.Array(Type.String()), not_acked: Type.Array(Type.String({ description: 'Already acked, dead-lettered, or not this consumer\'s' })) }), ...problems(401, 403, 404, 415, 422) },
      },
    },
    async (request) => {
      const acked = await s.inbound.ack(request.principal.workspaceId, request.params.name, request.body.ids);
      const set = new Set(acked);
      return { acked, not_acked: request.body.ids.filter((id) => !set.has(id)) };
    },
  );

  app.post(
    '/consumers/:name/nack',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Give leased events back, to be handed out again after `delay`',
        tags: ['broker'],
        params: ConsumerParams,
        body: Type.Object({ ids: Ids, delay: Type.Optional(Type.String({ maxLength: 20, description: 'e.g. 10s; default 0 (at once), at most 12h' })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ nacked: Type.Array(Type.String()) }), ...problems(401, 403, 404, 415, 422) },
      },
    },
    async (request) => {
      const delay = durationField('body.delay', request.body.delay, 0, 12 * 3_600_000);
      return { nacked: await s.inbound.nack(request.principal.workspaceId, request.params.name, request.body.ids, delay) };
    },
  );

  app.get(
    '/consumers/:name/dead-letters',
    {
      config: { scope: 'read' },
      schema: {
        summary: "The consumer's dead letters: events handed out max_deliveries times without an ack",
        tags: ['broker'],
        params: ConsumerParams,
        querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })) }, { additionalProperties: false }),
        response: { 200: Type.Object({ data: Type.Array(Type.Object({ event_id: Type.String(), deliveries: Type.Integer(), dead_at: Type.String() })) }), ...problems(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const rows = await s.inbound.deadLetters(request.principal.workspaceId, request.params.name, request.query.limit ?? 100);
      return { data: rows.map((r) => ({ event_id: r.event_id, deliveries: r.deliveries, dead_at: iso(r.updated_at)! })) };
    },
  );
}

function hookRoutes(app: Api, s: Services): void {
  // Every body is read as raw bytes, whatever its type: signatures are over the bytes as received.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: s.config.hookBodyLimit }, (_req, body, done) => done(null, body));
  app.post(
    '/*',
    {
      bodyLimit: s.config.hookBodyLimit,
      schema: {
        summary: 'Receive a webhook at a source path',
        description:
          'No API key: the provider signature is the authentication. 202 {id, received_at} once the event is durably committed; 200 with the original id for a replay of a stored delivery; ' +
          '200 {challenge} for Slack url_verification; 401 when the signature is missing, malformed, stale or wrong (nothing stored); 404 for an unknown path; 413 above HERALD_HOOK_BODY_LIMIT.',
        tags: ['broker'],
        security: [],
        params: Type.Object({ '*': Type.String({ maxLength: 300 }) }),
        response: {
          200: Type.Object({ id: Type.Optional(Type.String()), received_at: Type.Optional(Type.String()), duplicate: Type.Optional(Type.Boolean()), challenge: Type.Optional(Type.String()) }),
          202: Type.Object({ id: Type.String(), received_at: Type.String() }),
          ...problems(401, 404, 413),
        },
      },
    },
    async (request, reply) => {
      const path = `/${request.params['*']}`.replace(/\/+$/, '') || '/';
      const q = request.url.indexOf('?');
      const headers: Record<string, string | undefined> = {};
      for (const [k, v] of Object.entries(request.headers)) headers[k] = Array.isArray(v) ? v.join(', ') : v;
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      const r = await s.inbound.ingest({ path, search: q < 0 ? '' : request.url.slice(q), headers, body });
      if (r.kind === 'challenge') return reply.code(200).send({ challenge: r.challenge });
      if (r.kind === 'replay') return reply.code(200).send({ id: r.id, received_at: iso(r.received_at)!, duplicate: true });
      return reply.code(202).send({ id: r.id, received_at: iso(r.received_at)! });
    },
  );
}

export const brokerModule: RouteModule = { name: 'broker', prefix: '/v1', auth: 'principal', apiRole: true, routes: brokerRoutes };
export const hooksModule: RouteModule = { name: 'hooks', prefix: '/hooks', auth: 'none', apiRole: true, routes: hookRoutes };
