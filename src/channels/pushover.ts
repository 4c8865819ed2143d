// Pushover (https://pushover.net/api). One POST per delivery to {base}/1/messages.json, form-encoded:
//   token (the workspace's app_token), user (recipient.pushover.userKey), device (options.device,
//   else the recipient's device, else omitted: all of the user's devices), title, message,
//   timestamp (the notification's creation, unix seconds), and from channel_options.pushover:
//   priority, sound, url, url_title, html=1, ttl (not for priority 2: Pushover ignores it there),
//   and for priority 2 (emergency) retry, expire and callback (= job.callbackUrl when set).
// Limits (code points, as Pushover counts them): message 1024 and title 250 and url_title 100 are
// truncated with "…"; a url over 512 is PermanentError payload_too_large. An empty body sends the
// title as the message. Priority 2 needs retry >= 30 and expire <= 10800: the option schema
// checks it at accept and deliver checks it again (PermanentError invalid_options, nothing sent).
// Outcome:
//   2xx {status: 1, request, receipt?}  success; providerMessageId = receipt ?? request; a priority 2
//                                       send also returns receipt {id, expiresAt = now + expire}
//   429                                 RateLimitedError until X-Limit-App-Reset (unix seconds)
//   other 4xx {status: 0, errors, <field>: "..."}  PermanentError with Pushover's own text:
//                                       token invalid -> auth; user invalid -> invalid_user,
//                                       addressGone; device invalid -> invalid_device (addressGone
//                                       when the device is the recipient's own); else invalid_request
//   408, 5xx                            RetryableError http_<status>, no sooner than 5 s (Pushover's rule)
//   network                             RetryableError network / timeout; refused destination permanent
// Every answer carrying X-Limit-App-Limit/-Remaining/-Reset is reported to onAppLimits.
// Receipts: pollReceipt() reads GET {base}/1/receipts/{receipt}.json?token=..., at most once per
// HERALD_RECEIPT_POLL_INTERVAL per receipt (the setting cannot go below Pushover's 5 s);
// parseReceiptCallback() reads Pushover's acknowledgement POST.

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
  type ProviderCredentials,
} from './channel.ts';

export const PUSHOVER_BASE_URL = 'https://api.pushover.net';

export const PUSHOVER_LIMITS = { message: 1024, title: 250, url: 512, urlTitle: 100 } as const;
export const PUSHOVER_EMERGENCY = { minRetry: 30, maxExpire: 10_800 } as const;

/** The minimum wait Pushover asks for before repeating a request that got a 5xx. */
const SERVER_ERROR_WAIT_MS = 5_000;

const KEY_PATTERN = '^[A-Za-z0-9]{30}$';
const KEY_RE = new RegExp(KEY_PATTERN);
const DEVICE_LIST_PATTERN = '^[A-Za-z0-9_-]{1,25}(,[A-Za-z0-9_-]{1,25})*$';

export const PushoverProviderConfig = Type.Object(
  {
    app_token: Type.String({ pattern: KEY_PATTERN, description: "The application's API token (30 characters, A-Z a-z 0-9)" }),
  },
  { additionalProperties: false },
);
export type PushoverProviderConfig = Static<typeof PushoverProviderConfig>;

export const PUSHOVER_SECRET_FIELDS: readonly string[] = ['app_token'];

export const PushoverOptions = Type.Object(
  {
    priority: Type.Optional(Type.Integer({ minimum: -2, maximum: 2, description: '-2 lowest … 2 emergency (needs retry and expire)' })),
    retry: Type.Optional(Type.Integer({ minimum: PUSHOVER_EMERGENCY.minRetry, maximum: PUSHOVER_EMERGENCY.maxExpire, description: 'Priority 2: seconds between repeats (>= 30)' })),
    expire: Type.Optional(Type.Integer({ minimum: 1, maximum: PUSHOVER_EMERGENCY.maxExpire, description: 'Priority 2: seconds to keep repeating (<= 10800)' })),
    sound: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9_-]{1,64}$', description: 'A Pushover sound name (or a custom sound of the app)' })),
    url: Type.Optional(Type.String({ minLength: 1, maxLength: PUSHOVER_LIMITS.url })),
    url_title: Type.Optional(Type.String({ minLength: 1, maxLength: PUSHOVER_LIMITS.urlTitle })),
    html: Type.Optional(Type.Boolean({ description: 'The body is Pushover HTML (b, i, u, font color, a)' })),
    ttl: Type.Optional(Type.Integer({ minimum: 1, description: 'Seconds before the message is deleted from devices (ignored for priority 2)' })),
    device: Type.Optional(Type.String({ pattern: DEVICE_LIST_PATTERN, description: "Device name(s), comma-separated; overrides the recipient's device" })),
  },
  {
    additionalProperties: false,
    if: { properties: { priority: { const: 2 } }, required: ['priority'] },
    then: { required: ['retry', 'expire'] },
  },
);
export type PushoverOptions = Static<typeof PushoverOptions>;

export interface AppLimits {
  limit: number;
  remaining: number;
  /** Unix seconds at which the quota resets. */
  resetAt: number;
}

export interface PushoverChannelOptions {
  http: SafeHttp;
  /** Called with the workspace's app quota whenever an answer carries the X-Limit-App-* headers. */
  onAppLimits?: (workspaceId: string, limits: AppLimits) => void;
}

export interface ReceiptState {
  acknowledged: boolean;
  /** Milliseconds. */
  acknowledgedAt?: number;
  /** The user key that acknowledged first. */
  acknowledgedBy?: string;
  acknowledgedByDevice?: string;
  expired: boolean;
  /** Milliseconds: when Pushover stops repeating the notification. */
  expiresAt: number;
}

export interface ReceiptCallback {
  receipt: string;
  acknowledged: boolean;
  /** Milliseconds. */
  acknowledgedAt?: number;
  acknowledgedBy?: string;
  acknowledgedByDevice?: string;
}

interface PushoverAnswer {
  status?: unknown;
  request?: unknown;
  receipt?: unknown;
  errors?: unknown;
  [field: string]: unknown;
}

export class PushoverChannel implements Channel {
  readonly name = 'pushover' as const;
  readonly #http: SafeHttp;
  readonly #onAppLimits: PushoverChannelOptions['onAppLimits'];

  constructor(opts: PushoverChannelOptions) {
    this.#http = opts.http;
    this.#onAppLimits = opts.onAppLimits;
  }


  async deliver(job: DeliveryJob, signal: AbortSignal): Promise<DeliveryResult> {
    const address = job.recipient.pushover;
    if (!address?.userKey) throw new PermanentError('no_address', 'recipient has no Pushover user key');
    const token = appToken(job.provider);
    const opts = job.notification.options as PushoverOptions;
    const priority = opts.priority ?? 0;
    checkOptions(opts, priority);

    const html = opts.html === true;
    const body = job.notification.body;
    const title = job.notification.title;
    const form = new URLSearchParams();
    form.set('token', token);
    form.set('user', address.userKey);
    const device = opts.device ?? address.device ?? undefined;
    if (device) form.set('device', device);
    if (body) {
      if (title) form.set('title', truncate(title, PUSHOVER_LIMITS.title, false));
      form.set('message', truncate(body, PUSHOVER_LIMITS.message, html));
    } else if (title) {
      form.set('message', truncate(title, PUSHOVER_LIMITS.message, html));
    } else {
      throw new PermanentError('empty_message', 'Pushover needs a message: the notification has neither title nor body');
    }
    if (html) form.set('html', '1');
    if (opts.priority !== undefined) form.set('priority', String(priority));
    if (opts.sound) form.set('sound', opts.sound);
    if (opts.url) {
      if (codePoints(opts.url) > PUSHOVER_LIMITS.url) {
        throw new PermanentError('payload_too_large', `url is ${codePoints(opts.url)} characters; Pushover accepts at most ${PUSHOVER_LIMITS.url}`);
      }
      form.set('url', opts.url);
      if (opts.url_title) form.set('url_title', truncate(opts.url_title, PUSHOVER_LIMITS.urlTitle, false));
    }
    form.set('timestamp', String(Math.floor(job.notification.createdAt / 1000)));
    if (priority === 2) {
      form.set('retry', String(opts.retry));
      form.set('expire', String(opts.expire));
      if (job.callbackUrl) form.set('callback', job.callbackUrl);
    } else if (opts.ttl !== undefined) {
      form.set('ttl', String(opts.ttl));
    }

    const res = await call(this.#http, 'POST', `${baseUrl(job.provider)}/1/messages.json`, form.toString(), signal);
    const limits = appLimits(res);
    if (limits && this.#onAppLimits) this.#onAppLimits(job.workspaceId, limits);
    const detail: AttemptDetail = { httpStatus: res.status, response: res.excerpt };
    const answer = parseAnswer(res.excerpt);

    if (res.status >= 200 && res.status < 300) {
      if (answer && answer.status !== undefined && answer.status !== 1) {
        throw new PermanentError('invalid_request', `Pushover answered status ${String(answer.status)}: ${errorText(answer, res.status)}`, detail);
      }
      const request = typeof answer?.request === 'string' ? answer.request : undefined;
      const receipt = typeof answer?.receipt === 'string' && answer.receipt ? answer.receipt : undefined;
      const result: DeliveryResult = { ...detail };
      const id = receipt ?? request;
      if (id) result.providerMessageId = id;
      if (priority === 2 && receipt) result.receipt = { id: receipt, expiresAt: Date.now() + opts.expire! * 1000 };
      return result;
    }
    if (res.status === 429) {
      const wait = limits ? Math.max(0, limits.resetAt * 1000 - Date.now()) : parseRetryAfter(header(res, 'retry-after'));
      throw new RateLimitedError(`Pushover app quota exhausted: ${errorText(answer, res.status)}`, wait, detail);
    }
    if (res.status === 408 || res.status >= 500) {
      const wait = Math.max(SERVER_ERROR_WAIT_MS, parseRetryAfter(header(res, 'retry-after')) ?? 0);
      throw new RetryableError(`http_${res.status}`, `Pushover answered ${res.status}`, detail, wait);
    }
    if (res.status >= 400 && answer) {
      const text = errorText(answer, res.status);
      if (answer.token !== undefined) throw new PermanentError('auth', text, detail);
      if (answer.user !== undefined) throw new PermanentError('invalid_user', text, detail, { addressGone: true });
      if (answer.device !== undefined) {
        const ownDevice = opts.device === undefined && !!address.device;
        throw new PermanentError('invalid_device', text, detail, { addressGone: ownDevice });
      }
      throw new PermanentError('invalid_request', text, detail);
    }
    throw new PermanentError(`http_${res.status}`, `Pushover answered ${res.status}`, detail);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/**
 * Reads an emergency-priority receipt. Throws like deliver: PermanentError receipt_not_found (unknown
 * or older than a week) or auth (app token invalid); RateLimitedError on 429; RetryableError on 5xx
 * and network errors. Call it at most once per HERALD_RECEIPT_POLL_INTERVAL per receipt.
 */
export async function pollReceipt(http: SafeHttp, creds: ProviderCredentials, receipt: string, signal?: AbortSignal): Promise<ReceiptState> {
  if (!KEY_RE.test(receipt)) throw new PermanentError('receipt_not_found', `not a Pushover receipt: ${JSON.stringify(receipt.slice(0, 40))}`);
  const token = appToken(creds);
  const url = `${baseUrl(creds)}/1/receipts/${receipt}.json?token=${encodeURIComponent(token)}`;
  const res = await call(http, 'GET', url, undefined, signal);
  const detail: AttemptDetail = { httpStatus: res.status, response: res.excerpt };
  const answer = parseAnswer(res.excerpt);
  if (res.status >= 200 && res.status < 300 && answer?.status === 1) {
    const state: ReceiptState = {
      acknowledged: Number(answer.acknowledged) === 1,
      expired: Number(answer.expired) === 1,
      expiresAt: unixMs(answer.expires_at) ?? 0,
    };
    if (state.acknowledged) {
      const at = unixMs(answer.acknowledged_at);
      if (at !== undefined) state.acknowledgedAt = at;
      if (typeof answer.acknowledged_by === 'string' && answer.acknowledged_by) state.acknowledgedBy = answer.acknowledged_by;
      if (typeof answer.acknowledged_by_device === 'string' && answer.acknowledged_by_device) state.acknowledgedByDevice = answer.acknowledged_by_device;
    }
    return state;
  }
  if (res.status === 429) throw new RateLimitedError('Pushover answered 429', parseRetryAfter(header(res, 'retry-after')), detail);
  if (res.status === 408 || res.status >= 500) {
    throw new RetryableError(`http_${res.status}`, `Pushover answered ${res.status}`, detail, Math.max(SERVER_ERROR_WAIT_MS, parseRetryAfter(header(res, 'retry-after')) ?? 0));
  }
  if (answer?.token !== undefined) throw new PermanentError('auth', errorText(answer, res.status), detail);
  if (res.status >= 400 && answer) throw new PermanentError('receipt_not_found', errorText(answer, res.status), detail);
  throw new PermanentError(`http_${res.status}`, `Pushover answered ${res.status} to a receipt request`, detail);
}

/**
 * Reads Pushover's callback POST (form fields receipt, acknowledged, acknowledged_at, acknowledged_by,
 * acknowledged_by_device). Returns null when it is not one. The caller authenticates the request
 * (the callback URL carries what does) and matches the receipt to a delivery.
 */
export function parseReceiptCallback(form: Record<string, string>): ReceiptCallback | null {
  const receipt = form.receipt;
  if (typeof receipt !== 'string' || !KEY_RE.test(receipt)) return null;
  if (form.acknowledged !== '0' && form.acknowledged !== '1') return null;
  const out: ReceiptCallback = { receipt, acknowledged: form.acknowledged === '1' };
  const at = unixMs(form.acknowledged_at);
  if (at !== undefined) out.acknowledgedAt = at;
  if (form.acknowledged_by) out.acknowledgedBy = form.acknowledged_by;
  if (form.acknowledged_by_device) out.acknowledgedByDevice = form.acknowledged_by_device;
  return out;
}

function checkOptions(opts: PushoverOptions, priority: number): void {
  if (!Number.isInteger(priority) || priority < -2 || priority > 2) {
    throw new PermanentError('invalid_options', `priority must be an integer from -2 to 2, not ${String(priority)}`);
  }
  if (priority !== 2) return;
  const { retry, expire } = opts;
  if (typeof retry !== 'number' || !Number.isInteger(retry) || retry < PUSHOVER_EMERGENCY.minRetry) {
    throw new PermanentError('invalid_options', `priority 2 needs retry (whole seconds, at least ${PUSHOVER_EMERGENCY.minRetry}); got ${String(retry)}`);
  }
  if (typeof expire !== 'number' || !Number.isInteger(expire) || expire < 1 || expire > PUSHOVER_EMERGENCY.maxExpire) {
    throw new PermanentError('invalid_options', `priority 2 needs expire (whole seconds, 1 to ${PUSHOVER_EMERGENCY.maxExpire}); got ${String(expire)}`);
  }
}

function appToken(creds: ProviderCredentials | undefined): string {
  const token = creds?.config.app_token;
  if (typeof token !== 'string' || !token) throw new PermanentError('no_credentials', 'the workspace has no Pushover app_token (PUT /v1/providers/pushover)');
  return token;
}

function baseUrl(creds: ProviderCredentials | undefined): string {
  return creds?.baseUrl ?? PUSHOVER_BASE_URL;
}

async function call(http: SafeHttp, method: 'GET' | 'POST', url: string, body: string | undefined, signal?: AbortSignal): Promise<HttpResult> {
  const headers: Record<string, string> = { 'user-agent': 'Herald-Pushover/1', accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/x-www-form-urlencoded';
  try {
    return await http.request(method, url, headers, body, signal);
  } catch (err) {
    throw transportError(err);
  }
}

function parseAnswer(excerpt: string): PushoverAnswer | undefined {
  try {
    const v: unknown = JSON.parse(excerpt);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as PushoverAnswer) : undefined;
  } catch {
    return undefined;
  }
}

function errorText(answer: PushoverAnswer | undefined, status: number): string {
  const errors = answer?.errors;
  if (Array.isArray(errors) && errors.length > 0) return errors.map(String).join('; ');
  if (typeof errors === 'string' && errors) return errors;
  return `Pushover answered ${status}`;
}

function appLimits(res: HttpResult): AppLimits | undefined {
  const int = (name: string) => {
    const v = header(res, name)?.trim();
    return v && /^\d{1,15}$/.test(v) ? Number(v) : undefined;
  };
  const limit = int('x-limit-app-limit');
  const remaining = int('x-limit-app-remaining');
  const resetAt = int('x-limit-app-reset');
  if (limit === undefined || remaining === undefined || resetAt === undefined) return undefined;
  return { limit, remaining, resetAt };
}

function header(res: HttpResult, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function unixMs(v: unknown): number | undefined {
  const n = Number(v);
  return Number.isFinite(n) && n > 0 ? n * 1000 : undefined;
}

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

/** At most `max` code points; a cut text ends with "…" (and, for HTML, never inside a tag). */
export function truncate(s: string, max: number, html: boolean): string {
  if (codePoints(s) <= max) return s;
  let cut = Array.from(s).slice(0, max - 1).join('');
  if (html) cut = cut.replace(/<[^>]*$/, '');
  return `${cut}…`;
}
