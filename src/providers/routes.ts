// Provider credentials of the workspace (admin scope), one resource per vendor.
//   PUT    /v1/providers/{provider}         {config, base_url?}: create or replace. The config is
//                                            validated by the provider's own schema (in the OpenAPI
//                                            document per provider), sealed at rest, never logged.
//   GET    /v1/providers                    every provider: configured or not, masked config, health
//   GET    /v1/providers/{provider}         one provider
//   DELETE /v1/providers/{provider}
//   POST   /v1/providers/{provider}/test    {to, device?}: one real attempt through the channel to a
//                                            recipient, answered with the vendor's verdict (no retry)
//   GET    /v1/providers/webpush/public-key the VAPID public key browsers subscribe with (read scope)
// Health: whether this node's lane of the provider's channel has its circuit closed, half-open or
// open (null on nodes without workers).

import { Type, type Static } from 'typebox';
import { PROVIDER_NAMES, type ProviderName } from '../channels/channel.ts';
import type { StoredProvider } from './service.ts';
import { PROVIDER_CHANNEL } from './test-send.ts';
import { PROVIDERS } from '../channels/registry.ts';
import { generateVapidKeys } from '../channels/webpush.ts';
import { Problem } from '../errors.ts';
import { actorOf } from '../auth/principal.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { iso, problems, RecipientId } from '../http/schemas.ts';

const BaseUrl = Type.String({ pattern: '^https?://[^\\s]+$', maxLength: 2048, description: "Overrides the vendor's endpoint (regional endpoints, proxies, tests)" });

const ProviderView = Type.Object({
  provider: Type.String(),
  channel: Type.String(),
  configured: Type.Boolean(),
  config: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { description: 'Secret fields masked' }),
  base_url: Type.Union([Type.String(), Type.Null()]),
  circuit: Type.Union([Type.Literal('closed'), Type.Literal('half_open'), Type.Literal('open'), Type.Null()], { description: "This node's circuit for the channel; null without workers here" }),
  created_at: Type.Union([Type.String(), Type.Null()]),
  updated_at: Type.Union([Type.String(), Type.Null()]),
});

const ProviderParams = Type.Object({ provider: Type.Union(PROVIDER_NAMES.map((p) => Type.Literal(p))) });

const TestBody = Type.Object(
  {
    to: RecipientId,
    device: Type.Optional(Type.String({ pattern: '^dev_[0-9A-Z]{26}$', description: 'For push providers: the device to test (default: the newest active one)' })),
    title: Type.Optional(Type.String({ maxLength: 250, default: 'Herald test' })),
    body: Type.Optional(Type.String({ maxLength: 1000, default: 'This is a test message from Herald.' })),
  },
  { additionalProperties: false },
);

const TestResult = Type.Object({
  ok: Type.Boolean(),
  provider_message_id: Type.Optional(Type.String()),
  outcome: Type.Optional(Type.String({ description: 'retryable, permanent or rate_limited' })),
  error_class: Type.Optional(Type.String()),
  error: Type.Optional(Type.String()),
  http_status: Type.Optional(Type.Integer()),
});

/** A copy of `config` with secret fields (and URL passwords) masked. */
export function maskConfig(provider: ProviderName, config: Record<string, unknown>): Record<string, unknown> {
  const secret = new Set(PROVIDERS[provider].secretFields);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(config)) {
    if (!secret.has(k)) out[k] = v;
    else if (typeof v === 'string' && /^[a-z]+:\/\//.test(v)) out[k] = maskUrlPassword(v);
    else if (typeof v === 'string') out[k] = v.length >= 20 ? `…${v.slice(-4)}` : '…';
    else out[k] = '…';
  }
  return out;
}

function maskUrlPassword(text: string): string {
  try {
    const u = new URL(text);
    if (u.password) u.password = '****';
    return u.href;
  } catch {
    return '…';
  }
}

function providerRoutes(app: Api, s: Services): void {
  const view = (provider: ProviderName, stored: StoredProvider | undefined): Static<typeof ProviderView> => {
    const channel = PROVIDER_CHANNEL[provider];
    const circuit = (s.pool?.circuits()[channel] ?? null) as Static<typeof ProviderView>['circuit'];
    return {
      provider,
      channel,
      configured: !!stored,
      config: stored ? maskConfig(provider, stored.config) : null,
      base_url: stored?.baseUrl ?? null,
      circuit,
      created_at: stored ? iso(stored.createdAt) : null,
      updated_at: stored ? iso(stored.updatedAt) : null,
    };
  };

  for (const provider of PROVIDER_NAMES) {
    app.put(
      `/providers/${provider}`,
      {
        config: { scope: 'admin' },
        schema: {
          summary: `Configure ${provider}`,
          tags: ['providers'],
          body: Type.Object({ config: PROVIDERS[provider].config, base_url: Type.Optional(Type.Union([BaseUrl, Type.Null()])) }, { additionalProperties: false }),
          response: { 200: ProviderView, 201: ProviderView, ...problems(401, 403, 422) },
        },
      },
      async (request, reply) => {
        const ws = request.principal.workspaceId;
        const config = { ...(request.body.config as Record<string, unknown>) };
        if (provider === 'webpush') {
          const hasPublic = config.vapid_public_key !== undefined;
          if (hasPublic !== (config.vapid_private_key !== undefined)) {
            throw new Problem('validation_failed', 'body.config: give both VAPID keys, or neither to have Herald generate a pair', {
              errors: [{ path: 'body.config', message: 'give both vapid_public_key and vapid_private_key, or neither' }],
            });
          }
          if (!hasPublic) {
            const keys = generateVapidKeys();
            config.vapid_public_key = keys.publicKey;
            config.vapid_private_key = keys.privateKey;
          }
        }
        const problem = PROVIDERS[provider].check?.(config);
        if (problem) throw new Problem('validation_failed', `body.config: ${problem}`, { errors: [{ path: 'body.config', message: problem }] });
        const { created, stored } = await s.providers.put(ws, provider, config, request.body.base_url ?? null);
        await s.audit.record({ workspaceId: ws, actor: actorOf(request.principal), action: 'provider.put', target: provider, reason: null, details: { base_url: stored.baseUrl } });
        return reply.code(created ? 201 : 200).send(view(provider, stored));
      },
    );
  }

  // Every known provider has its own PUT route above; this one answers the rest.
  app.put(
    '/providers/:provider',
    { config: { scope: 'admin' }, schema: { hide: true, params: Type.Object({ provider: Type.String({ maxLength: 64 }) }) } },
    async (request) => {
      throw new Problem('not_found', `No provider "${request.params.provider}" (providers: ${PROVIDER_NAMES.join(', ')})`);
    },
  );

  app.get(
    '/providers',
    {
      config: { scope: 'read' },
      schema: { summary: 'List providers and their health', tags: ['providers'], response: { 200: Type.Object({ data: Type.Array(ProviderView) }), ...problems(401, 403) } },
    },
    async (request) => {
      const stored = new Map((await s.providers.list(request.principal.workspaceId)).map((p) => [p.provider, p]));
      return { data: PROVIDER_NAMES.map((p) => view(p, stored.get(p))) };
    },
  );

  app.get(
    '/providers/webpush/public-key',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'The VAPID public key for PushManager.subscribe({applicationServerKey})',
        tags: ['providers'],
        response: { 200: Type.Object({ public_key: Type.String() }), ...problems(401, 403, 404) },
      },
    },
    async (request) => {
      const stored = await s.providers.get(request.principal.workspaceId, 'webpush');
      if (!stored) throw new Problem('not_found', 'Web Push is not configured (PUT /v1/providers/webpush)');
      return { public_key: String(stored.config.vapid_public_key) };
    },
  );

  app.get(
    '/providers/:provider',
    {
      config: { scope: 'read' },
      schema: { summary: 'Read a provider', tags: ['providers'], params: ProviderParams, response: { 200: ProviderView, ...problems(401, 403) } },
    },
    async (request) => view(request.params.provider, await s.providers.get(request.principal.workspaceId, request.params.provider)),
  );

  app.delete(
    '/providers/:provider',
    {
      config: { scope: 'admin' },
      schema: { summary: 'Remove a provider', tags: ['providers'], params: ProviderParams, response: { 204: Type.Null(), ...problems(401, 403, 404) } },
    },
    async (request, reply) => {
      const ws = request.principal.workspaceId;
      if (!(await s.providers.delete(ws, request.params.provider))) throw new Problem('not_found', `${request.params.provider} is not configured`);
      await s.audit.record({ workspaceId: ws, actor: actorOf(request.principal), action: 'provider.delete', target: request.params.provider, reason: null, details: null });
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/providers/:provider/test',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Send a test message through a provider',
        description: "One attempt, straight to the vendor (not queued, not retried), answered with the vendor's verdict.",
        tags: ['providers'],
        params: ProviderParams,
        body: TestBody,
        response: { 200: TestResult, ...problems(401, 403, 404, 422) },
      },
    },
    async (request) => {
      return s.providerTests.run(request.principal.workspaceId, request.params.provider, request.body);
    },
  );
}

export const providersModule: RouteModule = { name: 'providers', prefix: '/v1', auth: 'principal', apiRole: true, routes: providerRoutes };
