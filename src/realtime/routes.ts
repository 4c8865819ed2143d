// Real-time API (docs/realtime.md).
//   GET  /v1/realtime/settings   (admin) the organization's token keys and settings; generates the
//                                first HS256 secret; secrets are shown whole (the backend signs with them)
//   PUT  /v1/realtime/settings   (admin) {rotate_secret?, overlap?, public_keys?, jwks_url?, direct_messages?}
//   POST /v1/realtime/tokens     (send) {recipient, ttl?, rooms?} -> 201 {token, expires_at}
//   POST /v1/realtime/publish    (send) {channel: "room:<name>", data} -> {channel, offset, epoch}
//   GET  /v1/realtime            the WebSocket (realtime/gateway.ts); without an Upgrade: 426
//   GET  /v1/realtime/sse        the same protocol as Server-Sent Events (token by ?token= or
//                                Bearer; ?channel= subscribes; Last-Event-ID or ?since= recovers)
//   POST /v1/realtime/send       {session, frame}: a client frame for an SSE session -> 202
//   GET  /v1/presence?ids=a,b    (read) {data: [{id, online}]}
//   GET  /v1/recipients/{id}/inbox  (read) a recipient's inbox items, newest first
// For the recipient, with a connection token (Authorization: Bearer <token>):
//   GET  /v1/me/inbox?status=unread|read|archived|all&cursor=   items, newest first (default all)
//   GET  /v1/me/inbox/count      {unread}
//   POST /v1/me/inbox/{id}/read, /v1/me/inbox/{id}/archive, /v1/me/inbox/read-all
//   GET  /v1/me/conversations/{peer}?cursor=   direct messages with peer, newest first

import { Type } from 'typebox';
import { Problem, type FieldError } from '../errors.ts';
import { actorOf, authenticateRecipient, fromAuthorization, type RecipientPrincipal } from '../auth/principal.ts';
import { parseDuration } from '../domain/duration.ts';
import { decodeCursor, isRecipientId, MAX_CURSOR_CHANNELS, MAX_IDS, parseClientFrame, ROOM_NAME, type Since } from '../domain/realtime-protocol.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { Cursor, iso, Limit, problems, RecipientId } from '../http/schemas.ts';
import { InvalidKeyError, type RealtimeSettingsView, type Verified } from './service.ts';
import { MAX_FRAME_BYTES } from './gateway.ts';
import { SseTransport } from './sse.ts';

const ROOM_PATTERN = ROOM_NAME.source;
const MAX_TTL_SEC = 30 * 86_400;

const SettingsView = Type.Object({
  secrets: Type.Array(
    Type.Object({
      kid: Type.String({ description: 'Put it in the JWT header as "kid"' }),
      secret: Type.String({ description: 'HS256 secret (its UTF-8 bytes are the key)' }),
      created_at: Type.String(),
      expires_at: Type.Union([Type.String(), Type.Null()], { description: 'null: current; else it verifies until then (rotation overlap)' }),
    }),
  ),
  public_keys: Type.Array(Type.Object({ kid: Type.String(), alg: Type.String(), created_at: Type.String() })),
  jwks_url: Type.Union([Type.String(), Type.Null()]),
  direct_messages: Type.Boolean(),
  updated_at: Type.Union([Type.String(), Type.Null()]),
});

const SettingsInput = Type.Object(
  {
    rotate_secret: Type.Optional(Type.Boolean({ description: 'true: generate a new current HS256 secret' })),
    overlap: Type.Optional(Type.String({ maxLength: 16, description: 'With rotate_secret: how long the previous secrets keep verifying, e.g. 1h (default 1h, 0s: at once)' })),
    public_keys: Type.Optional(
      Type.Array(
        Type.Object(
          {
            kid: Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$' }),
            alg: Type.Union([Type.Literal('ES256'), Type.Literal('RS256')]),
            pem: Type.String({ maxLength: 4096, description: 'SPKI PEM public key' }),
          },
          { additionalProperties: false },
        ),
        { maxItems: 20, description: 'Replaces the registered public keys' },
      ),
    ),
    jwks_url: Type.Optional(Type.Union([Type.String({ maxLength: 2048 }), Type.Null()], { description: 'https URL of a JWKS whose keys verify ES256/RS256 tokens; null: none' })),
    direct_messages: Type.Optional(Type.Boolean({ description: 'Whether recipients may message each other' })),
  },
  { additionalProperties: false },
);

const Rooms = Type.Array(Type.String({ pattern: ROOM_PATTERN }), { maxItems: 100, description: 'Room names (without "room:") the token grants' });

const TokenInput = Type.Object(
  {
    recipient: RecipientId,
    ttl: Type.Optional(Type.Integer({ minimum: 1, maximum: MAX_TTL_SEC, default: 3600, description: 'Seconds until it expires' })),
    rooms: Type.Optional(Rooms),
  },
  { additionalProperties: false },
);

const PublishInput = Type.Object(
  {
    channel: Type.String({ pattern: `^room:${ROOM_PATTERN.slice(1)}`, description: 'room:<name>' }),
    data: Type.Unknown({ description: 'Any JSON value' }),
  },
  { additionalProperties: false, required: ['channel', 'data'] },
);

const view = (v: RealtimeSettingsView) => ({
  secrets: v.secrets.map((s) => ({ kid: s.kid, secret: s.secret, created_at: iso(s.created_at)!, expires_at: iso(s.expires_at) })),
  public_keys: v.public_keys.map((k) => ({ kid: k.kid, alg: k.alg, created_at: iso(k.created_at)! })),
  jwks_url: v.jwks_url,
  direct_messages: v.direct_messages,
  updated_at: iso(v.updated_at),
});

function realtimeRoutes(app: Api, s: Services): void {
  app.get(
    '/realtime/settings',
    { config: { scope: 'admin' }, schema: { summary: 'Read the real-time settings and token keys', tags: ['realtime'], response: { 200: SettingsView, ...problems(401, 403) } } },
    async (request) => view(await s.realtime.settings(request.principal.workspaceId)),
  );

  app.put(
    '/realtime/settings',
    {
      config: { scope: 'admin' },
      schema: { summary: 'Rotate the HS256 secret, register public keys or a JWKS URL', tags: ['realtime'], body: SettingsInput, response: { 200: SettingsView, ...problems(401, 403, 422) } },
    },
    async (request) => {
      const b = request.body;
      const errors: FieldError[] = [];
      let overlapMs = 3_600_000;
      if (b.overlap !== undefined) {
        try {
          overlapMs = parseDuration(b.overlap);
          if (overlapMs > 30 * 86_400_000) errors.push({ path: 'body.overlap', message: 'must be at most 30d' });
        } catch {
          errors.push({ path: 'body.overlap', message: 'must be a duration such as 1h or 30m' });
        }
        if (!b.rotate_secret) errors.push({ path: 'body.overlap', message: 'is only meaningful with rotate_secret: true' });
      }
      if (b.jwks_url) {
        let u: URL | undefined;
        try {
          u = new URL(b.jwks_url);
        } catch {
          errors.push({ path: 'body.jwks_url', message: 'is not a URL' });
        }
        if (u && u.protocol !== 'https:' && u.protocol !== 'http:') errors.push({ path: 'body.jwks_url', message: 'must be an http or https URL' });
        if (u && (u.username || u.password)) errors.push({ path: 'body.jwks_url', message: 'must not contain credentials' });
      }
      const kids = new Set<string>();
      for (const [i, k] of (b.public_keys ?? []).entries()) {
        if (kids.has(k.kid)) errors.push({ path: `body.public_keys.${i}.kid`, message: 'is used twice' });
        kids.add(k.kid);
      }
      if (errors.length) throw new Problem('validation_failed', errors.map((e) => `${e.path} ${e.message}`).join('; '), { errors });
      try {
        const saved = await s.realtime.put(
          request.principal.workspaceId,
          actorOf(request.principal),
          {
            ...(b.rotate_secret && { rotate: { overlapMs } }),
            ...(b.public_keys && { publicKeys: b.public_keys }),
            ...(b.jwks_url !== undefined && { jwksUrl: b.jwks_url === '' ? null : b.jwks_url }),
            ...(b.direct_messages !== undefined && { directMessages: b.direct_messages }),
          },
          b,
        );
        return view(saved);
      } catch (err) {
        if (err instanceof InvalidKeyError) throw new Problem('validation_failed', err.message, { errors: [{ path: 'body.public_keys', message: err.message }] });
        throw err;
      }
    },
  );

  app.post(
    '/realtime/tokens',
    {
      config: { scope: 'send' },
      schema: {
        summary: "Mint a recipient's connection token",
        tags: ['realtime'],
        body: TokenInput,
        response: { 201: Type.Object({ token: Type.String(), expires_at: Type.String() }), ...problems(401, 403, 422) },
      },
    },
    async (request, reply) => {
      const b = request.body;
      const t = await s.realtime.mintToken(request.principal.workspaceId, b.recipient, b.ttl ?? 3600, b.rooms);
      return reply.code(201).send({ token: t.token, expires_at: new Date(t.expiresAt).toISOString() });
    },
  );

  app.post(
    '/realtime/publish',
    {
      config: { scope: 'send' },
      schema: {
        summary: 'Publish to a room',
        tags: ['realtime'],
        body: PublishInput,
        response: { 200: Type.Object({ channel: Type.String(), offset: Type.Integer(), epoch: Type.String() }), ...problems(401, 403, 422, 503) },
      },
    },
    async (request) => {
      const b = request.body as { channel: string; data: unknown };
      if (b.data === undefined) throw new Problem('validation_failed', 'body.data is required', { errors: [{ path: 'body.data', message: 'is required' }] });
      let r;
      try {
        r = await s.realtime.publish(request.principal.workspaceId, b.channel, b.data);
      } catch (err) {
        request.log.warn({ err: (err as Error).message }, 'realtime publish failed');
        throw new Problem('unavailable', 'The publication could not be stored; retry later', { headers: { 'retry-after': '1' } });
      }
      return { channel: b.channel, offset: r.offset, epoch: r.epoch };
    },
  );

  app.get(
    '/presence',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Whether recipients have a live real-time session',
        tags: ['realtime'],
        querystring: Type.Object({ ids: Type.String({ minLength: 1, maxLength: 13_000, description: `Comma-separated recipient ids, at most ${MAX_IDS}` }) }, { additionalProperties: false }),
        response: { 200: Type.Object({ data: Type.Array(Type.Object({ id: Type.String(), online: Type.Boolean() })) }), ...problems(401, 403, 422, 503) },
      },
    },
    async (request) => {
      const ids = [...new Set(request.query.ids.split(','))];
      const bad = ids.findIndex((id) => !isRecipientId(id));
      if (bad >= 0) throw new Problem('validation_failed', `query.ids: "${ids[bad]!.slice(0, 64)}" is not a recipient id`, { errors: [{ path: 'query.ids', message: 'must be comma-separated recipient ids' }] });
      if (ids.length > MAX_IDS) throw new Problem('validation_failed', `query.ids: at most ${MAX_IDS} ids`, { errors: [{ path: 'query.ids', message: `must hold at most ${MAX_IDS} ids` }] });
      let states: boolean[];
      try {
        states = await s.gateway.online(request.principal.workspaceId, ids);
      } catch (err) {
        request.log.warn({ err: (err as Error).message }, 'presence read failed');
        throw new Problem('unavailable', 'Presence could not be read; retry later', { headers: { 'retry-after': '1' } });
      }
      return { data: ids.map((id, i) => ({ id, online: states[i]! })) };
    },
  );
}

const CHANNEL_PATTERN = `^(inbox|room:${ROOM_PATTERN.slice(1, -1)})$`;
const SESSION_PATTERN = '^[A-Za-z0-9_-]{12}$';

/** The connection token or access token of an SSE or send request: `?token=` or `Authorization: Bearer`. */
async function verifyToken(s: Services, query: string | undefined, authorization: string | undefined): Promise<Verified> {
  const m = authorization ? /^Bearer\s+(\S+)\s*$/i.exec(authorization) : null;
  const token = query ?? m?.[1];
  const headers = { 'www-authenticate': 'Bearer' };
  if (!token) throw new Problem('unauthorized', 'Send a connection token as ?token= or "Authorization: Bearer <token>" (POST /v1/realtime/tokens)', { headers });
  const v = await s.realtime.verify(token);
  if ('code' in v) throw new Problem('unauthorized', `The token is refused (${v.code}): ${v.reason}`, { headers, extensions: { close_code: v.code } });
  return v;
}

function gatewayRoutes(app: Api, s: Services): void {
  app.get(
    '/realtime/sse',
    {
      schema: {
        summary: 'The real-time protocol as Server-Sent Events (docs/realtime.md)',
        tags: ['realtime'],
        querystring: Type.Object(
          {
            token: Type.Optional(Type.String({ maxLength: 8192, description: 'A connection token or access token; or send it as Authorization: Bearer' })),
            channel: Type.Optional(Type.Array(Type.String({ pattern: CHANNEL_PATTERN }), { maxItems: MAX_CURSOR_CHANNELS, description: 'Channels to subscribe to: inbox or room:<name>' })),
            since: Type.Optional(Type.String({ maxLength: 16_384, description: 'A cursor (an event id this stream gave) to recover from; Last-Event-ID wins over it' })),
          },
          { additionalProperties: false },
        ),
        response: { 200: Type.String({ description: 'text/event-stream' }), ...problems(400, 401, 422, 503) },
      },
    },
    async (request, reply) => {
      const q = request.query;
      const lastEventId = request.headers['last-event-id'];
      const cursor = typeof lastEventId === 'string' && lastEventId !== '' ? lastEventId : q.since;
      const positions = cursor === undefined ? new Map<string, Since>() : decodeCursor(cursor);
      if (!positions) throw new Problem('invalid_cursor', 'The recovery cursor (Last-Event-ID or since) is not an event id this stream gave');
      const v = await verifyToken(s, q.token, request.headers.authorization);
      if (s.state.stopping) throw new Problem('unavailable', 'The server is shutting down; retry on another instance or later', { headers: { 'retry-after': '1' } });
      const subscribe: { channel: string; since?: Since }[] = [...positions].map(([channel, since]) => ({ channel, since }));
      for (const channel of new Set(q.channel ?? [])) if (!positions.has(channel)) subscribe.push({ channel });
      reply.hijack();
      const t = new SseTransport(reply.raw);
      const session = s.gateway.openSse(t, v, subscribe);
      reply.raw.on('close', () => s.gateway.ended(session));
    },
  );

  app.post(
    '/realtime/send',
    {
      bodyLimit: MAX_FRAME_BYTES + 256,
      schema: {
        summary: "A client frame for an SSE session; the answer comes on the session's stream",
        tags: ['realtime'],
        body: Type.Object(
          {
            session: Type.String({ pattern: SESSION_PATTERN, description: 'The session of the stream (its welcome frame)' }),
            frame: Type.Object({}, { additionalProperties: true, description: 'A client frame (docs/realtime.md), not auth' }),
          },
          { additionalProperties: false },
        ),
        response: { 202: Type.Object({ session: Type.String() }), ...problems(400, 401, 403, 404, 413, 422) },
      },
    },
    async (request, reply) => {
      const v = await verifyToken(s, undefined, request.headers.authorization);
      const b = request.body;
      const text = JSON.stringify(b.frame);
      const frame = parseClientFrame(text);
      if ('error' in frame) throw new Problem('validation_failed', `body.frame: ${frame.error.message}`, { errors: [{ path: 'body.frame', message: frame.error.message }], extensions: { frame_error: frame.error.code } });
      if (frame.type === 'auth') throw new Problem('validation_failed', 'body.frame: an SSE stream is authenticated by its own token; send "refresh" to renew it', { errors: [{ path: 'body.frame.type', message: 'auth is not sent over /send' }] });
      const refused = await s.gateway.clientFrame(b.session, v.principal, text);
      if (refused === 'no_session') throw new Problem('not_found', 'No real-time session with this id is open');
      if (refused === 'other_principal') throw new Problem('forbidden', "The session belongs to another recipient or user than the token's");
      return reply.code(202).send({ session: b.session });
    },
  );


  app.get(
    '/realtime',
    {
      schema: {
        summary: 'The real-time WebSocket (send an Upgrade request; docs/realtime.md)',
        tags: ['realtime'],
        querystring: Type.Object({ token: Type.Optional(Type.String({ maxLength: 8192, description: 'A connection token or access token; or send it in the first frame' })) }),
        response: { ...problems(400, 422, 426) },
      },
    },
    async () => {
      throw new Problem('upgrade_required', 'GET /v1/realtime is a WebSocket endpoint: connect with a WebSocket client', { headers: { upgrade: 'websocket', connection: 'Upgrade' } });
    },
  );
}

const InboxItem = Type.Object({
  id: Type.String(),
  notification_id: Type.Union([Type.String(), Type.Null()]),
  kind: Type.Union([Type.String(), Type.Null()]),
  title: Type.Union([Type.String(), Type.Null()]),
  body: Type.Union([Type.String(), Type.Null()]),
  data: Type.Unknown(),
  action_url: Type.Union([Type.String(), Type.Null()]),
  status: Type.Union([Type.Literal('unseen'), Type.Literal('seen'), Type.Literal('read'), Type.Literal('archived')]),
  created_at: Type.String(),
  seen_at: Type.Union([Type.String(), Type.Null()]),
  read_at: Type.Union([Type.String(), Type.Null()]),
  archived_at: Type.Union([Type.String(), Type.Null()]),
});
const InboxPage = Type.Object({ data: Type.Array(InboxItem), next_cursor: Type.Union([Type.String(), Type.Null()]) });
const InboxQuery = Type.Object(
  {
    status: Type.Optional(Type.Union([Type.Literal('unread'), Type.Literal('read'), Type.Literal('archived'), Type.Literal('all')], { default: 'all', description: 'unread: neither read nor archived; all: everything' })),
    cursor: Type.Optional(Cursor),
    limit: Type.Optional(Limit),
  },
  { additionalProperties: false },
);
const ITEM_ID = '^inb_[0-9A-Za-z_]{1,64}$';
const ItemParams = Type.Object({ id: Type.String({ pattern: ITEM_ID }) });
const Changed = Type.Object({ changed: Type.Integer(), unread: Type.Integer() });

function cursorOf(c: string | undefined): string | undefined {
  if (c === undefined) return undefined;
  if (!new RegExp(ITEM_ID).test(c)) throw new Problem('invalid_cursor', 'The cursor is not one this API gave');
  return c;
}

function inboxRoutes(app: Api, s: Services): void {
  app.get(
    '/recipients/:id/inbox',
    {
      config: { scope: 'read' },
      schema: { summary: "A recipient's inbox items, newest first", tags: ['realtime'], params: Type.Object({ id: RecipientId }), querystring: InboxQuery, response: { 200: InboxPage, ...problems(400, 401, 403, 404, 422) } },
    },
    async (request) => {
      const q = request.query;
      const cursor = cursorOf(q.cursor);
      if (!(await s.recipients.get(request.principal.workspaceId, request.params.id))) throw new Problem('not_found', `No recipient "${request.params.id}"`);
      const page = await s.inbox.list(request.principal.workspaceId, request.params.id, q.status ?? 'all', cursor, q.limit ?? 50);
      return { data: page.data, next_cursor: page.next };
    },
  );
}

/** /v1/me: the recipient of the request's connection token. */
function meRoutes(app: Api, s: Services): void {
  app.addHook('onRequest', async (request) => {
    const who = await authenticateRecipient(fromAuthorization(request.headers.authorization), s.realtime);
    if (who instanceof Problem) throw who;
    (request as { principal?: RecipientPrincipal }).principal = who;
  });
  const me = (request: { principal: unknown }) => request.principal as RecipientPrincipal;
  const changed = async (p: RecipientPrincipal, n: number) => ({ changed: n, unread: await s.inbox.unread(p.workspaceId, p.recipientId) });

  app.get(
    '/inbox',
    { schema: { summary: 'My inbox items, newest first (connection token)', tags: ['me'], querystring: InboxQuery, response: { 200: InboxPage, ...problems(400, 401, 422) } } },
    async (request) => {
      const p = me(request);
      const q = request.query;
      const page = await s.inbox.list(p.workspaceId, p.recipientId, q.status ?? 'all', cursorOf(q.cursor), q.limit ?? 50);
      return { data: page.data, next_cursor: page.next };
    },
  );
  app.get(
    '/inbox/count',
    { schema: { summary: 'My unread count (connection token)', tags: ['me'], response: { 200: Type.Object({ unread: Type.Integer() }), ...problems(401) } } },
    async (request) => {
      const p = me(request);
      return { unread: await s.inbox.unread(p.workspaceId, p.recipientId) };
    },
  );
  app.post(
    '/inbox/read-all',
    { schema: { summary: 'Mark all my items read (connection token)', tags: ['me'], response: { 200: Changed, ...problems(401) } } },
    async (request) => {
      const p = me(request);
      return changed(p, await s.inbox.mark(p.workspaceId, p.recipientId, undefined, 'read'));
    },
  );
  app.get(
    '/conversations/:peer',
    {
      schema: {
        summary: 'My direct messages with another recipient, newest first (connection token)',
        tags: ['me'],
        params: Type.Object({ peer: RecipientId }),
        querystring: Type.Object({ cursor: Type.Optional(Cursor), limit: Type.Optional(Limit) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            data: Type.Array(Type.Object({ id: Type.String(), from: Type.String(), to: Type.String(), body: Type.String(), client_id: Type.String(), created_at: Type.String() })),
            next_cursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...problems(400, 401, 422),
        },
      },
    },
    async (request) => {
      const p = me(request);
      const c = request.query.cursor;
      if (c !== undefined && !/^msg_[0-9A-Za-z]{1,64}$/.test(c)) throw new Problem('invalid_cursor', 'The cursor is not one this API gave');
      const page = await s.messages.history(p.workspaceId, p.recipientId, request.params.peer, c, request.query.limit ?? 50);
      return { data: page.data, next_cursor: page.next };
    },
  );
  for (const [action, state] of [['read', 'read'], ['archive', 'archived']] as const) {
    app.post(
      `/inbox/:id/${action}`,
      { schema: { summary: `Mark one of my items ${state} (connection token)`, tags: ['me'], params: ItemParams, response: { 200: Changed, ...problems(401, 404, 422) } } },
      async (request) => {
        const p = me(request);
        if (!(await s.inbox.get(p.workspaceId, p.recipientId, request.params.id))) throw new Problem('not_found', 'No such inbox item');
        return changed(p, await s.inbox.mark(p.workspaceId, p.recipientId, [request.params.id], state));
      },
    );
  }
}

export const inboxModule: RouteModule = { name: 'inbox', prefix: '/v1', auth: 'principal', apiRole: true, routes: inboxRoutes };
export const meModule: RouteModule = { name: 'me', prefix: '/v1/me', auth: 'none', apiRole: true, routes: meRoutes };
export const realtimeModule: RouteModule = { name: 'realtime', prefix: '/v1', auth: 'principal', apiRole: true, routes: realtimeRoutes };
export const realtimeGatewayModule: RouteModule = { name: 'realtime-gateway', prefix: '/v1', auth: 'none', apiRole: true, routes: gatewayRoutes };
