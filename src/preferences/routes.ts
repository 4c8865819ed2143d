// A recipient's preferences.
//   GET /v1/recipients/{id}/preferences   (read scope); the defaults when never set
//   PUT /v1/recipients/{id}/preferences   replace (send scope):
//     {kinds: {<kind>: {allowed?, channels?}}, quiet_hours: {start: "HH:MM", end: "HH:MM"} | null}
//   PATCH /v1/recipients/{id}/preferences  change some (send scope): a JSON merge patch (RFC 7396,
//     application/merge-patch+json or application/json) of the document PUT takes. null removes a
//     member, and a removed top-level member takes its default (kinds {}, quiet_hours null);
//     objects merge; arrays (channels) replace. The merged document must be one PUT accepts (422
//     naming the field otherwise); the kind rules below apply to the kinds the patch sets, not to
//     those it leaves alone. Read, merge and write are one transaction: concurrent PATCHes of
//     different fields all stay.
// Rules (422 validation_failed naming the field): every kind named must be a kind of the
// workspace; opting out (allowed: false) of a mandatory kind is refused at
// body.kinds.<kind>.allowed; channels are channel names, at least one (opt out with allowed:
// false). Quiet hours are local wall-clock times evaluated in the recipient's time zone, UTC when
// the recipient has none (the response's `timezone` says which); end before start crosses
// midnight; start and end must differ. A kind made mandatory later overrides an earlier opt-out.

import { Type, type Static } from 'typebox';
import { CHANNEL_NAMES } from '../channels/channel.ts';
import { Problem, type FieldError } from '../errors.ts';
import { mergePatch } from '../domain/merge-patch.ts';
import type { KindPreference, Preferences } from './service.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { iso, KIND_PATTERN, LOCAL_TIME_PATTERN, MERGE_PATCH_JSON, Nullable, problems, RecipientId, schemaProblem } from '../http/schemas.ts';

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

const PreferencesPatch = Type.Object(
  {
    kinds: Nullable(
      Type.Record(
        Type.String(),
        Type.Union([
          Type.Object({ allowed: Nullable(KindPreferenceInput.properties.allowed), channels: Nullable(KindPreferenceInput.properties.channels) }, { additionalProperties: false }),
          Type.Null(),
        ]),
        { maxProperties: 200, description: 'Kinds to change; null removes a kind\'s preference' },
      ),
    ),
    quiet_hours: Nullable(Type.Object({ start: Nullable(LocalTime), end: Nullable(LocalTime) }, { additionalProperties: false })),
  },
  { additionalProperties: false, description: 'A JSON merge patch (RFC 7396) of the preferences: null removes a member, objects merge, arrays replace' },
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

function preferenceRoutes(app: Api, s: Services): void {
  app.get(
    '/recipients/:id/preferences',
    {
      config: { scope: 'read' },
      schema: { summary: "Read a recipient's preferences", tags: ['preferences'], params: Params, response: { 200: PreferencesView, ...problems(401, 403, 404) } },
    },
    async (request) => {
      const ws = request.principal.workspaceId;
      const recipient = await s.recipients.get(ws, request.params.id);
      if (!recipient) throw new Problem('not_found', `No recipient "${request.params.id}"`);
      return view(await s.preferences.get(ws, recipient.id), recipient.timezone);
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
      const recipient = await s.recipients.get(ws, request.params.id);
      if (!recipient) throw new Problem('not_found', `No recipient "${request.params.id}"`);
      const rules = await kindRules(s, ws, Object.keys(input.kinds));
      const errors = rules(input.kinds);
      if (input.quiet_hours && input.quiet_hours.start === input.quiet_hours.end) errors.push({ path: 'body.quiet_hours.end', message: 'must differ from start' });
      if (errors.length) throw fieldProblem(errors);

      const saved = await s.preferences.put({ workspace_id: ws, recipient_id: recipient.id, kinds: stored(input.kinds), quiet_hours: input.quiet_hours });
      return view(saved, recipient.timezone);
    },
  );

  app.patch(
    '/recipients/:id/preferences',
    {
      config: { scope: 'send' },
      schema: {
        summary: "Change some of a recipient's preferences",
        description:
          'A JSON merge patch (RFC 7396) of the document PUT takes, e.g. `{"quiet_hours": {"start": "23:00"}}` or `{"kinds": {"marketing": null}}`: null removes a member (a removed `kinds` or `quiet_hours` takes its default), objects merge, arrays replace. The merged preferences must be valid as a PUT body.',
        tags: ['preferences'],
        params: Params,
        body: { content: { [MERGE_PATCH_JSON]: { schema: PreferencesPatch }, 'application/json': { schema: PreferencesPatch } } },
        response: { 200: PreferencesView, ...problems(400, 401, 403, 404, 415, 422) },
      },
    },
    async (request) => {
      const ws = request.principal.workspaceId;
      const patch = request.body as Static<typeof PreferencesPatch>;
      // The kind rules for the kinds the patch sets, read before the transaction (on SQLite it
      // allows no other query); the transaction applies them to the merged values.
      const setting = Object.keys(patch.kinds ?? {}).filter((k) => patch.kinds![k] !== null);
      const rules = await kindRules(s, ws, setting);
      const validate = request.compileValidationSchema(PreferencesInput, 'body');
      const changed = await s.preferences.change(ws, request.params.id, (current) => {
        const merged = mergePatch({ kinds: current.kinds, quiet_hours: current.quiet_hours }, patch) as Partial<Static<typeof PreferencesInput>>;
        const next = { kinds: merged.kinds ?? {}, quiet_hours: merged.quiet_hours ?? null };
        if (!validate(next)) throw schemaProblem(validate.errors ?? [], 'body');
        const errors = rules(Object.fromEntries(setting.map((k) => [k, next.kinds[k]!])));
        if (next.quiet_hours && next.quiet_hours.start === next.quiet_hours.end) errors.push({ path: 'body.quiet_hours.end', message: 'must differ from start' });
        if (errors.length) throw fieldProblem(errors);
        return { kinds: stored(next.kinds), quiet_hours: next.quiet_hours };
      });
      if (!changed) throw new Problem('not_found', `No recipient "${request.params.id}"`);
      return view(changed.preferences, changed.timezone);
    },
  );
}

type KindPreferences = Static<typeof PreferencesInput>['kinds'];

/**
 * The workspace's rules for the kinds named: a function listing what breaks them among `prefs`
 * (each a kind name from `names`): a name that is not a kind name or not a kind of the workspace,
 * and opting out of a mandatory kind.
 */
async function kindRules(s: Services, ws: string, names: string[]): Promise<(prefs: KindPreferences) => FieldError[]> {
  const pattern = new RegExp(KIND_PATTERN);
  const kinds = await s.kinds.getMany(ws, names.filter((k) => pattern.test(k)));
  return (prefs) => {
    const errors: FieldError[] = [];
    for (const [name, pref] of Object.entries(prefs)) {
      const kind = kinds.get(name);
      if (!pattern.test(name)) errors.push({ path: `body.kinds.${name}`, message: `is not a kind name (${KIND_PATTERN})` });
      else if (!kind) errors.push({ path: `body.kinds.${name}`, message: 'is not a kind of this workspace (see GET /v1/kinds)' });
      else if (kind.mandatory && pref.allowed === false) errors.push({ path: `body.kinds.${name}.allowed`, message: `cannot be false: "${name}" is mandatory` });
    }
    return errors;
  };
}

/** Kind preferences as stored: only the members given. */
function stored(prefs: KindPreferences): Record<string, KindPreference> {
  const out: Record<string, KindPreference> = {};
  for (const [name, pref] of Object.entries(prefs)) {
    out[name] = { ...(pref.allowed !== undefined && { allowed: pref.allowed }), ...(pref.channels !== undefined && { channels: pref.channels }) };
  }
  return out;
}

function fieldProblem(errors: FieldError[]): Problem {
  return new Problem('validation_failed', errors.map((e) => `${e.path} ${e.message}`).join('; '), { errors });
}

export const preferencesModule: RouteModule = { name: 'preferences', prefix: '/v1', auth: 'principal', apiRole: true, routes: preferenceRoutes };
