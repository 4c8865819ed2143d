// Rules of the webhook broker with no I/O: providers and what each one's request says (event
// type, delivery id, credential headers), source paths, path globs, and how a body is kept.

export const PROVIDERS = ['github', 'stripe', 'slack', 'jira', 'gitlab', 'shopify', 'twilio', 'standard', 'hmac', 'none'] as const;
export type Provider = (typeof PROVIDERS)[number];

export const VISIBILITIES = ['private', 'org', 'public'] as const;
export type Visibility = (typeof VISIBILITIES)[number];

/** A source path: `/` then segments of letters, digits and `-_.`, separated by `/`. At most 200 characters. */
export const SOURCE_PATH_PATTERN = '^(/[A-Za-z0-9_.-]+)+$';

/**
 * The first segments another part of Herald owns (design.md URL space), compared case-blind: a
 * source path may not start with one. Ingest is under /hooks, but a source path that looked like
 * an API or dashboard path would be confusing in every listing.
 */
export const RESERVED_FIRST_SEGMENTS = ['v1', 'hooks', 'assets', 'docs', 'openapi.json', 'healthz', 'metrics', '1', 'message', 'stream', 'version', 'application', 'client', 'current'] as const;

/** Why `path` cannot be a source path, or undefined when it can. */
export function sourcePathProblem(path: string): string | undefined {
  if (path.length > 200) return 'must be at most 200 characters';
  if (!new RegExp(SOURCE_PATH_PATTERN).test(path)) return 'must be "/" and segments of letters, digits, "-", "_" and "." separated by "/"';
  const segments = path.split('/').slice(1);
  if (segments.some((s) => s === '.' || s === '..')) return 'must not have "." or ".." segments';
  const first = segments[0]!.toLowerCase();
  if ((RESERVED_FIRST_SEGMENTS as readonly string[]).includes(first)) return `must not start with the reserved prefix "/${segments[0]}"`;
  return undefined;
}

/**
 * Whether `path` matches `glob`: `*` is one whole segment or part of one (no "/"), `**` any number
 * of segments (including none when it is a whole segment). Linear in the lengths: compiled to a
 * regular expression without nested quantifiers.
 */
export function globMatch(glob: string, path: string): boolean {
  return globRegExp(glob).test(path);
}

const globCache = new Map<string, RegExp>();

export function globRegExp(glob: string): RegExp {
  let re = globCache.get(glob);
  if (re) return re;
  let src = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*' && glob[i + 1] === '*') {
      // "/**" at a segment boundary: zero or more whole segments.
      if (src.endsWith('/')) {
        src = src.slice(0, -1) + '(?:/.*)?';
      } else src += '.*';
      i++;
    } else if (c === '*') src += '[^/]*';
    else src += c.replace(/[.+?^${}()|[\]\\]/g, '\\$&');
  }
  re = new RegExp(`^${src}$`);
  if (globCache.size > 1000) globCache.clear();
  globCache.set(glob, re);
  return re;
}

/** The literal part of a glob before its first wildcard (for an index range). */
export function globPrefix(glob: string): string {
  const star = glob.indexOf('*');
  return star < 0 ? glob : glob.slice(0, star);
}

/** Headers that carry credentials: never stored with an event. */
export const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'x-hub-signature',
  'x-hub-signature-256',
  'stripe-signature',
  'x-slack-signature',
  'x-gitlab-token',
  'x-shopify-hmac-sha256',
  'x-twilio-signature',
  'webhook-signature',
]);

/** The header of a provider's delivery id, or the payload field (for Stripe) that holds it. */
const DELIVERY_ID_HEADERS: Partial<Record<Provider, string>> = {
  github: 'x-github-delivery',
  standard: 'webhook-id',
  shopify: 'x-shopify-webhook-id',
  gitlab: 'x-gitlab-event-uuid',
  twilio: 'i-twilio-idempotency-token',
  jira: 'x-atlassian-webhook-identifier',
};

/** The provider's id of this delivery (the same on its retries), or null. */
export function deliveryIdOf(provider: Provider, headers: Readonly<Record<string, string | undefined>>, payload: unknown): string | null {
  const header = DELIVERY_ID_HEADERS[provider];
  let id: unknown = header ? headers[header] : undefined;
  if (provider === 'stripe') id = field(payload, 'id');
  if (provider === 'slack') id = field(payload, 'event_id');
  return typeof id === 'string' && id !== '' && id.length <= 200 ? id : null;
}

/**
 * The event's type: `event_type_path` when the source has one (a dotted path into
 * {payload, headers}), else the provider's documented place: GitHub X-GitHub-Event, Stripe and
 * Standard Webhooks payload.type, Shopify X-Shopify-Topic, Jira payload.webhookEvent, GitLab
 * X-Gitlab-Event, Slack payload.event.type or payload.type (a slash command: "command").
 */
export function eventTypeOf(provider: Provider, headers: Readonly<Record<string, string | undefined>>, payload: unknown, eventTypePath: string | null): string | null {
  let t: unknown;
  if (eventTypePath) t = dotted({ payload, headers }, eventTypePath);
  else {
    switch (provider) {
      case 'github':
        t = headers['x-github-event'];
        break;
      case 'stripe':
      case 'standard':
        t = field(payload, 'type');
        break;
      case 'shopify':
        t = headers['x-shopify-topic'];
        break;
      case 'jira':
        t = field(payload, 'webhookEvent');
        break;
      case 'gitlab':
        t = headers['x-gitlab-event'] ?? field(payload, 'object_kind');
        break;
      case 'slack':
        t = field(field(payload, 'event'), 'type') ?? field(payload, 'type') ?? (field(payload, 'command') !== undefined ? 'command' : undefined);
        break;
      default:
        t = undefined;
    }
  }
  if (typeof t === 'number' || typeof t === 'boolean') t = String(t);
  return typeof t === 'string' && t !== '' ? t.slice(0, 200) : null;
}

function field(v: unknown, k: string): unknown {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && Object.hasOwn(v, k) ? (v as Record<string, unknown>)[k] : undefined;
}

/** The value at a dotted path (`payload.a.b`, array indexes as segments), or undefined. */
export function dotted(v: unknown, path: string): unknown {
  let cur = v;
  for (const seg of path.split('.')) {
    if (Array.isArray(cur) && /^\d+$/.test(seg)) cur = cur[Number(seg)];
    else cur = field(cur, seg);
    if (cur === undefined) return undefined;
  }
  return cur;
}

/** How a body is kept: as text when it is valid UTF-8 without NUL (PostgreSQL text holds no NUL), else base64. */
export function keepBody(body: Buffer, isUtf8: (b: Buffer) => boolean): { body: string; encoding: 'utf8' | 'base64' } {
  if (isUtf8(body)) {
    const text = body.toString('utf8');
    if (!text.includes('\0')) return { body: text, encoding: 'utf8' };
  }
  return { body: body.toString('base64'), encoding: 'base64' };
}

/** The media type of a Content-Type header, lower case, without parameters. */
export function mediaType(contentType: string | undefined): string {
  return (contentType ?? '').split(';')[0]!.trim().toLowerCase();
}
