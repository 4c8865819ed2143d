// Workspace settings.
//   GET /v1/settings   (read scope); the defaults when never set
//   PUT /v1/settings   replace (admin scope): {default_locale?, channel_blackouts?, operator_webhook?}
// default_locale: a BCP 47 tag, stored canonical (default "en"); the last step of every template's
// locale fallback. channel_blackouts: {<channel>: {start: "HH:MM", end: "HH:MM", timezone}}: no
// delivery on that channel between start and end local time in `timezone` (end before start
// crosses midnight); what a deferred delivery does then is the kind's `blackout` policy.
// operator_webhook: {url, secret?} receives signed operator alerts (src/alerts); absent or null:
// none. Without a secret the current one is kept, or one is generated; the PUT's answer shows the
// secret whole, GET masked.

import { Type, type Static } from 'typebox';
import { CHANNEL_NAMES } from '../channels/channel.ts';
import { Problem, type FieldError } from '../errors.ts';
import { actorOf } from '../auth/principal.ts';
import { DEFAULT_LOCALE, type WorkspaceSettings } from './service.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { iso, LOCAL_TIME_PATTERN, problems } from '../http/schemas.ts';
import { isValidWebhookSecret } from '../domain/webhook-signature.ts';
import type { OperatorWebhookView } from '../alerts/service.ts';

const LocalTime = Type.String({ pattern: LOCAL_TIME_PATTERN, description: 'Local wall-clock time, HH:MM (24 h)' });
const Window = Type.Object(
  { start: LocalTime, end: LocalTime, timezone: Type.String({ maxLength: 64, description: 'IANA time zone, e.g. Asia/Seoul' }) },
  { additionalProperties: false },
);

const SettingsInput = Type.Object(
  {
    default_locale: Type.Optional(Type.String({ maxLength: 35, description: `BCP 47 language tag (default ${DEFAULT_LOCALE})` })),
    channel_blackouts: Type.Optional(Type.Union([Type.Record(Type.String(), Window, { maxProperties: CHANNEL_NAMES.length }), Type.Null()])),
    operator_webhook: Type.Optional(
      Type.Union([
        Type.Object(
          {
            url: Type.String({ maxLength: 2048, description: 'http(s) URL that receives the signed operator events (docs/operator-alerts.md)' }),
            secret: Type.Optional(Type.String({ maxLength: 200, description: 'Standard Webhooks secret (whsec_…); omitted: the current one is kept, or one is generated and shown once' })),
          },
          { additionalProperties: false },
        ),
        Type.Null(),
      ]),
    ),
  },
  { additionalProperties: false },
);

const SettingsView = Type.Object({
  default_locale: Type.String(),
  channel_blackouts: Type.Union([Type.Record(Type.String(), Type.Object({ start: Type.String(), end: Type.String(), timezone: Type.String() })), Type.Null()]),
  operator_webhook: Type.Union(
    [
      Type.Object({
        url: Type.String(),
        secret: Type.String({ description: 'Whole in the answer to the PUT that set it, masked otherwise' }),
        disabled_at: Type.Union([Type.String(), Type.Null()], { description: 'Set when the receiver answered 410 Gone; PUT the setting again to re-enable it' }),
      }),
      Type.Null(),
    ],
    { description: 'Where operator alerts go (docs/operator-alerts.md); null: nowhere' },
  ),
  updated_at: Type.Union([Type.String(), Type.Null()], { description: 'null: never set (the defaults)' }),
});

const view = (w: WorkspaceSettings, hook: OperatorWebhookView | null): Static<typeof SettingsView> => ({
  default_locale: w.default_locale,
  channel_blackouts: w.channel_blackouts,
  operator_webhook: hook,
  updated_at: iso(w.updated_at),
});

function settingsRoutes(app: Api, s: Services): void {
  app.get(
    '/settings',
    { config: { scope: 'read' }, schema: { summary: 'Read the workspace settings', tags: ['settings'], response: { 200: SettingsView, ...problems(401, 403) } } },
    async (request) => {
      const ws = request.principal.workspaceId;
      const [settings, hook] = await Promise.all([s.settings.get(ws), s.alerts.get(ws)]);
      return view(settings, hook);
    },
  );

  app.put(
    '/settings',
    {
      config: { scope: 'admin' },
      schema: { summary: 'Replace the workspace settings', tags: ['settings'], body: SettingsInput, response: { 200: SettingsView, ...problems(401, 403, 422) } },
    },
    async (request) => {
      const ws = request.principal.workspaceId;
      const input = request.body;
      const errors: FieldError[] = [];
      let locale = DEFAULT_LOCALE;
      if (input.default_locale !== undefined) {
        try {
          locale = Intl.getCanonicalLocales(input.default_locale)[0]!;
        } catch {
          errors.push({ path: 'body.default_locale', message: `"${input.default_locale}" is not a BCP 47 language tag` });
        }
      }
      const blackouts = input.channel_blackouts ? { ...input.channel_blackouts } : null;
      for (const [channel, w] of Object.entries(blackouts ?? {})) {
        if (!(CHANNEL_NAMES as readonly string[]).includes(channel)) {
          errors.push({ path: `body.channel_blackouts.${channel}`, message: `is not a channel (${CHANNEL_NAMES.join(', ')})` });
          continue;
        }
        if (w.start === w.end) errors.push({ path: `body.channel_blackouts.${channel}.end`, message: 'must differ from start' });
        try {
          blackouts![channel] = { ...w, timezone: new Intl.DateTimeFormat('en', { timeZone: w.timezone }).resolvedOptions().timeZone };
        } catch {
          errors.push({ path: `body.channel_blackouts.${channel}.timezone`, message: `"${w.timezone}" is not an IANA time zone` });
        }
      }
      const hook = input.operator_webhook ?? null;
      if (hook) {
        errors.push(...checkWebhookUrl('body.operator_webhook.url', hook.url));
        if (hook.secret !== undefined && !isValidWebhookSecret(hook.secret)) {
          errors.push({ path: 'body.operator_webhook.secret', message: 'must be "whsec_" followed by base64 of 24 to 64 bytes' });
        }
      }
      if (errors.length) throw new Problem('validation_failed', errors.map((e) => `${e.path} ${e.message}`).join('; '), { errors });
      const savedHook = await s.alerts.put(ws, hook);
      // The audit log never holds the secret.
      const audited = hook?.secret === undefined ? request.body : { ...request.body, operator_webhook: { ...hook, secret: '[redacted]' } };
      return view(await s.settings.put(ws, actorOf(request.principal), { default_locale: locale, channel_blackouts: blackouts }, audited), savedHook);
    },
  );
}

/** Problems of a webhook URL that JSON Schema cannot see: not a URL, not http(s), credentials in it. */
function checkWebhookUrl(path: string, text: string): FieldError[] {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return [{ path, message: 'is not a URL' }];
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return [{ path, message: 'must be an http or https URL' }];
  if (url.username || url.password) return [{ path, message: 'must not contain credentials' }];
  return [];
}

export const settingsModule: RouteModule = { name: 'settings', prefix: '/v1', auth: 'principal', apiRole: true, routes: settingsRoutes };
