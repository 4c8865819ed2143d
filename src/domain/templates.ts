// Notification templates on Mustache (logic-less: a template cannot run code). Pure.
//
// A variant is {locale, channel?, title, body, html?, subject?}; every field is a Mustache template.
// - Safety: partials ({{> name}}) are refused (validateTemplate, renderVariant); template data must
//   be JSON (null, booleans, numbers, strings, arrays, plain objects): functions (Mustache lambdas),
//   class instances, getters and cycles are refused with a TemplateError, and names resolve through
//   OWN properties only ({{constructor}}, {{items.map}} are absent), so nothing is ever called.
// - Escaping: title, body and subject are plain text and rendered WITHOUT HTML escaping; html is
//   rendered with HTML escaping ({{name}}); {{{name}}} and {{&name}} opt out of it, as in Mustache.
//   html and subject are rendered only for the email channel, the only one that uses them.
// - Names resolve as in Mustache.js: against the innermost section's value first, then outward; a
//   dotted name (order.id) resolves when its whole path does, in the nearest context where it does.
// - missingVariables: a name is missing when it resolves to undefined (null, false, 0, "" and []
//   are present). Every kind of tag counts: {{x}}, {{{x}}}, {{&x}}, and the names of sections
//   {{#x}} and inverted sections {{^x}} (pass false or [] for "no"). The contents of a section are
//   checked exactly where Mustache would render them: for each item of a list (so names used only
//   inside a section over a list are resolved against the items, falling back outward, and are
//   not required at the top level), once with an object, string or number value pushed, once in
//   the same context for true, and not at all for an empty list, a falsy value or a missing name
//   (only the section's own name is then reported). An inverted section's contents are checked
//   when its value is falsy, [] or missing. Names are reported as written, sorted, once each.

import Mustache from 'mustache';

export interface TemplateVariant {
  locale: string;
  channel?: string | null;
  title: string;
  body: string;
  html?: string | null;
  subject?: string | null;
}

export interface RenderedContent {
  title: string;
  body: string;
  html?: string;
  subject?: string;
}

export interface DigestItem {
  title: string | null;
  body: string | null;
  data: unknown;
}

/** A template that cannot be parsed or uses what Herald refuses, or data that is not JSON. */
export class TemplateError extends Error {
  override name = 'TemplateError';
}

type Token = [type: string, value: string, start: number, end: number, children?: Token[], close?: number];

const FIELDS = ['title', 'body', 'html', 'subject'] as const;
type Field = (typeof FIELDS)[number];

const writer = new Mustache.Writer();
// Parse results are not cached: templates come from users, and a cache would grow without bound.
(writer as unknown as { templateCache: unknown }).templateCache = undefined;
const escapeHtml: (value: unknown) => string = Mustache.escape;
const TEXT = { escape: (value: unknown) => String(value) };
const HTML = { escape: escapeHtml };

/** Parses a template; throws a TemplateError for unclosed/unopened tags, partials and empty tags. */
function parse(text: string): Token[] {
  if (typeof text !== 'string') throw new TemplateError('a template must be a string');
  let tokens: Token[];
  try {
    tokens = writer.parse(text) as Token[];
  } catch (e) {
    throw new TemplateError(`invalid template: ${(e as Error).message}`);
  }
  const check = (list: Token[]) => {
    for (const [type, value, start, , children] of list) {
      if (type === '>') throw new TemplateError(`invalid template: partials are not supported ({{> ${value}}} at ${start})`);
      if ((type === 'name' || type === '&' || type === '#' || type === '^') && value === '') {
        throw new TemplateError(`invalid template: empty tag at ${start}`);
      }
      if (children) check(children);
    }
  };
  check(tokens);
  return tokens;
}

/** Throws a TemplateError when the text is not a template Herald renders. */
export function validateTemplate(text: string): void {
  parse(text);
}

/** Field errors (`${path}.title`, …) for each field of a variant that is not a valid template. */
export function templateErrors(variant: Partial<TemplateVariant>, path: string): { path: string; message: string }[] {
  const errors: { path: string; message: string }[] = [];
  for (const field of FIELDS) {
    const text = variant[field];
    if (text == null) continue;
    try {
      parse(text);
    } catch (e) {
      errors.push({ path: `${path}.${field}`, message: (e as Error).message });
    }
  }
  return errors;
}

/** Every name a template refers to (variables and section names, inside sections too), sorted, once each. */
export function templateVariables(text: string): string[] {
  const names = new Set<string>();
  const walk = (list: Token[]) => {
    for (const [type, value, , , children] of list) {
      if ((type === 'name' || type === '&' || type === '#' || type === '^') && value !== '.') names.add(value);
      if (children) walk(children);
    }
  };
  walk(parse(text));
  return [...names].sort();
}

const hasOwn = (value: unknown, key: string) => value != null && Object.hasOwn(Object(value), key);

/**
 * Resolves a name against a context stack (innermost first) as Mustache.js does, through own
 * properties only. `found` is false when no context has it.
 */
function resolve(name: string, stack: readonly unknown[]): { found: boolean; value: unknown } {
  if (name === '.') return { found: true, value: stack[0] };
  const path = name.split('.');
  for (const context of stack) {
    if (path.length === 1) {
      if (typeof context === 'object' && hasOwn(context, name)) return { found: true, value: (context as Record<string, unknown>)[name] };
      continue;
    }
    let value: unknown = context;
    let hit = true;
    for (const key of path) {
      if (!hasOwn(value, key)) {
        hit = false;
        break;
      }
      value = (value as Record<string, unknown>)[key];
    }
    if (hit) return { found: true, value };
  }
  return { found: false, value: undefined };
}

/** A Mustache context that looks names up with `resolve` (own properties only, never a function). */
class JsonContext extends Mustache.Context {
  override push(view: unknown): Mustache.Context {
    return new JsonContext(view, this);
  }

  override lookup(name: string): unknown {
    const stack: unknown[] = [];
    for (let c: Mustache.Context | undefined = this; c; c = c.parent) stack.push(c.view);
    const { value } = resolve(name, stack);
    return typeof value === 'function' ? undefined : value;
  }
}

/** Throws a TemplateError unless `data` is JSON-shaped (see the contract above). */
function assertJson(data: unknown, path = 'data', ancestors: unknown[] = []): void {
  if (data === null || data === undefined || typeof data === 'string' || typeof data === 'boolean') return;
  if (typeof data === 'number') return;
  if (typeof data !== 'object') throw new TemplateError(`template data must be JSON: ${path} is a ${typeof data}`);
  if (ancestors.includes(data)) throw new TemplateError(`template data must be JSON: ${path} refers to itself`);
  const proto = Object.getPrototypeOf(data);
  if (!Array.isArray(data) && proto !== Object.prototype && proto !== null) {
    throw new TemplateError(`template data must be JSON: ${path} is a ${proto?.constructor?.name ?? 'non-plain object'}`);
  }
  const inner = [...ancestors, data];
  for (const [key, d] of Object.entries(Object.getOwnPropertyDescriptors(data))) {
    if (Array.isArray(data) && key === 'length') continue;
    const at = Array.isArray(data) ? `${path}[${key}]` : `${path}.${key}`;
    if (!('value' in d)) throw new TemplateError(`template data must be JSON: ${at} is a getter`);
    assertJson(d.value, at, inner);
  }
}

function renderField(text: string, data: unknown, field: Field): string {
  const tokens = parse(text);
  return writer.renderTokens(tokens as unknown as string[][], new JsonContext(data), undefined, text, field === 'html' ? HTML : TEXT);
}

/**
 * Renders a variant for a channel: title and body always, html and subject when the variant has
 * them and the channel is email. Missing names render as empty (check missingVariables first).
 */
export function renderVariant(variant: TemplateVariant, data: unknown, opts: { channel: string | null | undefined }): RenderedContent {
  assertJson(data);
  const out: RenderedContent = { title: renderField(variant.title, data, 'title'), body: renderField(variant.body, data, 'body') };
  if (opts.channel === 'email') {
    if (variant.html != null) out.html = renderField(variant.html, data, 'html');
    if (variant.subject != null) out.subject = renderField(variant.subject, data, 'subject');
  }
  return out;
}

/** Renders a digest of several notifications: the template sees `count` and `items` [{title, body, data}]. */
export function renderDigest(
  variant: TemplateVariant,
  items: readonly DigestItem[],
  count: number,
  opts: { channel: string | null | undefined } = { channel: null },
): RenderedContent {
  return renderVariant(variant, digestData(items, count), opts);
}

/** The data a digest template is rendered with (also what to pass to missingVariables). */
export function digestData(items: readonly DigestItem[], count: number): { count: number; items: DigestItem[] } {
  return { count, items: items.map((i) => ({ title: i.title, body: i.body, data: i.data })) };
}

/** Names the variant's fields use that `data` does not provide (see the contract above). */
export function missingVariables(variant: Partial<TemplateVariant>, data: unknown): string[] {
  assertJson(data);
  const missing = new Set<string>();
  const walk = (list: Token[], stack: readonly unknown[]) => {
    for (const [type, name, , , children = []] of list) {
      if (type !== 'name' && type !== '&' && type !== '#' && type !== '^') continue;
      const { found, value } = resolve(name, stack);
      const absent = !found || value === undefined;
      if (absent) missing.add(name);
      if (type === '#') {
        if (absent || !value) continue;
        if (Array.isArray(value)) for (const item of value) walk(children, [item, ...stack]);
        else if (typeof value === 'object' || typeof value === 'string' || typeof value === 'number') walk(children, [value, ...stack]);
        else walk(children, stack);
      } else if (type === '^') {
        if (!value || (Array.isArray(value) && value.length === 0)) walk(children, stack);
      }
    }
  };
  for (const field of FIELDS) {
    const text = variant[field];
    if (text != null) walk(parse(text), [data]);
  }
  return [...missing].sort();
}
