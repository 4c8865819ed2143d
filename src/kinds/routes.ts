// Notification kinds: what a kind of notification means for delivery.
//   GET /v1/kinds          list by name, keyset-paged (read scope); includes the default kinds
//   GET /v1/kinds/{kind}   one (read scope)
//   PUT /v1/kinds/{kind}   create (201) or replace (200) (admin scope):
//     {mandatory, channels, quiet_hours, routing, rate_limits, throttle?, digest?, blackout?}
// Rules beyond the schema (422 validation_failed naming the field):
//   - `security` is always mandatory: PUT with mandatory false is refused;
//   - a mandatory kind bypasses quiet hours, so its quiet_hours must be `ignore` (the default when
//     omitted for a mandatory kind is `ignore`, else `defer`);
//   - channels and rate-limit keys are channel names (rate limits also "*": each other channel);
//   - durations (`per`, `window`) are Herald durations ("1m", "1h30m"); per 1s to 30d, window 1s to 7d.
// The default kinds (domain/kinds.ts DEFAULT_KINDS) exist in every workspace and cannot be deleted.

import { Type, type Static } from 'typebox';
import { CHANNEL_NAMES } from '../channels/channel.ts';
import { formatDuration, parseDuration } from '../domain/duration.ts';
import { Problem, type FieldError } from '../errors.ts';
import { actorOf } from '../auth/principal.ts';
import { ALWAYS_MANDATORY, DEFAULT_KINDS, type Kind, type KindPolicy, type RateLimit } from '../domain/kinds.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { Cursor, iso, KIND_PATTERN, keyPageOf, keyPageRequest, Limit, problems } from '../http/schemas.ts';

export const KindName = Type.String({ pattern: KIND_PATTERN, description: 'The kind, e.g. security, transactional, marketing, order.shipped' });

const MAX_PER_MS = 30 * 86_400_000;
const MAX_WINDOW_MS = 7 * 86_400_000;

const Channel = Type.Union(CHANNEL_NAMES.map((c) => Type.Literal(c)));
const QuietHoursPolicy = Type.Union([Type.Literal('defer'), Type.Literal('drop'), Type.Literal('ignore')], {
  description: 'During the recipient\'s quiet hours: send at their end (defer), not at all (drop), or anyway (ignore)',
});
const Routing = Type.Union([Type.Literal('all'), Type.Literal('first')], {
  description: 'all: every allowed channel; first: the highest-priority reachable channel, the next only if that delivery ends undelivered or exhausted',
});
const Throttle = Type.Union([Type.Literal('defer'), Type.Literal('drop')], { description: 'What happens to deliveries beyond a rate limit' });
const Blackout = Type.Union([Type.Literal('defer'), Type.Literal('fallback')], { description: "During a channel's blackout window: wait for its end, or use another channel" });

const RateLimitInput = Type.Object(
  {
    limit: Type.Integer({ minimum: 1, maximum: 1_000_000 }),
    per: Type.String({ maxLength: 20, description: 'A duration, e.g. 1m, 1h, 1d' }),
  },
  { additionalProperties: false },
);
const RateLimitsInput = Type.Record(Type.String(), RateLimitInput, {
  maxProperties: CHANNEL_NAMES.length + 1,
  description: 'Per recipient and channel; the key is a channel or "*" (every channel without its own entry)',
});
const DigestInput = Type.Object(
  {
    window: Type.String({ maxLength: 20, description: 'How long notifications are gathered, e.g. 1h' }),
    key: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Notifications with the same key are digested together (default: the kind)' })),
  },
  { additionalProperties: false },
);

const KindInput = Type.Object(
  {
    mandatory: Type.Boolean({ description: 'Bypasses opt-out and quiet hours' }),
    channels: Type.Union([Type.Array(Channel, { minItems: 1, uniqueItems: true }), Type.Null()], { description: 'In priority order; null: every channel the recipient has' }),
    quiet_hours: Type.Optional(QuietHoursPolicy),
    routing: Routing,
    rate_limits: Type.Union([RateLimitsInput, Type.Null()]),
    throttle: Type.Optional(Throttle),
    digest: Type.Optional(Type.Union([DigestInput, Type.Null()])),
    blackout: Type.Optional(Blackout),
  },
  { additionalProperties: false },
);

const KindView = Type.Object({
  kind: Type.String(),
  mandatory: Type.Boolean(),
  channels: Type.Union([Type.Array(Type.String()), Type.Null()]),
  quiet_hours: Type.String(),
  routing: Type.String(),
  rate_limits: Type.Union([Type.Record(Type.String(), Type.Object({ limit: Type.Integer(), per: Type.String() })), Type.Null()]),
  throttle: Type.String(),
  digest: Type.Union([Type.Object({ window: Type.String(), key: Type.Optional(Type.String()) }), Type.Null()]),
  blackout: Type.String(),
  default: Type.Boolean({ description: 'One of the kinds every workspace has' }),
  created_at: Type.String(),
  updated_at: Type.String(),
});

const Params = Type.Object({ kind: KindName });

export function kindView(k: Kind): Static<typeof KindView> {
  return {
    kind: k.kind,
    mandatory: k.mandatory,
    channels: k.channels,
    quiet_hours: k.quiet_hours,
    routing: k.routing,
    rate_limits: k.rate_limits && Object.fromEntries(Object.entries(k.rate_limits).map(([c, r]) => [c, { limit: r.limit, per: formatDuration(r.per_ms) }])),
    throttle: k.throttle,
    digest: k.digest && { window: formatDuration(k.digest.window_ms), ...(k.digest.key !== undefined && { key: k.digest.key }) },
    blackout: k.blackout,
    default: Object.hasOwn(DEFAULT_KINDS, k.kind),
    created_at: iso(k.created_at)!,
    updated_at: iso(k.updated_at)!,
  };
}

/** The policy a PUT body describes; throws 422 listing every rule it breaks. */
function toPolicy(kind: string, input: Static<typeof KindInput>): KindPolicy {
  const errors: FieldError[] = [];
  const duration = (path: string, text: string, max: number): number => {
    let ms = 0;
    try {
      ms = parseDuration(text);
    } catch (err) {
      errors.push({ path, message: (err as Error).message });
      return 0;
    }
    if (ms < 1000 || ms > max) errors.push({ path, message: `must be between 1s and ${formatDuration(max)}` });
    return ms;
  };
  if (ALWAYS_MANDATORY.includes(kind) && !input.mandatory) {
    errors.push({ path: 'body.mandatory', message: `must be true: "${kind}" is always mandatory` });
  }
  const quietHours = input.quiet_hours ?? (input.mandatory ? 'ignore' : 'defer');
  if (input.mandatory && quietHours !== 'ignore') {
    errors.push({ path: 'body.quiet_hours', message: 'must be "ignore" for a mandatory kind (mandatory kinds bypass quiet hours)' });
  }
  let rateLimits: Record<string, RateLimit> | null = null;
  if (input.rate_limits) {
    rateLimits = {};
    for (const [channel, r] of Object.entries(input.rate_limits)) {
      if (channel !== '*' && !(CHANNEL_NAMES as readonly string[]).includes(channel)) {
        errors.push({ path: `body.rate_limits.${channel}`, message: `is not a channel (${CHANNEL_NAMES.join(', ')}) or "*"` });
        continue;
      }
      rateLimits[channel] = { limit: r.limit, per_ms: duration(`body.rate_limits.${channel}.per`, r.per, MAX_PER_MS) };
    }
  }
  const digest = input.digest ? { window_ms: duration('body.digest.window', input.digest.window, MAX_WINDOW_MS), ...(input.digest.key !== undefined && { key: input.digest.key }) } : null;
  if (errors.length) throw new Problem('validation_failed', errors.map((e) => `${e.path} ${e.message}`).join('; '), { errors });
  return {
    mandatory: input.mandatory,
    channels: input.channels,
    quiet_hours: quietHours,
    routing: input.routing,
    rate_limits: rateLimits,
    throttle: input.throttle ?? 'defer',
    digest,
    blackout: input.blackout ?? 'defer',
  };
}

function kindRoutes(app: Api, s: Services): void {
  app.get(
    '/kinds',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'List notification kinds',
        tags: ['kinds'],
        querystring: Type.Object({ cursor: Type.Optional(Cursor), limit: Type.Optional(Limit) }, { additionalProperties: false }),
        response: { 200: Type.Object({ data: Type.Array(KindView), next_cursor: Type.Union([Type.String(), Type.Null()]) }), ...problems(400, 401, 403) },
      },
    },
    async (request) => {
      const { after, limit } = keyPageRequest(request.query, new RegExp(KIND_PATTERN));
      const rows = await s.kinds.list(request.principal.workspaceId, { after, limit: limit + 1 });
      const page = keyPageOf(rows, limit, (k) => k.kind);
      return { data: page.rows.map(kindView), next_cursor: page.next_cursor };
    },
  );

  app.get(
    '/kinds/:kind',
    {
      config: { scope: 'read' },
      schema: { summary: 'Read a notification kind', tags: ['kinds'], params: Params, response: { 200: KindView, ...problems(401, 403, 404) } },
    },
    async (request) => {
      const kind = await s.kinds.get(request.principal.workspaceId, request.params.kind);
      if (!kind) throw new Problem('not_found', `No kind "${request.params.kind}"`);
      return kindView(kind);
    },
  );

  app.put(
    '/kinds/:kind',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Create or replace a notification kind',
        tags: ['kinds'],
        params: Params,
        body: KindInput,
        response: { 200: KindView, 201: KindView, ...problems(401, 403, 422) },
      },
    },
    async (request, reply) => {
      const ws = request.principal.workspaceId;
      const policy = toPolicy(request.params.kind, request.body);
      const { kind, created } = await s.kinds.put(ws, actorOf(request.principal), request.params.kind, policy, request.body);
      return reply.code(created ? 201 : 200).send(kindView(kind));
    },
  );
}

export const kindsModule: RouteModule = { name: 'kinds', prefix: '/v1', auth: 'principal', apiRole: true, routes: kindRoutes };
