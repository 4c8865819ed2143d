// Web Push (RFC 8030) to a browser's PushSubscription, one POST per delivery to the subscription's
// endpoint (a browser-supplied URL, so it goes through SafeHttp and its SSRF policy):
//   body    the JSON payload below, encrypted for the subscription with aes128gcm (RFC 8291, RFC 8188;
//           web-push's generateRequestDetails): {title, body, data, id, delivery_id, url?, icon?,
//           badge?, tag?}; the service worker's `push` event reads it with event.data.json()
//   headers Authorization: vapid t=<ES256 JWT {aud: endpoint origin, exp, sub}>, k=<VAPID public key>
//           (RFC 8292), TTL, Urgency, Topic (when set), Content-Encoding: aes128gcm
// The VAPID JWT is signed for 12 hours and reused per (credentials version, push service origin)
// until less than an hour of it is left (RFC 8292 allows up to 24 hours).
// Outcome: 2xx success (Location, the push message resource, is the provider message id);
// 404 and 410 the subscription is gone (permanent, the device is disabled); 413 permanent
// payload_too_large; 429 rate limited (Retry-After); 408 and 5xx retryable (Retry-After);
// 401, 403 and 400 UnauthorizedRegistration permanent `vapid` (the keys do not match the ones the
// browser subscribed with, or the JWT was refused); other 4xx and 3xx permanent; network errors as
// for webhooks (refused destination permanent, timeout and others retryable).
// Limit: push services need accept only 4096 bytes of encrypted body, which leaves 3993 bytes of JSON
// (86-byte aes128gcm header, 1 delimiter byte, 16-byte tag); the body is cut between grapheme
// clusters and ends in "…" to fit; a payload that does not fit even so is permanent payload_too_large.

import { createECDH, createPublicKey } from 'node:crypto';
import { Type, type Static } from 'typebox';
import { createRequire } from 'node:module';
import type * as WebPush from 'web-push';
import { parseRetryAfter } from '../domain/retry.ts';
import type { SafeHttp } from '../net/safe-http.ts';
import {
  PermanentError,
  transportError,
  RateLimitedError,
  RetryableError,
  type Channel,
  type DeliveryJob,
  type DeliveryResult,
} from './channel.ts';

/** web-push, loaded on first use: a process that sends no web push never loads it (nor its ASN.1 and JWT dependencies). */
let webpushModule: typeof WebPush | undefined;
const webpushLib = (): typeof WebPush => (webpushModule ??= createRequire(import.meta.url)('web-push') as typeof WebPush);

export const WEBPUSH_MAX_PLAINTEXT_BYTES = 4096 - 86 - 1 - 16;
export const WEBPUSH_DEFAULT_TTL_SECONDS = 86_400;
export const WEBPUSH_MAX_TTL_SECONDS = 2_419_200;
const VAPID_TOKEN_LIFETIME_S = 12 * 3600;
const VAPID_TOKEN_MIN_LEFT_S = 3600;
const CACHE_ENTRIES = 1000;
const URGENCIES = ['very-low', 'low', 'normal', 'high'] as const;
type Urgency = (typeof URGENCIES)[number];
const TOPIC = /^[A-Za-z0-9_-]{1,32}$/;
// Made on first use: creating a segmenter loads ICU's break rules, about 2.5 MB an idle process
// that sends no Web Push does not need (bench/idle.ts).
let graphemes: Intl.Segmenter | undefined;

export const WebpushProviderConfig = Type.Object(
  {
    vapid_public_key: Type.Optional(
      Type.String({
        pattern: '^B[A-Za-z0-9_-]{86}$',
        description: 'VAPID public key: the uncompressed P-256 point, base64url (87 chars). The browser subscribes with it as applicationServerKey. Omit both keys to have Herald generate a pair',
      }),
    ),
    vapid_private_key: Type.Optional(
      Type.String({ pattern: '^[A-Za-z0-9_-]{43}$', description: 'VAPID private key: the 32-byte P-256 scalar, base64url (43 chars)' }),
    ),
    subject: Type.String({
      pattern: '^(mailto:[^\\s]+@[^\\s]+|https://[^\\s]+)$',
      maxLength: 512,
      description: 'How the push service can reach you: "mailto:ops@example.com" or "https://example.com/contact"',
    }),
  },
  { additionalProperties: false },
);
export type WebpushProviderConfig = Static<typeof WebpushProviderConfig>;

export const WEBPUSH_SECRET_FIELDS: readonly string[] = ['vapid_private_key'];

export const WebpushOptions = Type.Object(
  {
    ttl: Type.Optional(
      Type.Integer({ minimum: 0, maximum: WEBPUSH_MAX_TTL_SECONDS, description: `Seconds the push service keeps the message for an offline browser (default ${WEBPUSH_DEFAULT_TTL_SECONDS}); 0 delivers only to a browser connected now` }),
    ),
    urgency: Type.Optional(
      Type.Union(URGENCIES.map((u) => Type.Literal(u)), { description: 'RFC 8030 Urgency: very-low, low, normal (default) or high' }),
    ),
    topic: Type.Optional(
      Type.String({ pattern: TOPIC.source, description: 'RFC 8030 Topic: a newer message with the same topic replaces an undelivered one (up to 32 URL-safe base64 characters)' }),
    ),
    icon: Type.Optional(Type.String({ maxLength: 2048, description: 'Icon URL for the notification' })),
    badge: Type.Optional(Type.String({ maxLength: 2048, description: 'Badge URL for the notification' })),
    url: Type.Optional(Type.String({ maxLength: 2048, description: 'URL the service worker opens when the notification is clicked' })),
    tag: Type.Optional(Type.String({ maxLength: 256, description: 'Notification tag: a notification with the same tag replaces the shown one' })),
  },
  { additionalProperties: false },
);
export type WebpushOptions = Static<typeof WebpushOptions>;

export interface WebpushChannelOptions {
  http: SafeHttp;
  /** Milliseconds since the epoch; VAPID token lifetimes are measured on it. */
  now?: () => number;
}

/** A fresh VAPID key pair, base64url as the provider config and browsers take them. */
export function generateVapidKeys(): { publicKey: string; privateKey: string } {
  const { publicKey, privateKey } = webpushLib().generateVAPIDKeys();
  return { publicKey, privateKey };
}

interface Vapid {
  subject: string;
  publicKey: string;
  privateKey: string;
}

interface SendOptions {
  ttl: number;
  urgency: Urgency;
  topic?: string;
  icon?: string;
  badge?: string;
  url?: string;
  tag?: string;
}

export class WebpushChannel implements Channel {
  readonly name = 'webpush' as const;
  readonly #http: SafeHttp;
  readonly #now: () => number;
  /** Credentials version -> the checked VAPID credentials, or why they cannot be used. */
  readonly #credentials = new Map<string, Vapid | string>();
  /** Credentials version + push service origin -> the Authorization header and its JWT's exp. */
  readonly #tokens = new Map<string, { authorization: string; exp: number }>();

  constructor(opts: WebpushChannelOptions) {
    this.#http = opts.http;
    this.#now = opts.now ?? Date.now;
  }

  async deliver(job: DeliveryJob, signal: AbortSignal): Promise<DeliveryResult> {
    const vapid = this.#vapid(job);
    const subscription = job.device?.subscription;
    if (!subscription) throw new PermanentError('no_address', 'the delivery has no Web Push subscription');
    const endpoint = checkSubscription(subscription);
    const options = sendOptions(job.notification.options);
    const payload = webpushPayload(job, options);

    let details: WebPush.RequestDetails;
    try {
      details = webpushLib().generateRequestDetails(subscription, payload, {
        // null, not omitted (which would mean web-push's global details): the header comes from #authorization.
        vapidDetails: null as never,
        TTL: options.ttl,
        urgency: options.urgency,
        ...(options.topic ? { topic: options.topic } : {}),
        contentEncoding: 'aes128gcm',
      });
    } catch (err) {
      throw new PermanentError('encryption_failed', `could not encrypt for the subscription: ${(err as Error).message}`);
    }
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(details.headers)) {
      if (name.toLowerCase() !== 'content-length') headers[name.toLowerCase()] = String(value);
    }
    headers['authorization'] = this.#authorization(job.provider!.version, endpoint.origin, vapid);
    // SafeHttp declares a string body; undici sends a Buffer as is, which the encrypted body must be.
    const body = details.body as unknown as string;

    let res;
    try {
      res = await this.#http.request('POST', endpoint.href, headers, body, signal);
    } catch (err) {
      throw transportError(err);
    }
    const detail = { httpStatus: res.status, response: res.excerpt };
    const status = res.status;
    if (status >= 200 && status < 300) {
      const location = headerValue(res.headers['location']);
      return location ? { ...detail, providerMessageId: location } : detail;
    }
    const retryAfter = parseRetryAfter(headerValue(res.headers['retry-after']));
    if (status === 429) throw new RateLimitedError('push service answered 429', retryAfter, detail);
    if (status === 404 || status === 410) {
      throw new PermanentError('unregistered', `push service answered ${status}: the subscription is gone`, detail, { addressGone: true });
    }
    if (status === 413) throw new PermanentError('payload_too_large', 'push service answered 413: the encrypted payload is too large', detail);
    if (status === 401 || status === 403 || (status === 400 && /UnauthorizedRegistration/i.test(res.excerpt))) {
      throw new PermanentError('vapid', `push service answered ${status}: VAPID refused (the keys must be the ones the browser subscribed with)`, detail);
    }
    if (status === 408 || status >= 500) throw new RetryableError(`http_${status}`, `push service answered ${status}`, detail, retryAfter);
    if (status === 400) throw new PermanentError('bad_request', 'push service answered 400', detail);
    if (status >= 300 && status < 400) throw new PermanentError('http_redirect', `push service answered ${status} (redirects are not followed)`, detail);
    throw new PermanentError(`http_${status}`, `push service answered ${status}`, detail);
  }

  close(): Promise<void> {
    this.#credentials.clear();
    this.#tokens.clear();
    return Promise.resolve();
  }

  #vapid(job: DeliveryJob): Vapid {
    const provider = job.provider;
    if (!provider) throw new PermanentError('no_provider', 'the workspace has no webpush provider (PUT /v1/providers/webpush)');
    let checked = this.#credentials.get(provider.version);
    if (checked === undefined) {
      checked = checkCredentials(provider.config);
      remember(this.#credentials, provider.version, checked);
    }
    if (typeof checked === 'string') throw new PermanentError('provider_config', checked);
    return checked;
  }

  #authorization(version: string, audience: string, vapid: Vapid): string {
    const key = `${version}\n${audience}`;
    const nowS = Math.floor(this.#now() / 1000);
    const cached = this.#tokens.get(key);
    if (cached && cached.exp - nowS >= VAPID_TOKEN_MIN_LEFT_S) return cached.authorization;
    const exp = nowS + VAPID_TOKEN_LIFETIME_S;
    const { Authorization } = webpushLib().getVapidHeaders(audience, vapid.subject, vapid.publicKey, vapid.privateKey, 'aes128gcm', exp);
    this.#tokens.delete(key);
    remember(this.#tokens, key, { authorization: Authorization, exp });
    return Authorization;
  }
}

/** The JSON the service worker receives, cut to WEBPUSH_MAX_PLAINTEXT_BYTES by shortening the body. */
export function webpushPayload(job: DeliveryJob, options: Partial<SendOptions> = {}): string {
  const build = (body: string) =>
    JSON.stringify({
      title: job.notification.title,
      body,
      data: job.notification.data ?? null,
      id: job.notificationId,
      delivery_id: job.deliveryId,
      ...(options.url !== undefined ? { url: options.url } : {}),
      ...(options.icon !== undefined ? { icon: options.icon } : {}),
      ...(options.badge !== undefined ? { badge: options.badge } : {}),
      ...(options.tag !== undefined ? { tag: options.tag } : {}),
    });
  const fits = (s: string) => Buffer.byteLength(s) <= WEBPUSH_MAX_PLAINTEXT_BYTES;
  const full = build(job.notification.body);
  if (fits(full)) return full;
  const chars = Array.from((graphemes ??= new Intl.Segmenter('en', { granularity: 'grapheme' })).segment(job.notification.body), (g) => g.segment);
  const cut = (n: number) => build(`${chars.slice(0, n).join('').trimEnd()}…`);
  if (!fits(cut(0))) {
    const rest = Buffer.byteLength(cut(0));
    throw new PermanentError(
      'payload_too_large',
      `the Web Push payload is ${rest} bytes even with the body cut to "…" (title, data and options must fit in ${WEBPUSH_MAX_PLAINTEXT_BYTES} bytes of JSON)`,
    );
  }
  let lo = 0;
  let hi = chars.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(cut(mid))) lo = mid;
    else hi = mid - 1;
  }
  return cut(lo);
}

function sendOptions(raw: Record<string, unknown>): SendOptions {
  const bad = (why: string) => new PermanentError('invalid_options', `channel_options.webpush: ${why}`);
  const ttl = raw['ttl'] ?? WEBPUSH_DEFAULT_TTL_SECONDS;
  if (typeof ttl !== 'number' || !Number.isInteger(ttl) || ttl < 0 || ttl > WEBPUSH_MAX_TTL_SECONDS) throw bad(`ttl must be an integer from 0 to ${WEBPUSH_MAX_TTL_SECONDS}`);
  const urgency = raw['urgency'] ?? 'normal';
  if (!URGENCIES.includes(urgency as Urgency)) throw bad(`urgency must be one of ${URGENCIES.join(', ')}`);
  const out: SendOptions = { ttl, urgency: urgency as Urgency };
  const topic = raw['topic'];
  if (topic !== undefined) {
    if (typeof topic !== 'string' || !TOPIC.test(topic)) throw bad('topic must be 1 to 32 URL-safe base64 characters');
    out.topic = topic;
  }
  for (const field of ['icon', 'badge', 'url', 'tag'] as const) {
    const v = raw[field];
    if (v === undefined) continue;
    if (typeof v !== 'string') throw bad(`${field} must be a string`);
    out[field] = v;
  }
  return out;
}

function checkSubscription(sub: { endpoint: string; keys: { p256dh: string; auth: string } }): URL {
  const gone = (why: string) => new PermanentError('invalid_subscription', `the Web Push subscription is unusable: ${why}`, {}, { addressGone: true });
  let url: URL;
  try {
    url = new URL(sub.endpoint);
  } catch {
    throw gone('the endpoint is not a URL');
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') throw gone('the endpoint is not an http(s) URL');
  const b64url = /^[A-Za-z0-9_-]+={0,2}$/;
  const p256dh = b64url.test(sub.keys?.p256dh ?? '') ? Buffer.from(sub.keys.p256dh, 'base64url') : null;
  if (!p256dh || p256dh.length !== 65 || p256dh[0] !== 4) throw gone('keys.p256dh is not an uncompressed P-256 point');
  try {
    createPublicKey({ key: { kty: 'EC', crv: 'P-256', x: p256dh.subarray(1, 33).toString('base64url'), y: p256dh.subarray(33).toString('base64url') }, format: 'jwk' });
  } catch {
    throw gone('keys.p256dh is not on the P-256 curve');
  }
  const auth = b64url.test(sub.keys?.auth ?? '') ? Buffer.from(sub.keys.auth, 'base64url') : null;
  if (!auth || auth.length < 16) throw gone('keys.auth is not 16 bytes');
  return url;
}

/** A problem with VAPID credentials that makes every send fail, or undefined (checked at PUT). */
export function webpushConfigProblem(config: Record<string, unknown>): string | undefined {
  const checked = checkCredentials(config);
  return typeof checked === 'string' ? checked : undefined;
}

function checkCredentials(config: Record<string, unknown>): Vapid | string {
  const { subject, vapid_public_key: publicKey, vapid_private_key: privateKey } = config;
  if (typeof subject !== 'string' || !/^(mailto:\S+@\S+|https:\/\/\S+)$/.test(subject)) return 'webpush provider: subject must be a mailto: or https: URL';
  if (typeof publicKey !== 'string' || typeof privateKey !== 'string') return 'webpush provider: vapid_public_key and vapid_private_key are required';
  try {
    const ecdh = createECDH('prime256v1');
    ecdh.setPrivateKey(Buffer.from(privateKey, 'base64url'));
    if (ecdh.getPublicKey().toString('base64url') !== publicKey) return 'webpush provider: vapid_public_key is not the public key of vapid_private_key';
  } catch {
    return 'webpush provider: vapid_private_key is not a P-256 private key';
  }
  return { subject, publicKey, privateKey };
}

function remember<K, V>(map: Map<K, V>, key: K, value: V): void {
  map.set(key, value);
  if (map.size > CACHE_ENTRIES) map.delete(map.keys().next().value as K);
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
