// Slack incoming webhooks. The recipient's webhook URL is the credential (no provider config); it is
// user-supplied, so the request goes through SafeHttp's SSRF policy. One POST per delivery:
//   body    {text, blocks, username?, icon_emoji?, icon_url?} as application/json
//           text    fallback for notifications: title and body, mrkdwn-escaped, <= 3000 chars
//           blocks  header (title, plain_text <= 150), section (body, mrkdwn <= 3000),
//                   actions with one link button (text <= 75, url <= 3000) when there is a link
//   link    options.link, else notification.data.url when it is an http(s) URL of <= 3000 chars
// Text is truncated with "…" to Block Kit's limits. Body and fallback text escape &, < and > so a
// notification cannot ping <!channel> or forge links; *bold* and other mrkdwn still render.
// Outcome (Slack answers with a bare error string as the body):
//   200 "ok"                                           success (Slack returns no message id)
//   429                                                RateLimitedError, Retry-After (seconds)
//   408, 5xx (rollup_error)                            retryable
//   404 channel_not_found | no_service, 410 channel_is_archived, 403 invalid_token, no_team,
//   team_disabled, no_active_hooks, any other 404/410  permanent, addressGone: the webhook is dead
//   400 invalid_payload | no_text | invalid_blocks …, 403 action_prohibited |
//   posting_to_general_channel_denied, other 4xx, 3xx  permanent
//   refused destination                                permanent 'destination_refused'
// errorClass is Slack's error string when the body is one, else http_<status>. Nothing is sent for a
// recipient without a webhook ('no_address') or a notification without title and body ('empty_message').

import { Type, type Static } from 'typebox';
import { parseRetryAfter } from '../domain/retry.ts';
import type { HttpResult, SafeHttp } from '../net/safe-http.ts';
import {
  PermanentError,
  transportError,
  RateLimitedError,
  RetryableError,
  type AttemptDetail,
  type Channel,
  type DeliveryJob,
  type DeliveryResult,
} from './channel.ts';

export const SLACK_LIMITS = {
  headerText: 150,
  sectionText: 3000,
  fallbackText: 3000,
  buttonText: 75,
  buttonUrl: 3000,
} as const;

const SLACK_HOSTS = new Set(['hooks.slack.com', 'hooks.slack-gov.com']);

export const SlackOptions = Type.Object(
  {
    username: Type.Optional(Type.String({ minLength: 1, maxLength: 80, description: 'Display name (legacy custom-integration webhooks only; app webhooks ignore it)' })),
    icon_emoji: Type.Optional(Type.String({ pattern: '^:[^:\\s]+:$', maxLength: 100, description: 'e.g. :rocket: (legacy webhooks only)' })),
    icon_url: Type.Optional(Type.String({ format: 'uri', pattern: '^https?://', maxLength: 2048, description: 'Avatar image URL (legacy webhooks only)' })),
    link: Type.Optional(Type.String({ format: 'uri', pattern: '^https?://', maxLength: SLACK_LIMITS.buttonUrl, description: 'Adds a button opening this URL; default: data.url' })),
    link_text: Type.Optional(Type.String({ minLength: 1, maxLength: SLACK_LIMITS.buttonText, description: 'The button label (default "Open")' })),
  },
  { additionalProperties: false },
);
export type SlackOptions = Static<typeof SlackOptions>;

/**
 * Whether `url` may be stored as a recipient's Slack webhook: https://hooks.slack.com/services/…
 * (or GovSlack's hooks.slack-gov.com). With allowAnyHost, any http(s) URL (tests, and Slack-compatible
 * receivers such as Mattermost or Rocket.Chat); SafeHttp's SSRF policy still applies when sending.
 */
export function isSlackWebhookUrl(url: string, opts: { allowAnyHost?: boolean } = {}): boolean {
  const u = chatWebhookUrl(url);
  if (!u) return false;
  if (opts.allowAnyHost) return true;
  return u.protocol === 'https:' && (u.port === '' || u.port === '443') && SLACK_HOSTS.has(u.hostname) && /^\/services\/[A-Za-z0-9]+\/[A-Za-z0-9]+\/[A-Za-z0-9]+\/?$/.test(u.pathname);
}

/** `url` parsed, when it is an http(s) URL without credentials (what any chat webhook must be). */
export function chatWebhookUrl(url: string): URL | undefined {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return undefined;
  }
  if (u.username || u.password || (u.protocol !== 'https:' && u.protocol !== 'http:')) return undefined;
  return u;
}

/** Cuts `s` to at most `max` UTF-16 units, ending with "…" when cut; never splits a surrogate pair. */
export function truncate(s: string, max: number): string {
  if (s.length <= max) return s;
  let end = max - 1;
  if (end > 0 && isHighSurrogate(s.charCodeAt(end - 1))) end--;
  return s.slice(0, end) + '…';
}

/** Slack's control characters (mrkdwn and text): &, <, >. */
export function escapeSlack(s: string): string {
  return s.replace(/[&<>]/g, (c) => (c === '&' ? '&amp;' : c === '<' ? '&lt;' : '&gt;'));
}

/** Escapes `s` and cuts it to `max` units of escaped text, never inside an entity or a surrogate pair. */
export function escapeAndTruncate(s: string, max: number): string {
  const escaped = escapeSlack(s);
  if (escaped.length <= max) return escaped;
  let out = '';
  for (const ch of s) {
    const piece = escapeSlack(ch);
    if (out.length + piece.length > max - 1) break;
    out += piece;
  }
  return out + '…';
}

/** The link a notification carries: the option, else data.url when it is an http(s) URL. */
export function notificationLink(options: Record<string, unknown>, data: unknown, maxLength: number): string | undefined {
  const candidates = [options.link, data && typeof data === 'object' ? (data as Record<string, unknown>).url : undefined];
  for (const c of candidates) {
    if (typeof c !== 'string' || c.length > maxLength) continue;
    try {
      const u = new URL(c);
      if (u.protocol === 'https:' || u.protocol === 'http:') return c;
    } catch {
      // not a URL: ignored
    }
  }
  return undefined;
}

export function slackPayload(job: DeliveryJob): Record<string, unknown> {
  const { title, body, options, data } = job.notification;
  const blocks: Record<string, unknown>[] = [];
  if (title.trim()) blocks.push({ type: 'header', text: { type: 'plain_text', text: truncate(title, SLACK_LIMITS.headerText), emoji: true } });
  if (body.trim()) blocks.push({ type: 'section', text: { type: 'mrkdwn', text: escapeAndTruncate(body, SLACK_LIMITS.sectionText) } });
  const link = notificationLink(options, data, SLACK_LIMITS.buttonUrl);
  if (link) {
    const label = typeof options.link_text === 'string' && options.link_text ? options.link_text : 'Open';
    blocks.push({
      type: 'actions',
      elements: [{ type: 'button', text: { type: 'plain_text', text: truncate(label, SLACK_LIMITS.buttonText), emoji: true }, url: link, action_id: 'herald_link' }],
    });
  }
  const fallback = [title.trim(), body.trim()].filter(Boolean).join('\n');
  const payload: Record<string, unknown> = { text: escapeAndTruncate(fallback, SLACK_LIMITS.fallbackText), blocks };
  for (const k of ['username', 'icon_emoji', 'icon_url'] as const) {
    if (typeof options[k] === 'string' && options[k]) payload[k] = options[k];
  }
  return payload;
}

/** Error strings meaning the webhook (or its channel or workspace) is gone for good. */
const GONE = new Set(['channel_not_found', 'channel_is_archived', 'no_service', 'no_active_hooks', 'invalid_token', 'no_team', 'team_disabled']);

export class SlackChannel implements Channel {
  readonly name = 'slack' as const;
  readonly #http: SafeHttp;

  constructor(opts: { http: SafeHttp }) {
    this.#http = opts.http;
  }


  async deliver(job: DeliveryJob, signal: AbortSignal): Promise<DeliveryResult> {
    const url = job.recipient.slackWebhookUrl;
    if (!url) throw new PermanentError('no_address', 'recipient has no Slack webhook');
    if (!isSlackWebhookUrl(url, { allowAnyHost: true })) throw new PermanentError('invalid_address', 'the Slack webhook is not an http(s) URL');
    if (!job.notification.title.trim() && !job.notification.body.trim()) throw new PermanentError('empty_message', 'the notification has neither title nor body');
    const body = JSON.stringify(slackPayload(job));
    const res = await postClassified(this.#http, url, { 'content-type': 'application/json; charset=utf-8', 'user-agent': 'Herald-Slack/1' }, body, signal);
    const detail: AttemptDetail = { httpStatus: res.status, response: res.excerpt };
    if (res.status >= 200 && res.status < 300) return detail;
    const error = /^[a-z_]{1,60}$/.test(res.excerpt.trim()) ? res.excerpt.trim() : '';
    const what = `Slack answered ${res.status}${error ? ` ${error}` : ''}`;
    if (res.status === 429) throw new RateLimitedError(what, parseRetryAfter(header(res, 'retry-after')), detail);
    if (res.status === 408 || res.status >= 500) throw new RetryableError(`http_${res.status}`, what, detail, parseRetryAfter(header(res, 'retry-after')));
    if (res.status >= 300 && res.status < 400) throw new PermanentError('http_redirect', `${what} (redirects are not followed)`, detail);
    if (GONE.has(error) || res.status === 404 || res.status === 410) {
      throw new PermanentError(error || `http_${res.status}`, `${what}: the webhook no longer works`, detail, { addressGone: true });
    }
    throw new PermanentError(error || `http_${res.status}`, what, detail);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** One POST through SafeHttp; network failures become the channel errors webhook.ts uses. */
export async function postClassified(http: SafeHttp, url: string, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<HttpResult> {
  try {
    return await http.post(url, headers, body, signal);
  } catch (err) {
    throw transportError(err);
  }
}

export function header(res: HttpResult, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function isHighSurrogate(code: number): boolean {
  return code >= 0xd800 && code <= 0xdbff;
}
