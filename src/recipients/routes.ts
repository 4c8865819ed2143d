// Recipients: the people (or systems) notifications go to, with their addresses per channel.
//   PUT    /v1/recipients/{id}   upsert (send scope): 201 created, 200 replaced. A webhook without
//                                a secret keeps its current secret, or gets a generated whsec_
//                                secret; the response shows it.
//   GET    /v1/recipients        list by id, keyset-paged (read scope); ?q= keeps those whose id,
//                                name or email contains it, ignoring case; masked like GET one.
//   GET    /v1/recipients/{id}   read (read scope); the webhook secret and the Slack and Discord
//                                webhook URLs (which are credentials) are masked.
// Addresses: email, phone (E.164: sms), webhook, pushover, slack, discord, kakao. Devices (push)
// are registered under the recipient (devices/routes.ts). PUT re-enables addresses a vendor
// reported gone.
//   DELETE /v1/recipients/{id}   erase personal data (send scope); unsent deliveries are skipped.

import { Type, type Static } from 'typebox';
import { generateWebhookSecret, isValidWebhookSecret } from '../domain/webhook-signature.ts';
import { isDiscordWebhookUrl } from '../channels/discord.ts';
import { isSlackWebhookUrl } from '../channels/slack.ts';
import { Problem, type FieldError } from '../errors.ts';
import type { RecipientsTable } from '../store/schema.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { Cursor, iso, keyPageOf, keyPageRequest, Limit, Nullable, Page, problems, RecipientId } from '../http/schemas.ts';

const WebhookInput = Type.Object(
  {
    url: Type.String({ maxLength: 2048, description: 'http(s) URL that receives signed POSTs' }),
    secret: Type.Optional(Type.String({ maxLength: 200, description: 'Standard Webhooks secret (whsec_…); generated if omitted' })),
  },
  { additionalProperties: false },
);

const E164 = Type.String({ pattern: '^\\+[1-9][0-9]{1,14}$', description: 'E.164 phone number, e.g. +821012345678' });
const ChatInput = Type.Object({ webhook_url: Type.String({ maxLength: 2048, description: 'The incoming-webhook URL' }) }, { additionalProperties: false });

const RecipientInput = Type.Object(
  {
    name: Nullable(Type.String({ maxLength: 200 })),
    email: Nullable(Type.String({ format: 'email', maxLength: 254 })),
    phone: Nullable(E164),
    locale: Nullable(Type.String({ maxLength: 35, description: 'BCP 47 language tag, e.g. ko-KR' })),
    timezone: Nullable(Type.String({ maxLength: 64, description: 'IANA time zone, e.g. Asia/Seoul' })),
    webhook: Nullable(WebhookInput),
    pushover: Nullable(
      Type.Object(
        {
          user_key: Type.String({ pattern: '^[A-Za-z0-9]{30}$', description: 'Pushover user or group key' }),
          device: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,25}$', description: 'Only this device of the user' })),
        },
        { additionalProperties: false },
      ),
    ),
    slack: Nullable(ChatInput),
    discord: Nullable(ChatInput),
    kakao: Nullable(Type.Object({ phone: E164 }, { additionalProperties: false })),
    metadata: Nullable(Type.Record(Type.String(), Type.Unknown())),
  },
  { additionalProperties: false },
);

const ChatView = Type.Union([Type.Object({ webhook_url: Type.String({ description: 'Masked' }) }), Type.Null()]);

const Recipient = Type.Object({
  id: Type.String(),
  name: Type.Union([Type.String(), Type.Null()]),
  email: Type.Union([Type.String(), Type.Null()]),
  phone: Type.Union([Type.String(), Type.Null()]),
  locale: Type.Union([Type.String(), Type.Null()]),
  timezone: Type.Union([Type.String(), Type.Null()]),
  webhook: Type.Union([
    Type.Object({
      url: Type.String(),
      secret: Type.String(),
      disabled_at: Type.Union([Type.String(), Type.Null()], { description: 'Set when the receiver answered 410 Gone; PUT the webhook again to re-enable it' }),
      disabled_reason: Type.Union([Type.String(), Type.Null()]),
    }),
    Type.Null(),
  ]),
  pushover: Type.Union([Type.Object({ user_key: Type.String(), device: Type.Union([Type.String(), Type.Null()]) }), Type.Null()]),
  slack: ChatView,
  discord: ChatView,
  kakao: Type.Union([Type.Object({ phone: Type.String() }), Type.Null()]),
  disabled_addresses: Type.Array(Type.String(), { description: 'Channels whose address the vendor reported gone; PUT the address again to re-enable it' }),
  metadata: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()]),
  created_at: Type.String(),
  updated_at: Type.String(),
});

const Params = Type.Object({ id: RecipientId });
const ListQuery = Type.Object(
  {
    cursor: Type.Optional(Cursor),
    limit: Type.Optional(Limit),
    q: Type.Optional(Type.String({ minLength: 1, maxLength: 200, description: 'Only recipients whose id, name or email contains this, ignoring letter case' })),
  },
  { additionalProperties: false },
);
const RECIPIENT_ID = new RegExp((RecipientId as unknown as { pattern: string }).pattern);

function recipientRoutes(app: Api, s: Services): void {
  const view = (r: RecipientsTable, secret: 'full' | 'masked'): Static<typeof Recipient> => {
    let webhook: Static<typeof Recipient>['webhook'] = null;
    if (r.webhook_url && r.webhook_secret) {
      const plain = s.secrets.open(r.webhook_secret);
      webhook = {
        url: r.webhook_url,
        secret: secret === 'full' ? plain : `${plain.slice(0, 10)}…`,
        disabled_at: iso(r.webhook_disabled_at),
        disabled_reason: r.webhook_disabled_reason,
      };
    }
    return {
      id: r.id,
      name: r.name,
      email: r.email,
      phone: r.phone,
      locale: r.locale,
      timezone: r.timezone,
      webhook,
      pushover: r.pushover_user_key ? { user_key: r.pushover_user_key, device: r.pushover_device } : null,
      slack: r.slack_webhook_url ? { webhook_url: maskUrl(s.secrets.open(r.slack_webhook_url)) } : null,
      discord: r.discord_webhook_url ? { webhook_url: maskUrl(s.secrets.open(r.discord_webhook_url)) } : null,
      kakao: r.kakao_phone ? { phone: r.kakao_phone } : null,
      disabled_addresses: r.address_disabled ? r.address_disabled.split(' ') : [],
      metadata: r.metadata ? (JSON.parse(r.metadata) as Record<string, unknown>) : null,
      created_at: iso(r.created_at)!,
      updated_at: iso(r.updated_at)!,
    };
  };

  app.put(
    '/recipients/:id',
    {
      config: { scope: 'send' },
      schema: {
        summary: 'Create or replace a recipient',
        tags: ['recipients'],
        params: Params,
        body: RecipientInput,
        response: { 200: Recipient, 201: Recipient, ...problems(401, 403, 422) },
      },
    },
    async (request, reply) => {
      const ws = request.principal.workspaceId;
      const input = request.body;
      checkRecipient(input, s.config.chatAnyHost);
      const existing = await s.recipients.get(ws, request.params.id);
      const now = Date.now();
      let sealedSecret: string | null = null;
      if (input.webhook) {
        const secret = input.webhook.secret ?? (existing?.webhook_secret ? s.secrets.open(existing.webhook_secret) : generateWebhookSecret());
        sealedSecret = s.secrets.seal(secret);
      }
      const row: RecipientsTable = {
        workspace_id: ws,
        id: request.params.id,
        name: input.name ?? null,
        email: input.email ?? null,
        phone: input.phone ?? null,
        locale: input.locale ? Intl.getCanonicalLocales(input.locale)[0]! : null,
        timezone: input.timezone ?? null,
        webhook_url: input.webhook?.url ?? null,
        webhook_secret: sealedSecret,
        webhook_disabled_at: null,
        webhook_disabled_reason: null,
        pushover_user_key: input.pushover?.user_key ?? null,
        pushover_device: input.pushover?.device ?? null,
        slack_webhook_url: input.slack ? s.secrets.seal(input.slack.webhook_url) : null,
        discord_webhook_url: input.discord ? s.secrets.seal(input.discord.webhook_url) : null,
        kakao_phone: input.kakao?.phone ?? null,
        address_disabled: null,
        metadata: input.metadata ? JSON.stringify(input.metadata) : null,
        created_at: existing?.created_at ?? now,
        updated_at: now,
      };
      const created = await s.recipients.upsert(row);
      // Created by a concurrent PUT after our read: it keeps that one's created_at.
      const raced = !created && !existing ? await s.recipients.get(ws, row.id) : undefined;
      return reply.code(created ? 201 : 200).send(view(raced ? { ...row, created_at: raced.created_at } : row, 'full'));
    },
  );

  app.get(
    '/recipients',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'List recipients',
        description: 'By id, keyset-paged: pass `next_cursor` as `cursor` for the next page (null on the last). Secrets are masked as in GET of one.',
        tags: ['recipients'],
        querystring: ListQuery,
        response: { 200: Page(Recipient), ...problems(400, 401, 403, 422) },
      },
    },
    async (request) => {
      const { after, limit } = keyPageRequest(request.query, RECIPIENT_ID);
      const rows = await s.recipients.list(request.principal.workspaceId, { after, limit: limit + 1, q: request.query.q });
      const page = keyPageOf(rows, limit, (r) => r.id);
      return { data: page.rows.map((r) => view(r, 'masked')), next_cursor: page.next_cursor };
    },
  );

  app.get(
    '/recipients/:id',
    {
      config: { scope: 'read' },
      schema: { summary: 'Read a recipient', tags: ['recipients'], params: Params, response: { 200: Recipient, ...problems(401, 403, 404) } },
    },
    async (request) => {
      const r = await s.recipients.get(request.principal.workspaceId, request.params.id);
      if (!r) throw new Problem('not_found', `No recipient "${request.params.id}"`);
      return view(r, 'masked');
    },
  );

  app.delete(
    '/recipients/:id',
    {
      config: { scope: 'send' },
      schema: {
        summary: 'Delete a recipient and erase its personal data',
        tags: ['recipients'],
        params: Params,
        response: { 204: Type.Null(), ...problems(401, 403, 404) },
      },
    },
    async (request, reply) => {
      const deleted = await s.recipients.delete(request.principal.workspaceId, request.params.id);
      if (!deleted) throw new Problem('not_found', `No recipient "${request.params.id}"`);
      return reply.code(204).send(null);
    },
  );
}

/** Checks what JSON Schema cannot: real time zones and locales, http(s) webhook URLs, secret format. */
function checkRecipient(input: Static<typeof RecipientInput>, chatAnyHost: boolean): void {
  const errors: FieldError[] = [];
  if (input.timezone) {
    try {
      new Intl.DateTimeFormat('en', { timeZone: input.timezone });
    } catch {
      errors.push({ path: 'body.timezone', message: `"${input.timezone}" is not an IANA time zone` });
    }
  }
  if (input.locale) {
    try {
      Intl.getCanonicalLocales(input.locale);
    } catch {
      errors.push({ path: 'body.locale', message: `"${input.locale}" is not a BCP 47 language tag` });
    }
  }
  const checkUrl = (path: string, text: string) => {
    let url: URL | undefined;
    try {
      url = new URL(text);
    } catch {
      errors.push({ path, message: 'is not a URL' });
    }
    if (url && url.protocol !== 'https:' && url.protocol !== 'http:') errors.push({ path, message: 'must be an http or https URL' });
    if (url && (url.username || url.password)) errors.push({ path, message: 'must not contain credentials' });
  };
  if (input.slack && !isSlackWebhookUrl(input.slack.webhook_url, { allowAnyHost: chatAnyHost })) {
    errors.push({ path: 'body.slack.webhook_url', message: `is not a Slack incoming-webhook URL (https://hooks.slack.com/services/…)${chatAnyHost ? '' : '; other hosts need HERALD_CHAT_ANY_HOST=true'}` });
  }
  if (input.discord && !isDiscordWebhookUrl(input.discord.webhook_url, { allowAnyHost: chatAnyHost })) {
    errors.push({ path: 'body.discord.webhook_url', message: `is not a Discord webhook URL (https://discord.com/api/webhooks/{id}/{token})${chatAnyHost ? '' : '; other hosts need HERALD_CHAT_ANY_HOST=true'}` });
  }
  if (input.webhook) {
    checkUrl('body.webhook.url', input.webhook.url);
    if (input.webhook.secret !== undefined && !isValidWebhookSecret(input.webhook.secret)) {
      errors.push({ path: 'body.webhook.secret', message: 'must be "whsec_" followed by base64 of 24 to 64 bytes' });
    }
  }
  if (errors.length) throw new Problem('validation_failed', errors.map((e) => `${e.path} ${e.message}`).join('; '), { errors });
}

/** A credential URL for display: scheme, host and the start of the path. */
function maskUrl(text: string): string {
  try {
    const u = new URL(text);
    return `${u.protocol}//${u.host}${u.pathname.slice(0, 12)}…`;
  } catch {
    return '…';
  }
}

export const recipientsModule: RouteModule = { name: 'recipients', prefix: '/v1', auth: 'principal', apiRole: true, routes: recipientRoutes };
