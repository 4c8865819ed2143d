// Discord webhooks (Execute Webhook). The recipient's webhook URL is the credential (no provider
// config); it is user-supplied, so the request goes through SafeHttp's SSRF policy. One POST per
// delivery to the webhook URL with ?wait=true, so Discord answers with the created message:
//   body  {embeds: [{title, description, url?, timestamp, color?}], username?, avatar_url?,
//          allowed_mentions: {parse: []}} as application/json
//         allowed_mentions is empty so "@everyone", role and user mentions in a notification never ping.
//   link  options.link, else notification.data.url when it is an http(s) URL (the embed's title link)
// A webhook URL on a Discord host without an API version is posted to as /api/v10/webhooks/{id}/{token}
// (the documented v10 semantics: retry_after in seconds, field errors under "errors").
// Limits: title <= 256, description <= 4096, title + description <= 6000 (the embed total):
// truncated with "…".
// Outcome (error bodies are JSON {code, message, errors?}):
//   200 (message object: its id is the provider message id), 204   success
//   429 {message, retry_after (s, float), global}                   RateLimitedError: retry_after,
//                                                                   else X-RateLimit-Reset-After, else Retry-After
//   408, 5xx                                                        retryable
//   404 (10015 Unknown Webhook), 401 (50027 Invalid Webhook Token)  permanent, addressGone
//   400 (50006 empty message, 50035 Invalid Form Body …), other 4xx, 3xx  permanent, with Discord's message
//   refused destination                                             permanent 'destination_refused'
// errorClass names Discord's JSON error code (unknown_webhook, invalid_form_body…, else discord_<code>),
// else http_<status>. Nothing is sent for a recipient without a webhook ('no_address') or a
// notification without title and body ('empty_message').

import { Type, type Static } from 'typebox';
import { parseRetryAfter } from '../domain/retry.ts';
import type { HttpResult, SafeHttp } from '../net/safe-http.ts';
import {
  PermanentError,
  RateLimitedError,
  RetryableError,
  type AttemptDetail,
  type Channel,
  type DeliveryJob,
  type DeliveryResult,
} from './channel.ts';
import { chatWebhookUrl, header, notificationLink, postClassified, truncate } from './slack.ts';

export const DISCORD_LIMITS = {
  title: 256,
  description: 4096,
  embedTotal: 6000,
  username: 80,
  url: 2048,
} as const;

const DISCORD_HOSTS = new Set(['discord.com', 'ptb.discord.com', 'canary.discord.com', 'discordapp.com', 'ptb.discordapp.com', 'canary.discordapp.com']);
const WEBHOOK_PATH = /^\/api(?:\/v(\d+))?\/webhooks\/(\d{1,20})\/([A-Za-z0-9_-]{1,100})\/?$/;

export const DiscordOptions = Type.Object(
  {
    username: Type.Optional(Type.String({ minLength: 1, maxLength: DISCORD_LIMITS.username, description: 'Overrides the webhook name (Discord refuses names containing "discord" or "clyde")' })),
    avatar_url: Type.Optional(Type.String({ format: 'uri', pattern: '^https?://', maxLength: DISCORD_LIMITS.url, description: 'Overrides the webhook avatar' })),
    link: Type.Optional(Type.String({ format: 'uri', pattern: '^https?://', maxLength: DISCORD_LIMITS.url, description: 'The embed title links here; default: data.url' })),
    color: Type.Optional(Type.Integer({ minimum: 0, maximum: 0xffffff, description: 'Embed colour as an RGB integer, e.g. 5814783 (0x58b9ff)' })),
  },
  { additionalProperties: false },
);
export type DiscordOptions = Static<typeof DiscordOptions>;

/**
 * Whether `url` may be stored as a recipient's Discord webhook: https on discord.com or discordapp.com
 * (or their ptb. / canary. hosts), path /api[/v{n}]/webhooks/{id}/{token}, optionally ?thread_id=.
 * With allowAnyHost, any http(s) URL (tests and Discord-compatible receivers); SafeHttp's SSRF policy
 * still applies when sending.
 */
export function isDiscordWebhookUrl(url: string, opts: { allowAnyHost?: boolean } = {}): boolean {
  const u = chatWebhookUrl(url);
  if (!u) return false;
  if (opts.allowAnyHost) return true;
  if (u.protocol !== 'https:' || !(u.port === '' || u.port === '443') || !DISCORD_HOSTS.has(u.hostname) || !WEBHOOK_PATH.test(u.pathname)) return false;
  for (const [k, v] of u.searchParams) if (k !== 'thread_id' || !/^\d{1,20}$/.test(v)) return false;
  return true;
}

/** The URL Herald posts to: ?wait=true, and an unversioned Discord webhook path pinned to API v10. */
export function discordExecuteUrl(url: string): string {
  const u = new URL(url);
  const m = WEBHOOK_PATH.exec(u.pathname);
  if (m && !m[1] && DISCORD_HOSTS.has(u.hostname)) u.pathname = `/api/v10/webhooks/${m[2]}/${m[3]}`;
  u.searchParams.set('wait', 'true');
  return u.href;
}

export function discordPayload(job: DeliveryJob): Record<string, unknown> {
  const { title, body, options, data, createdAt } = job.notification;
  const embed: Record<string, unknown> = {};
  const t = title.trim() ? truncate(title, DISCORD_LIMITS.title) : '';
  if (t) embed.title = t;
  if (body.trim()) embed.description = truncate(body, Math.min(DISCORD_LIMITS.description, DISCORD_LIMITS.embedTotal - t.length));
  const link = notificationLink(options, data, DISCORD_LIMITS.url);
  if (link) embed.url = link;
  embed.timestamp = new Date(createdAt).toISOString();
  if (typeof options.color === 'number' && Number.isInteger(options.color) && options.color >= 0 && options.color <= 0xffffff) embed.color = options.color;
  const payload: Record<string, unknown> = { embeds: [embed], allowed_mentions: { parse: [] } };
  if (typeof options.username === 'string' && options.username) payload.username = truncate(options.username, DISCORD_LIMITS.username);
  if (typeof options.avatar_url === 'string' && options.avatar_url) payload.avatar_url = options.avatar_url;
  return payload;
}

const CODE_CLASS: Record<number, string> = {
  0: 'general_error',
  10003: 'unknown_channel',
  10015: 'unknown_webhook',
  50006: 'empty_message',
  50013: 'missing_permissions',
  50027: 'invalid_webhook_token',
  50035: 'invalid_form_body',
  50109: 'invalid_json',
  220001: 'thread_required',
};

interface DiscordError {
  code?: number;
  message?: string;
  errors?: unknown;
  retry_after?: number;
  global?: boolean;
}

export class DiscordChannel implements Channel {
  readonly name = 'discord' as const;
  readonly #http: SafeHttp;

  constructor(opts: { http: SafeHttp }) {
    this.#http = opts.http;
  }


  async deliver(job: DeliveryJob, signal: AbortSignal): Promise<DeliveryResult> {
    const url = job.recipient.discordWebhookUrl;
    if (!url) throw new PermanentError('no_address', 'recipient has no Discord webhook');
    if (!isDiscordWebhookUrl(url, { allowAnyHost: true })) throw new PermanentError('invalid_address', 'the Discord webhook is not an http(s) URL');
    if (!job.notification.title.trim() && !job.notification.body.trim()) throw new PermanentError('empty_message', 'the notification has neither title nor body');
    const body = JSON.stringify(discordPayload(job));
    const res = await postClassified(this.#http, discordExecuteUrl(url), { 'content-type': 'application/json', 'user-agent': 'Herald-Discord/1' }, body, signal);
    const detail: AttemptDetail = { httpStatus: res.status, response: res.excerpt };
    const json = parseJson(res.excerpt);
    if (res.status >= 200 && res.status < 300) {
      const id = json && typeof (json as { id?: unknown }).id === 'string' ? (json as { id: string }).id : undefined;
      return id ? { ...detail, providerMessageId: id } : detail;
    }
    const err: DiscordError = json && typeof json === 'object' ? (json as DiscordError) : {};
    const what = `Discord answered ${res.status}${describe(err)}`;
    if (res.status === 429) throw new RateLimitedError(what, retryAfterMs(err, res), detail);
    if (res.status === 408 || res.status >= 500) throw new RetryableError(`http_${res.status}`, what, detail, parseRetryAfter(header(res, 'retry-after')));
    if (res.status >= 300 && res.status < 400) throw new PermanentError('http_redirect', `${what} (redirects are not followed)`, detail);
    const errorClass = (typeof err.code === 'number' ? (CODE_CLASS[err.code] ?? `discord_${err.code}`) : undefined) ?? `http_${res.status}`;
    const gone = res.status === 404 || res.status === 401 || err.code === 10015 || err.code === 50027;
    if (gone) throw new PermanentError(errorClass, `${what}: the webhook no longer works`, detail, { addressGone: true });
    throw new PermanentError(errorClass, what, detail);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function parseJson(s: string): unknown {
  try {
    return JSON.parse(s);
  } catch {
    return undefined;
  }
}

/** ": <message> (code <n>)", plus the first field error of an Invalid Form Body ("embeds.0.title: …"). */
function describe(err: DiscordError): string {
  if (typeof err.message !== 'string') return '';
  const code = typeof err.code === 'number' ? ` (code ${err.code})` : '';
  const field = firstFieldError(err.errors, '');
  return `: ${err.message}${code}${field ? `; ${field}` : ''}`;
}

function firstFieldError(errors: unknown, path: string): string | undefined {
  if (!errors || typeof errors !== 'object') return undefined;
  const o = errors as Record<string, unknown>;
  if (Array.isArray(o._errors)) {
    const first = o._errors[0] as { message?: unknown } | undefined;
    return `${path || 'body'}: ${typeof first?.message === 'string' ? first.message : 'invalid'}`;
  }
  for (const [k, v] of Object.entries(o)) {
    const found = firstFieldError(v, path ? `${path}.${k}` : k);
    if (found) return found;
  }
  return undefined;
}

function retryAfterMs(err: DiscordError, res: HttpResult): number | undefined {
  if (typeof err.retry_after === 'number' && Number.isFinite(err.retry_after) && err.retry_after >= 0) return Math.ceil(err.retry_after * 1000);
  const resetAfter = header(res, 'x-ratelimit-reset-after');
  if (resetAfter !== undefined && /^\d+(\.\d+)?$/.test(resetAfter.trim())) return Math.ceil(Number(resetAfter) * 1000);
  return parseRetryAfter(header(res, 'retry-after'));
}
