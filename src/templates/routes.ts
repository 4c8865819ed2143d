// Templates: Mustache (logic-less: no code runs) content per locale and channel, versioned.
//   PUT    /v1/templates/{key}          {variants: [{locale, channel?, title, body, html?, subject?}]}
//                                       -> 201 {key, version, variants}: every PUT is a new version
//                                       (admin scope)
//   GET    /v1/templates                keys with their latest version, keyset-paged (read scope)
//   GET    /v1/templates/{key}          the latest version, or ?version=n (read scope)
//   DELETE /v1/templates/{key}          every version (admin scope); a later PUT starts at 1 again
//   POST   /v1/templates/{key}/render   {locale?, channel?, version?, data} -> the variant a send
//                                       would use, rendered (read scope); missing variables are
//                                       422 missing_variables with `missing` listing them
// Rules (422 validation_failed naming the field): locales are BCP 47 (stored canonical: "ko-kr" is
// "ko-KR"); channel is a channel name or absent (the variant for every channel); one variant per
// (locale, channel); each text must be a template domain/templates.ts renders (Mustache that
// parses, no partials {{> x}}, no empty tags). Rendering (there and at send time) is
// domain/templates.ts: html escapes data, other fields are plain text; the variant is chosen by
// domain/locale.ts (requested locale, its prefixes, then the workspace default; channel variant
// before the locale's default variant).

import { Type, type Static } from 'typebox';
import { CHANNEL_NAMES } from '../channels/channel.ts';
import { canonicalLocale, localeChain, pickVariant } from '../domain/locale.ts';
import { missingVariables, renderVariant, TemplateError, templateErrors } from '../domain/templates.ts';
import { Problem, type FieldError } from '../errors.ts';
import { actorOf } from '../auth/principal.ts';
import type { Template, TemplateVariant } from './service.ts';
import type { Services } from '../services.ts';
import type { Api, RouteModule } from '../http/api.ts';
import { Cursor, iso, keyPageOf, keyPageRequest, Limit, problems } from '../http/schemas.ts';

export const TEMPLATE_KEY_PATTERN = '^[a-z0-9][a-z0-9_.-]{0,63}$';
export const TemplateKey = Type.String({ pattern: TEMPLATE_KEY_PATTERN, description: 'Your key for the template, e.g. order.shipped' });

const Channel = Type.Union(CHANNEL_NAMES.map((c) => Type.Literal(c)));

const VariantInput = Type.Object(
  {
    locale: Type.String({ minLength: 1, maxLength: 35, description: 'BCP 47 language tag, e.g. ko-KR, ko, en' }),
    channel: Type.Optional(Type.Union([Channel, Type.Null()], { description: 'Only for this channel; absent or null: every channel' })),
    title: Type.String({ maxLength: 1000 }),
    body: Type.String({ maxLength: 20_000 }),
    html: Type.Optional(Type.String({ maxLength: 100_000, description: 'Email HTML; data is HTML-escaped' })),
    subject: Type.Optional(Type.String({ maxLength: 1000, description: 'Email subject (default: the title)' })),
  },
  { additionalProperties: false },
);

const VariantView = Type.Object({
  locale: Type.String(),
  channel: Type.Union([Type.String(), Type.Null()]),
  title: Type.String(),
  body: Type.String(),
  html: Type.Optional(Type.String()),
  subject: Type.Optional(Type.String()),
});

/** Version numbers a request can name: the store keeps versions as 32-bit integers. */
const VERSION_RANGE = { minimum: 1, maximum: 2_147_483_647 };

const TemplateView = Type.Object({ key: Type.String(), version: Type.Integer(), variants: Type.Array(VariantView), created_at: Type.String() });

const Params = Type.Object({ key: TemplateKey });

const view = (t: Template): Static<typeof TemplateView> => ({ key: t.key, version: t.version, variants: t.variants, created_at: iso(t.created_at)! });

/** The variants a PUT body describes, canonical; throws 422 listing every problem. */
function checkVariants(input: Static<typeof VariantInput>[]): TemplateVariant[] {
  const errors: FieldError[] = [];
  const seen = new Map<string, number>();
  const out: TemplateVariant[] = [];
  input.forEach((v, i) => {
    const path = `body.variants.${i}`;
    const canonical = canonicalLocale(v.locale);
    if (!canonical) errors.push({ path: `${path}.locale`, message: `"${v.locale}" is not a BCP 47 language tag` });
    const locale = canonical ?? v.locale;
    const channel = v.channel ?? null;
    const pair = `${locale} ${channel ?? '*'}`;
    const first = seen.get(pair);
    if (first !== undefined) errors.push({ path, message: `has the same locale and channel (${locale}, ${channel ?? 'any channel'}) as body.variants.${first}` });
    else seen.set(pair, i);
    errors.push(...templateErrors(v, path));
    out.push({
      locale,
      channel,
      title: v.title,
      body: v.body,
      ...(v.html !== undefined && { html: v.html }),
      ...(v.subject !== undefined && { subject: v.subject }),
    });
  });
  if (errors.length) throw new Problem('validation_failed', errors.map((e) => `${e.path} ${e.message}`).join('; '), { errors });
  return out;
}

function templateRoutes(app: Api, s: Services): void {
  app.put(
    '/templates/:key',
    {
      config: { scope: 'admin' },
      schema: {
        summary: 'Write a new version of a template',
        tags: ['templates'],
        params: Params,
        body: Type.Object({ variants: Type.Array(VariantInput, { minItems: 1, maxItems: 100 }) }, { additionalProperties: false }),
        response: { 201: TemplateView, ...problems(401, 403, 422) },
      },
    },
    async (request, reply) => {
      const ws = request.principal.workspaceId;
      const variants = checkVariants(request.body.variants);
      const template = await s.templates.put(ws, actorOf(request.principal), request.params.key, variants);
      return reply.code(201).send(view(template));
    },
  );

  app.get(
    '/templates',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'List templates with their latest version',
        tags: ['templates'],
        querystring: Type.Object({ cursor: Type.Optional(Cursor), limit: Type.Optional(Limit) }, { additionalProperties: false }),
        response: {
          200: Type.Object({
            data: Type.Array(Type.Object({ key: Type.String(), latest_version: Type.Integer(), created_at: Type.String(), updated_at: Type.String() })),
            next_cursor: Type.Union([Type.String(), Type.Null()]),
          }),
          ...problems(400, 401, 403),
        },
      },
    },
    async (request) => {
      const { after, limit } = keyPageRequest(request.query, new RegExp(TEMPLATE_KEY_PATTERN));
      const rows = await s.templates.list(request.principal.workspaceId, { after, limit: limit + 1 });
      const page = keyPageOf(rows, limit, (t) => t.key);
      return {
        data: page.rows.map((t) => ({ key: t.key, latest_version: t.latest_version, created_at: iso(t.created_at)!, updated_at: iso(t.updated_at)! })),
        next_cursor: page.next_cursor,
      };
    },
  );

  app.get(
    '/templates/:key',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Read a template (the latest version, or ?version=n)',
        tags: ['templates'],
        params: Params,
        querystring: Type.Object({ version: Type.Optional(Type.Integer(VERSION_RANGE)) }, { additionalProperties: false }),
        response: { 200: TemplateView, ...problems(401, 403, 404, 422) },
      },
    },
    async (request) => {
      const { key } = request.params;
      const t = await s.templates.get(request.principal.workspaceId, key, request.query.version);
      if (!t) throw new Problem('not_found', request.query.version === undefined ? `No template "${key}"` : `No version ${request.query.version} of template "${key}"`);
      return view(t);
    },
  );

  app.delete(
    '/templates/:key',
    {
      config: { scope: 'admin' },
      schema: { summary: 'Delete a template (every version)', tags: ['templates'], params: Params, response: { 204: Type.Null(), ...problems(401, 403, 404) } },
    },
    async (request, reply) => {
      const ws = request.principal.workspaceId;
      if (!(await s.templates.delete(ws, actorOf(request.principal), request.params.key))) throw new Problem('not_found', `No template "${request.params.key}"`);
      return reply.code(204).send(null);
    },
  );

  app.post(
    '/templates/:key/render',
    {
      config: { scope: 'read' },
      schema: {
        summary: 'Preview a template rendered with sample data',
        tags: ['templates'],
        params: Params,
        body: Type.Object(
          {
            locale: Type.Optional(Type.String({ minLength: 1, maxLength: 35, description: "The recipient's locale (default: the workspace default)" })),
            channel: Type.Optional(Channel),
            version: Type.Optional(Type.Integer({ ...VERSION_RANGE, description: 'Default: the latest' })),
            data: Type.Optional(Type.Record(Type.String(), Type.Unknown(), { default: {} })),
          },
          { additionalProperties: false },
        ),
        response: {
          200: Type.Object({
            key: Type.String(),
            version: Type.Integer(),
            variant: Type.Object({ locale: Type.String(), channel: Type.Union([Type.String(), Type.Null()]) }, { description: 'The variant a send would use' }),
            title: Type.String(),
            body: Type.String(),
            html: Type.Optional(Type.String()),
            subject: Type.Optional(Type.String()),
          }),
          ...problems(401, 403, 404, 422),
        },
      },
    },
    async (request) => {
      const ws = request.principal.workspaceId;
      const { key } = request.params;
      const input = request.body;
      const requested = input.locale === undefined ? null : canonicalLocale(input.locale);
      if (input.locale !== undefined && !requested) {
        throw new Problem('validation_failed', `body.locale "${input.locale}" is not a BCP 47 language tag`, { errors: [{ path: 'body.locale', message: `"${input.locale}" is not a BCP 47 language tag` }] });
      }
      const t = await s.templates.get(ws, key, input.version);
      if (!t) throw new Problem('not_found', input.version === undefined ? `No template "${key}"` : `No version ${input.version} of template "${key}"`);
      const { default_locale } = await s.settings.get(ws);
      const chain = localeChain(requested, default_locale);
      const variant = pickVariant(t.variants, chain, input.channel);
      if (!variant) {
        const message = `template "${key}" has no variant for ${chain.join(', ')} (the last from the workspace default locale)`;
        throw new Problem('validation_failed', `body.locale ${message}`, { errors: [{ path: 'body.locale', message }] });
      }
      const data = input.data ?? {};
      try {
        const missing = missingVariables(variant, data);
        if (missing.length) throw new Problem('missing_variables', `The data lacks: ${missing.join(', ')}`, { extensions: { missing } });
        const rendered = renderVariant(variant, data, { channel: input.channel });
        return { key: t.key, version: t.version, variant: { locale: variant.locale, channel: variant.channel }, ...rendered };
      } catch (err) {
        if (err instanceof TemplateError) throw new Problem('validation_failed', `body.data ${err.message}`, { errors: [{ path: 'body.data', message: err.message }] });
        throw err;
      }
    },
  );
}

export const templatesModule: RouteModule = { name: 'templates', prefix: '/v1', auth: 'principal', apiRole: true, routes: templateRoutes };
