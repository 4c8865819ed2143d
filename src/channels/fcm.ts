// Firebase Cloud Messaging (HTTP v1 API). One POST per delivery to the device's registration token.
//   auth    OAuth 2.0 JWT-bearer grant: an RS256 assertion {iss: client_email, scope: firebase.messaging,
//           aud: token_uri, iat, exp: iat + 3600} signed with the service account's private key, POSTed
//           form-encoded to token_uri. The access token is cached per workspace and provider version
//           until 5 minutes before it expires; concurrent deliveries share one in-flight token request.
//   send    POST {base_url | https://fcm.googleapis.com}/v1/projects/{project_id}/messages:send
//           {message: {token, notification: {title, body, image}, data, android, apns, webpush}}
//           data: the notification's data (top-level keys; non-string values as JSON), channel_options
//           data over it, and herald_notification_id, herald_delivery_id, herald_kind over both.
//           priority, ttl and collapse_key map to android, apns headers and webpush headers; the ttl
//           counts from when Herald accepted the notification, so a retry never extends it.
// Outcome: 200 {name} success (providerMessageId = name). Errors by the FcmError errorCode in
// error.details, else by HTTP status:
//   UNREGISTERED (404)                        permanent 'unregistered', address gone
//   INVALID_ARGUMENT (400) about message.token permanent 'invalid_token', address gone
//   INVALID_ARGUMENT (400) otherwise          permanent 'invalid_argument'
//   SENDER_ID_MISMATCH (403)                  permanent 'sender_id_mismatch', address gone
//   THIRD_PARTY_AUTH_ERROR (401)              permanent 'auth' (APNs / Web Push credentials in Firebase)
//   401 otherwise (access token rejected)     retryable 'access_token_rejected'; the cached token is dropped
//   403 otherwise (PERMISSION_DENIED)         permanent 'auth'
//   QUOTA_EXCEEDED (429)                      rate limited, Retry-After honoured
//   UNAVAILABLE (503), INTERNAL (500), 5xx    retryable 'http_<status>', Retry-After honoured
//   other 404                                 permanent 'not_found' (unknown project)
// Token endpoint: 400/401/403 permanent 'auth'; 429 rate limited; 408 and 5xx retryable
// 'token_http_<status>'; an unusable 200 retryable 'token_response'.
// Limit: 4096 bytes of payload, counted as FCM does: data keys and values, and notification keys
// (each with its "gcm.notification." prefix) and values. The body, then the title, is cut with "…"
// to fit; when the rest alone does not fit, permanent 'payload_too_large'.

import { createPrivateKey, type KeyObject } from 'node:crypto';
import { Type, type Static } from 'typebox';
import { parseRetryAfter } from '../domain/retry.ts';
import type { HttpResult, SafeHttp } from '../net/safe-http.ts';
import {
  DeliveryError,
  PermanentError,
  transportError,
  RateLimitedError,
  RetryableError,
  type AttemptDetail,
  type Channel,
  type DeliveryJob,
  type DeliveryResult,
} from './channel.ts';

export const FCM_BASE_URL = 'https://fcm.googleapis.com';
export const FCM_TOKEN_URI = 'https://oauth2.googleapis.com/token';
export const FCM_SCOPE = 'https://www.googleapis.com/auth/firebase.messaging';
export const FCM_JWT_BEARER = 'urn:ietf:params:oauth:grant-type:jwt-bearer';
export const FCM_MAX_PAYLOAD_BYTES = 4096;
/** A cached access token is replaced this long before it expires. */
export const FCM_TOKEN_REFRESH_MARGIN_MS = 5 * 60_000;
/** FCM keeps an undelivered message at most 4 weeks. */
export const FCM_MAX_TTL_SECONDS = 2_419_200;

const NOTIFICATION_KEY_PREFIX = 'gcm.notification.';
const ELLIPSIS = '…';

export const FcmServiceAccount = Type.Object(
  {
    type: Type.Literal('service_account'),
    project_id: Type.String({ minLength: 1, maxLength: 100 }),
    private_key_id: Type.String({ minLength: 1, maxLength: 200 }),
    private_key: Type.String({ minLength: 1, maxLength: 16_384, description: 'PEM private key, as in the JSON key file' }),
    client_email: Type.String({ minLength: 3, maxLength: 320 }),
    token_uri: Type.Optional(Type.String({ minLength: 1, maxLength: 2048, pattern: '^https?://', description: `Default ${FCM_TOKEN_URI}` })),
  },
  { additionalProperties: true, description: 'The service account JSON key file from the Firebase console, as an object' },
);

export const FcmProviderConfig = Type.Object(
  {
    service_account: FcmServiceAccount,
    project_id: Type.Optional(Type.String({ minLength: 1, maxLength: 100, description: "The Firebase project to send through; default: the service account's project_id" })),
  },
  { additionalProperties: false },
);
export type FcmProviderConfig = Static<typeof FcmProviderConfig>;

export const FCM_SECRET_FIELDS: readonly string[] = ['service_account'];

/** Keys FCM refuses in data: "from", "message_type", and anything starting with "google" or "gcm". */
const RESERVED_DATA_KEY = /^(?:from|message_type|google.*|gcm.*)$/i;

export const FcmOptions = Type.Object(
  {
    priority: Type.Optional(Type.Union([Type.Literal('high'), Type.Literal('normal')], { description: 'Android priority; APNs 10 or 5; Web Push Urgency' })),
    ttl: Type.Optional(Type.Integer({ minimum: 0, maximum: FCM_MAX_TTL_SECONDS, description: 'Seconds the message may wait for an offline device, counted from acceptance; 0: now or never' })),
    collapse_key: Type.Optional(Type.String({ minLength: 1, maxLength: 64, description: 'A newer message with the same key replaces an undelivered older one (Android collapse_key, apns-collapse-id)' })),
    android_channel_id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    image: Type.Optional(Type.String({ maxLength: 1024, pattern: '^https://', description: 'https URL of an image shown in the notification' })),
    data: Type.Optional(
      Type.Record(Type.String(), Type.String({ maxLength: FCM_MAX_PAYLOAD_BYTES }), {
        maxProperties: 100,
        propertyNames: { minLength: 1, maxLength: 200, pattern: '^(?!(?:from|message_type)$)(?![Gg][Oo][Oo][Gg][Ll][Ee])(?![Gg][Cc][Mm])' },
        description: 'Extra string key/values for the app, over the notification data',
      }),
    ),
  },
  { additionalProperties: false },
);
export type FcmOptions = Static<typeof FcmOptions>;

export interface FcmChannelOptions {
  http: SafeHttp;
  /** Milliseconds since the epoch; injectable for tests. */
  now?: () => number;
}

interface FcmMessage {
  token: string;
  notification?: { title?: string; body?: string; image?: string };
  data: Record<string, string>;
  android?: { priority?: 'high' | 'normal'; ttl?: string; collapse_key?: string; notification?: { channel_id: string } };
  apns?: { headers: Record<string, string> };
  webpush?: { headers: Record<string, string> };
}

interface CachedToken {
  accessToken: string;
  refreshAt: number;
}

interface Account {
  key: string;
  projectId: string;
  clientEmail: string;
  privateKey: string;
  privateKeyId: string;
  tokenUri: string;
  baseUrl: string;
}

export class FcmChannel implements Channel {
  readonly name = 'fcm' as const;
  readonly #http: SafeHttp;
  readonly #now: () => number;
  readonly #tokens = new Map<string, CachedToken>();
  readonly #inflight = new Map<string, Promise<CachedToken>>();

  constructor(opts: FcmChannelOptions) {
    this.#http = opts.http;
    this.#now = opts.now ?? Date.now;
  }

  async deliver(job: DeliveryJob, signal: AbortSignal): Promise<DeliveryResult> {
    const token = job.device?.token;
    if (!token) throw new PermanentError('no_address', 'delivery has no FCM registration token');
    const account = readAccount(job);
    const message = buildMessage(job, token, this.#now());
    const body = JSON.stringify({ message });
    const url = `${account.baseUrl}/v1/projects/${encodeURIComponent(account.projectId)}/messages:send`;
    let accessToken: string;
    let res: HttpResult;
    try {
      accessToken = (await untilAborted(this.#accessToken(account), signal)).accessToken;
      res = await this.#http.request('POST', url, { 'content-type': 'application/json; charset=utf-8', authorization: `Bearer ${accessToken}` }, body, signal);
    } catch (err) {
      throw classifyThrown(err);
    }
    const detail: AttemptDetail = { httpStatus: res.status, response: res.excerpt };
    if (res.status >= 200 && res.status < 300) {
      const name = (parseJson(res.excerpt) as { name?: unknown } | undefined)?.name;
      return typeof name === 'string' ? { ...detail, providerMessageId: name } : detail;
    }
    const error = classifySendError(res, detail);
    if (error.errorClass === 'access_token_rejected' && this.#tokens.get(account.key)?.accessToken === accessToken) this.#tokens.delete(account.key);
    throw error;
  }

  close(): Promise<void> {
    this.#tokens.clear();
    return Promise.resolve();
  }

  #accessToken(account: Account): Promise<CachedToken> {
    const cached = this.#tokens.get(account.key);
    if (cached && this.#now() < cached.refreshAt) return Promise.resolve(cached);
    let pending = this.#inflight.get(account.key);
    if (!pending) {
      pending = this.#fetchToken(account).finally(() => this.#inflight.delete(account.key));
      this.#inflight.set(account.key, pending);
    }
    return pending;
  }

  async #fetchToken(account: Account): Promise<CachedToken> {
    let key: KeyObject;
    try {
      key = createPrivateKey(account.privateKey.replace(/\\n/g, '\n'));
    } catch (err) {
      throw new PermanentError('config', `service_account.private_key is not a usable PEM private key: ${(err as Error).message}`);
    }
    const iat = Math.floor(this.#now() / 1000);
    // jose is loaded with the first token: a process that sends no FCM (nor APNs) never loads it.
    const { SignJWT } = await import('jose');
    const assertion = await new SignJWT({ scope: FCM_SCOPE })
      .setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: account.privateKeyId })
      .setIssuer(account.clientEmail)
      .setAudience(account.tokenUri)
      .setIssuedAt(iat)
      .setExpirationTime(iat + 3600)
      .sign(key);
    const form = new URLSearchParams({ grant_type: FCM_JWT_BEARER, assertion }).toString();
    const res = await this.#http.request('POST', account.tokenUri, { 'content-type': 'application/x-www-form-urlencoded' }, form);
    const detail: AttemptDetail = { httpStatus: res.status, response: res.excerpt };
    const got = parseJson(res.excerpt) as { access_token?: unknown; expires_in?: unknown; error?: unknown; error_description?: unknown } | undefined;
    if (res.status === 200) {
      const expiresIn = Number(got?.expires_in);
      if (typeof got?.access_token !== 'string' || !got.access_token || !Number.isFinite(expiresIn) || expiresIn <= 0) {
        throw new RetryableError('token_response', 'token endpoint answered 200 without an access_token and expires_in', detail);
      }
      const receivedAt = this.#now();
      const lifetimeMs = expiresIn * 1000;
      const token = { accessToken: got.access_token, refreshAt: receivedAt + lifetimeMs - Math.min(FCM_TOKEN_REFRESH_MARGIN_MS, lifetimeMs / 2) };
      this.#remember(account.key, token);
      return token;
    }
    const why = [got?.error, got?.error_description].filter((s) => typeof s === 'string' && s).join(': ') || `HTTP ${res.status}`;
    const retryAfter = parseRetryAfter(headerValue(res.headers['retry-after']));
    if (res.status === 429) throw new RateLimitedError(`token endpoint answered 429: ${why}`, retryAfter, detail);
    if (res.status === 408 || res.status >= 500) throw new RetryableError(`token_http_${res.status}`, `token endpoint answered ${res.status}: ${why}`, detail, retryAfter);
    if (res.status === 400 || res.status === 401 || res.status === 403) throw new PermanentError('auth', `token endpoint refused the service account: ${why}`, detail);
    throw new PermanentError(`token_http_${res.status}`, `token endpoint answered ${res.status}: ${why}`, detail);
  }

  #remember(key: string, token: CachedToken): void {
    if (this.#tokens.size >= 1000) {
      const now = this.#now();
      for (const [k, t] of this.#tokens) if (t.refreshAt <= now) this.#tokens.delete(k);
    }
    this.#tokens.set(key, token);
  }
}

function readAccount(job: DeliveryJob): Account {
  const provider = job.provider;
  if (!provider) throw new PermanentError('no_provider', 'the workspace has no fcm provider credentials (PUT /v1/providers/fcm)');
  const config = provider.config as Partial<FcmProviderConfig>;
  const sa = (config.service_account ?? {}) as Partial<Static<typeof FcmServiceAccount>>;
  const projectId = config.project_id ?? sa.project_id;
  if (!projectId || !sa.client_email || !sa.private_key) {
    throw new PermanentError('config', 'fcm provider config needs service_account.client_email, service_account.private_key and a project_id');
  }
  return {
    key: `${job.workspaceId}\u0000${provider.version}`,
    projectId,
    clientEmail: sa.client_email,
    privateKey: sa.private_key,
    privateKeyId: sa.private_key_id ?? '',
    tokenUri: sa.token_uri ?? FCM_TOKEN_URI,
    baseUrl: (provider.baseUrl ?? FCM_BASE_URL).replace(/\/+$/, ''),
  };
}

/** Builds the v1 message for one delivery, fitted to FCM_MAX_PAYLOAD_BYTES. */
export function buildMessage(job: DeliveryJob, token: string, now: number): FcmMessage {
  const opts = job.notification.options as FcmOptions;
  const data = messageData(job);
  const message: FcmMessage = { token, data };
  const notification: NonNullable<FcmMessage['notification']> = {};
  if (job.notification.title) notification.title = job.notification.title;
  if (job.notification.body) notification.body = job.notification.body;
  if (opts.image) notification.image = opts.image;
  if (Object.keys(notification).length > 0) message.notification = notification;

  let ttl: number | undefined;
  if (opts.ttl !== undefined) {
    ttl = opts.ttl === 0 ? 0 : Math.min(opts.ttl, Math.ceil(opts.ttl - (now - job.notification.createdAt) / 1000));
    if (opts.ttl > 0 && ttl <= 0) throw new PermanentError('expired', `the notification's ttl of ${opts.ttl}s passed before it could be sent`);
  }
  const android: NonNullable<FcmMessage['android']> = {};
  const apns: Record<string, string> = {};
  const webpush: Record<string, string> = {};
  if (opts.priority) {
    android.priority = opts.priority;
    apns['apns-priority'] = opts.priority === 'high' ? '10' : '5';
    webpush.Urgency = opts.priority;
  }
  if (ttl !== undefined) {
    android.ttl = `${ttl}s`;
    apns['apns-expiration'] = ttl === 0 ? '0' : String(Math.floor(now / 1000) + ttl);
    webpush.TTL = String(ttl);
  }
  if (opts.collapse_key) {
    android.collapse_key = opts.collapse_key;
    apns['apns-collapse-id'] = opts.collapse_key;
  }
  if (opts.android_channel_id) android.notification = { channel_id: opts.android_channel_id };
  if (Object.keys(android).length > 0) message.android = android;
  if (Object.keys(apns).length > 0) message.apns = { headers: apns };
  if (Object.keys(webpush).length > 0) message.webpush = { headers: webpush };
  return fitPayload(message);
}

function messageData(job: DeliveryJob): Record<string, string> {
  const data: Record<string, string> = {};
  const source = job.notification.data;
  if (source !== null && source !== undefined) {
    if (typeof source === 'object' && !Array.isArray(source)) {
      for (const [k, v] of Object.entries(source)) {
        if (v === undefined) continue;
        data[k] = typeof v === 'string' ? v : JSON.stringify(v);
      }
    } else {
      data.data = typeof source === 'string' ? source : JSON.stringify(source);
    }
  }
  Object.assign(data, (job.notification.options as FcmOptions).data ?? {});
  for (const k of Object.keys(data)) {
    if (RESERVED_DATA_KEY.test(k)) throw new PermanentError('invalid_data_key', `FCM refuses the data key "${k}" ("from", "message_type", and keys starting with "google" or "gcm" are reserved)`);
  }
  data.herald_notification_id = job.notificationId;
  data.herald_delivery_id = job.deliveryId;
  data.herald_kind = job.notification.kind;
  return data;
}

/** The payload size FCM limits: data keys and values, notification keys (with their prefix) and values. */
export function fcmPayloadBytes(message: Pick<FcmMessage, 'data' | 'notification' | 'android'>): number {
  let n = 0;
  for (const [k, v] of Object.entries(message.data)) n += Buffer.byteLength(k) + Buffer.byteLength(v);
  const fields: [string, string | undefined][] = [
    ...Object.entries(message.notification ?? {}),
    ['android_channel_id', message.android?.notification?.channel_id],
  ];
  for (const [k, v] of fields) if (v !== undefined) n += Buffer.byteLength(NOTIFICATION_KEY_PREFIX + k) + Buffer.byteLength(v);
  return n;
}

function fitPayload(message: FcmMessage): FcmMessage {
  if (fcmPayloadBytes(message) <= FCM_MAX_PAYLOAD_BYTES) return message;
  const notification = message.notification ?? {};
  const fits = (title: string | undefined, body: string | undefined) =>
    fcmPayloadBytes({ ...message, notification: { ...notification, title, body } }) <= FCM_MAX_PAYLOAD_BYTES;
  const finish = (title: string | undefined, body: string | undefined): FcmMessage => {
    const n = { ...notification, title, body };
    if (title === undefined) delete n.title;
    if (body === undefined) delete n.body;
    if (Object.keys(n).length > 0) return { ...message, notification: n };
    const { notification: _dropped, ...rest } = message;
    return rest;
  };
  if (!fits(undefined, undefined)) {
    throw new PermanentError(
      'payload_too_large',
      `the data and notification fields other than title and body take ${fcmPayloadBytes(finish(undefined, undefined))} bytes; FCM allows ${FCM_MAX_PAYLOAD_BYTES}`,
    );
  }
  if (notification.body !== undefined && fits(notification.title, undefined)) {
    const body = truncate(notification.body, (candidate) => fits(notification.title, candidate));
    return finish(notification.title, body);
  }
  const title = notification.title === undefined ? undefined : truncate(notification.title, (candidate) => fits(candidate, undefined));
  return finish(title, undefined);
}

/** The longest prefix of `text` (whole graphemes) plus "…" that `fits`, or undefined if none does. */
function truncate(text: string, fits: (candidate: string) => boolean): string | undefined {
  const ends = [0];
  for (const { index, segment } of new Intl.Segmenter(undefined, { granularity: 'grapheme' }).segment(text)) ends.push(index + segment.length);
  let lo = 0;
  let hi = ends.length - 2;
  if (!fits(ELLIPSIS)) return undefined;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(text.slice(0, ends[mid]) + ELLIPSIS)) lo = mid;
    else hi = mid - 1;
  }
  return text.slice(0, ends[lo]).trimEnd() + ELLIPSIS;
}

interface GoogleError {
  code?: number;
  message?: string;
  status?: string;
  details?: { '@type'?: string; errorCode?: string; fieldViolations?: { field?: string; description?: string }[] }[];
}

function classifySendError(res: HttpResult, detail: AttemptDetail): DeliveryError {
  const error = (parseJson(res.excerpt) as { error?: GoogleError } | undefined)?.error;
  const details = Array.isArray(error?.details) ? error.details : [];
  const errorCode = details.find((d) => d?.['@type']?.endsWith('google.firebase.fcm.v1.FcmError'))?.errorCode;
  const violations = details.flatMap((d) => (Array.isArray(d?.fieldViolations) ? d.fieldViolations : []));
  const said = [error?.status, errorCode && errorCode !== error?.status ? errorCode : undefined, error?.message].filter(Boolean).join(' ') || `HTTP ${res.status}`;
  const retryAfter = parseRetryAfter(headerValue(res.headers['retry-after']));
  const status = res.status;

  if (errorCode === 'UNREGISTERED') return new PermanentError('unregistered', `FCM: the registration token is no longer valid (${said})`, detail, { addressGone: true });
  if (errorCode === 'SENDER_ID_MISMATCH') return new PermanentError('sender_id_mismatch', `FCM: the registration token belongs to another sender (${said})`, detail, { addressGone: true });
  if (errorCode === 'THIRD_PARTY_AUTH_ERROR') return new PermanentError('auth', `FCM: the APNs certificate or auth key, or the Web Push credentials, in the Firebase project were refused (${said})`, detail);
  if (errorCode === 'QUOTA_EXCEEDED' || status === 429) return new RateLimitedError(`FCM answered ${status}: ${said}`, retryAfter, detail);
  if (errorCode === 'UNAVAILABLE' || errorCode === 'INTERNAL' || status >= 500 || status === 408) {
    return new RetryableError(`http_${status}`, `FCM answered ${status}: ${said}`, detail, retryAfter);
  }
  if (status === 401) return new RetryableError('access_token_rejected', `FCM refused the access token; a new one is requested next attempt (${said})`, detail);
  if (status === 400 || errorCode === 'INVALID_ARGUMENT') {
    const aboutToken = violations.some((v) => v?.field === 'message.token') || /registration token/i.test(error?.message ?? '');
    if (aboutToken) return new PermanentError('invalid_token', `FCM: not a valid registration token (${said})`, detail, { addressGone: true });
    return new PermanentError('invalid_argument', `FCM refused the message: ${said}`, detail);
  }
  if (status === 403) return new PermanentError('auth', `FCM refused the service account: ${said}`, detail);
  if (status === 404) return new PermanentError('not_found', `FCM: ${said}`, detail);
  return new PermanentError(`http_${status}`, `FCM answered ${status}: ${said}`, detail);
}

function classifyThrown(err: unknown): DeliveryError {
  if (err instanceof DeliveryError) return err;
  return transportError(err);
}

/** Waits for a promise shared with other deliveries without letting one delivery's abort cancel it for all. */
function untilAborted<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
