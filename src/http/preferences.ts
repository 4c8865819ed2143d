// A recipient's preferences.
//   GET /v1/recipients/{id}/preferences   (read scope); the defaults when never set
//   PUT /v1/recipients/{id}/preferences   replace (send scope):
//     {kinds: {<kind>: {allowed?, channels?}}, quiet_hours: {start: "HH:MM", end: "HH:MM"} | null}
// Rules (422 validation_failed naming the field): every kind named must be a kind of the
// workspace; opting out (allowed: false) of a mandatory kind is refused at
// body.kinds.<kind>.allowed; channels are channel names, at least one (opt out with allowed:
// false). Quiet hours are local wall-clock times evaluated in the recipient's time zone, UTC when
// the recipient has none (the response's `timezone` says which); end before start crosses
// midnight; start and end must differ. A kind made mandatory later overrides an earlier opt-out.

import { Type, type Static } from 'typebox';
import { CHANNEL_NAMES } from '../channels/channel.ts';
import { Problem, type FieldError } from '../errors.ts';
import { getKinds } from '../store/kinds.ts';
import { getPreferences, putPreferences, type KindPreference, type Preferences } from '../store/preferences.ts';
import { getRecipient } from '../store/recipients.ts';
import type { Services } from '../services.ts';
import type { Api } from './server.ts';
import { iso, problems, RecipientId } from './schemas.ts';
import { KIND_PATTERN } from './kinds.ts';

export const LOCAL_TIME_PATTERN = '^([01][0-9]|2[0-3]):[0-5][0-9]$';
const LocalTime = Type.String({ pattern: LOCAL_TIME_PATTERN, description: 'Local wall-clock time, HH:MM (24 h)' });
const QuietHours = Type.Object({ start: LocalTime, end: LocalTime }, { additionalProperties: false });
const Channel = Type.Union(CHANNEL_NAMES.map((c) => Type.Literal(c)));

const KindPreferenceInput = Type.Object(
  {
    allowed: Type.Optional(Type.Boolean({ description: 'false: opt out of the kind (not allowed for mandatory kinds)' })),
    channels: Type.Optional(Type.Array(Channel, { minItems: 1, uniqueItems: true, description: 'The channels wanted for this kind, in priority order' })),
  },
  { additionalProperties: false },
);

const PreferencesInput = Type.Object(
  {
    kinds: Type.Record(Type.String(), KindPreferenceInput, { maxProperties: 200 }),
    quiet_hours: Type.Union([QuietHours, Type.Null()]),
  },
  { additionalProperties: false },
);

const PreferencesView = Type.Object({
  recipient: Type.String(),
  kinds: Type.Record(Type.String(), Type.Object({ allowed: Type.Optional(Type.Boolean()), channels: Type.Optional(Type.Array(Type.String())) })),
  quiet_hours: Type.Union([Type.Object({ start: Type.String(), end: Type.String() }), Type.Null()]),
  timezone: Type.String({ description: "The time zone quiet hours are evaluated in: the recipient's, or UTC when it has none" }),
  updated_at: Type.Union([Type.String(), Type.Null()], { description: 'null: never set (the defaults)' }),
});

const Params = Type.Object({ id: RecipientId });

const view = (p: Preferences, timezone: string | null): Static<typeof PreferencesView> => ({
  recipient: p.recipient_id,
  kinds: p.kinds,
  quiet_hours: p.quiet_hours,
  timezone: timezone ?? 'UTC',
  updated_at: iso(p.updated_at),
});

export function preferenceRoutes(app: Api, s: Services): void {
  app.get(
    '/recipients/:id/preferences',
    {
      config: { scope: 'read' },
      schema: { summary: "Read a recipient's preferences", tags: ['preferences'], params: Params, response: { 200: PreferencesView, ...problems(401, 403, 404) } },
    },
    async (request) => {
      const ws = request.principal.workspaceId;
      const recipient = await getRecipient(s.store.db, ws, request.params.id);
      if (!recipient) throw new Problem('not_found', `No recipient "${request.params.id}"`);
      return view(await getPreferences(s.store.db, ws, recipient.id), recipient.timezone);
    },
  );

  app.put(
    '/recipients/:id/preferences',
    {
      config: { scope: 'send' },
      schema: {
        summary: "Replace a recipient's preferences",
        tags: ['preferences'],
        params: Params,
        body: PreferencesInput,
        response: { 200: PreferencesView, ...problems(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const ws = request.principal.workspaceId;
      const input = request.body;
      const recipient = await getRecipient(s.store.db, ws, request.params.id);
      if (!recipient) throw new Problem('not_found', `No recipient "${request.params.id}"`);

      const errors: FieldError[] = [];
      const pattern = new RegExp(KIND_PATTERN);
      const names = Object.keys(input.kinds);
      const valid = names.filter((k) => pattern.test(k));
      const kinds = await getKinds(s.store.db, ws, valid);
      const stored: Record<string, KindPreference> = {};
      for (const name of names) {
        const pref = input.kinds[name]!;
        const kind = kinds.get(name);
        if (!pattern.test(name)) errors.push({ path: `body.kinds.${name}`, message: `is not a kind name (${KIND_PATTERN})` });
        else if (!kind) errors.push({ path: `body.kinds.${name}`, message: 'is not a kind of this workspace (see GET /v1/kinds)' });
        else if (kind.mandatory && pref.allowed === false) errors.push({ path: `body.kinds.${name}.allowed`, message: `cannot be false: "${name}" is mandatory` });
        stored[name] = { ...(pref.allowed !== undefined && { allowed: pref.allowed }), ...(pref.channels !== undefined && { channels: pref.channels }) };
      }
      if (input.quiet_hours && input.quiet_hours.start === input.quiet_hours.end) {
        errors.push({ path: 'body.quiet_hours.end', message: 'must differ from start' });
      }
      if (errors.length) throw new Problem('validation_failed', errors.map((e) => `${e.path} ${e.message}`).join('; '), { errors });

      const saved = await putPreferences(s.store.db, { workspace_id: ws, recipient_id: recipient.id, kinds: stored, quiet_hours: input.quiet_hours });
      s.policy.invalidate(ws);
      return view(saved, recipient.timezone);
    },
  );
}
