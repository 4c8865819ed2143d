// SMS through Twilio Programmable Messaging. One request per delivery:
//   POST {base}/2010-04-01/Accounts/{account_sid}/Messages.json   (base: provider base_url, else
//        https://api.twilio.com), HTTP Basic auth account_sid:auth_token, form-encoded:
//   To                   the recipient's phone (E.164)
//   From                 options.from, else config.from
//   MessagingServiceSid  config.messaging_service_sid (with From too when options.from is set:
//                        Twilio then sends from that number, which must be in the service's pool)
//   Body                 title and body, trimmed, on two lines (either alone when the other is empty)
//   StatusCallback       job.callbackUrl when Herald has a public URL (see inbound/verifiers/twilio.ts)
// Limits: the body is measured in SMS segments (domain/sms-segments.ts). Above the limit
// (min(options.max_segments, config.max_segments), default 10; 10 GSM-7 segments are 1530
// characters, within Twilio's 1600) it is truncated with an ellipsis, or with on_too_long
// "reject" fails permanently ('too_many_segments', saying how many segments it needed).
// Outcome (Twilio answers errors as JSON {code, message, more_info, status}):
//   2xx {sid, status: queued|accepted, ...}     success, providerMessageId = sid
//   429, or code 20429                          RateLimitedError (Retry-After when present)
//   408, 5xx                                    retryable 'http_<status>' (Retry-After honoured)
//   401, or code 20003                          permanent 'auth'
//   21211 invalid To                            permanent 'invalid_number', addressGone
//   21614 To is not a mobile number             permanent 'not_mobile', addressGone
//   21610 recipient replied STOP                permanent 'opted_out' (not addressGone: the
//                                               recipient re-subscribes by texting START to the
//                                               sender, which Herald cannot observe)
//   21408 region not enabled, 21606/21212/21659 permanent 'config'
//   bad From, 404 (unknown account or base URL)
//   21617 body over 1600 characters             permanent 'payload_too_large'
//   other 4xx                                   permanent 'twilio_<code>' (or 'http_<status>')
//   3xx (not followed)                          permanent 'http_redirect'
//   refused destination                         permanent 'destination_refused'
//   network error / timeout                     retryable 'network' / 'timeout'
// Every error message carries Twilio's code and message.

import { Type, type Static } from 'typebox';
import { parseRetryAfter } from '../domain/retry.ts';
import { measureSms, truncateSms } from '../domain/sms-segments.ts';
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

export const TWILIO_DEFAULT_BASE_URL = 'https://api.twilio.com';
export const SMS_MAX_SEGMENTS = 10;

const E164 = Type.String({ pattern: '^\\+[1-9][0-9]{1,14}$', description: 'E.164 phone number, e.g. +14155550100' });
const MaxSegments = Type.Integer({ minimum: 1, maximum: SMS_MAX_SEGMENTS, description: `Most SMS segments one message may use (default ${SMS_MAX_SEGMENTS})` });
const OnTooLong = Type.Union([Type.Literal('truncate'), Type.Literal('reject')], { description: 'Above max_segments: truncate with an ellipsis (default) or fail the delivery' });

const configFields = {
  account_sid: Type.String({ pattern: '^AC[0-9a-fA-F]{32}$', description: 'Account SID (AC…)' }),
  auth_token: Type.String({ minLength: 1, maxLength: 256, description: 'Auth token (secret)' }),
  max_segments: Type.Optional(MaxSegments),
  on_too_long: Type.Optional(OnTooLong),
};

/** PUT /v1/providers/twilio `config`: exactly one of `from` and `messaging_service_sid`. */
export const TwilioProviderConfig = Type.Union(
  [
    Type.Object({ ...configFields, from: E164 }, { additionalProperties: false }),
    Type.Object(
      { ...configFields, messaging_service_sid: Type.String({ pattern: '^MG[0-9a-fA-F]{32}$', description: 'Messaging Service SID (MG…)' }) },
      { additionalProperties: false },
    ),
  ],
  { description: 'Twilio credentials and sender: exactly one of from and messaging_service_sid' },
);
export type TwilioProviderConfig = Static<typeof TwilioProviderConfig>;

export const TWILIO_SECRET_FIELDS: readonly string[] = ['auth_token'];

export const SmsOptions = Type.Object(
  {
    max_segments: Type.Optional(Type.Integer({ minimum: 1, maximum: SMS_MAX_SEGMENTS, description: 'Lowers the provider max_segments for this send' })),
    on_too_long: Type.Optional(OnTooLong),
    from: Type.Optional(E164),
  },
  { additionalProperties: false },
);
export type SmsOptions = Static<typeof SmsOptions>;

interface ResolvedConfig {
  accountSid: string;
  authToken: string;
  from: string | undefined;
  messagingServiceSid: string | undefined;
  maxSegments: number;
  onTooLong: 'truncate' | 'reject';
}

/** The provider config as the channel uses it, or a message saying what is wrong with it. */
export function resolveTwilioConfig(config: Record<string, unknown>): ResolvedConfig | string {
  const str = (k: string) => (typeof config[k] === 'string' && config[k] !== '' ? (config[k] as string) : undefined);
  const accountSid = str('account_sid');
  const authToken = str('auth_token');
  const from = str('from');
  const messagingServiceSid = str('messaging_service_sid');
  if (!accountSid || !/^AC[0-9a-fA-F]{32}$/.test(accountSid)) return 'account_sid must be an Account SID (AC followed by 32 hex digits)';
  if (!authToken) return 'auth_token is required';
  if (!from === !messagingServiceSid) return 'exactly one of from and messaging_service_sid is required';
  const maxSegments = config.max_segments ?? SMS_MAX_SEGMENTS;
  if (typeof maxSegments !== 'number' || !Number.isInteger(maxSegments) || maxSegments < 1 || maxSegments > SMS_MAX_SEGMENTS) return `max_segments must be an integer from 1 to ${SMS_MAX_SEGMENTS}`;
  const onTooLong = config.on_too_long ?? 'truncate';
  if (onTooLong !== 'truncate' && onTooLong !== 'reject') return 'on_too_long must be "truncate" or "reject"';
  return { accountSid, authToken, from, messagingServiceSid, maxSegments, onTooLong };
}

/** The text of the SMS: title and body on two lines, or whichever is not empty. */
export function smsText(title: string, body: string): string {
  const t = title.trim();
  const b = body.trim();
  return t && b ? `${t}\n${b}` : t || b;
}

interface TwilioError {
  code?: number;
  message?: string;
  more_info?: string;
  status?: number;
}

export class SmsChannel implements Channel {
  readonly name = 'sms' as const;
  readonly #http: SafeHttp;
  readonly #baseUrl: string;

  constructor(opts: { http: SafeHttp; baseUrl?: string }) {
    this.#http = opts.http;
    this.#baseUrl = opts.baseUrl ?? TWILIO_DEFAULT_BASE_URL;
  }


  async deliver(job: DeliveryJob, signal: AbortSignal): Promise<DeliveryResult> {
    const to = job.recipient.phone;
    if (!to) throw new PermanentError('no_address', 'recipient has no phone number');
    if (!job.provider) throw new PermanentError('config', 'the workspace has no twilio provider configured');
    const cfg = resolveTwilioConfig(job.provider.config);
    if (typeof cfg === 'string') throw new PermanentError('config', `twilio provider config: ${cfg}`);
    const options = job.notification.options as SmsOptions;

    let text = smsText(job.notification.title, job.notification.body);
    if (!text) throw new PermanentError('empty_message', 'the notification has neither title nor body');
    const maxSegments = Math.min(cfg.maxSegments, options.max_segments ?? SMS_MAX_SEGMENTS);
    const measured = measureSms(text);
    if (measured.segments > maxSegments) {
      const onTooLong = options.on_too_long ?? cfg.onTooLong;
      if (onTooLong === 'reject') {
        throw new PermanentError(
          'too_many_segments',
          `the message needs ${measured.segments} SMS segments (${measured.units} ${measured.encoding === 'GSM-7' ? 'GSM-7 septets' : 'UCS-2 code units'}); the limit is ${maxSegments}`,
        );
      }
      text = truncateSms(text, maxSegments);
    }

    const form = new URLSearchParams();
    form.set('To', to);
    const from = options.from ?? cfg.from;
    if (from) form.set('From', from);
    if (cfg.messagingServiceSid) form.set('MessagingServiceSid', cfg.messagingServiceSid);
    form.set('Body', text);
    if (job.callbackUrl) form.set('StatusCallback', job.callbackUrl);

    const base = (job.provider.baseUrl ?? this.#baseUrl).replace(/\/+$/, '');
    const url = `${base}/2010-04-01/Accounts/${encodeURIComponent(cfg.accountSid)}/Messages.json`;
    const headers = {
      authorization: `Basic ${Buffer.from(`${cfg.accountSid}:${cfg.authToken}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
      accept: 'application/json',
      'user-agent': 'Herald-SMS/1',
    };
    let res: HttpResult;
    try {
      res = await this.#http.request('POST', url, headers, form.toString(), signal);
    } catch (err) {
      throw transportError(err);
    }
    return classify(res);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function parseJson(text: string): Record<string, unknown> | undefined {
  try {
    const v: unknown = JSON.parse(text);
    return v && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function classify(res: HttpResult): DeliveryResult {
  const body = parseJson(res.excerpt);
  if (res.status >= 200 && res.status < 300) {
    const sid = typeof body?.sid === 'string' ? body.sid : undefined;
    const summary = body ? JSON.stringify({ sid: body.sid, status: body.status, num_segments: body.num_segments }) : res.excerpt;
    return { httpStatus: res.status, response: summary, ...(sid ? { providerMessageId: sid } : {}) };
  }
  const detail: AttemptDetail = { httpStatus: res.status, response: res.excerpt };
  const err: TwilioError = body ?? {};
  const code = typeof err.code === 'number' ? err.code : typeof err.code === 'string' && /^\d+$/.test(err.code) ? Number(err.code) : undefined;
  const what = code !== undefined ? `Twilio error ${code} (HTTP ${res.status}): ${typeof err.message === 'string' ? err.message : 'no message'}` : `Twilio answered HTTP ${res.status}`;
  const retryAfter = parseRetryAfter(headerValue(res.headers['retry-after']));

  if (res.status === 429 || code === 20429) throw new RateLimitedError(what, retryAfter, detail);
  if (res.status === 408 || res.status >= 500) throw new RetryableError(`http_${res.status}`, what, detail, retryAfter);
  if (res.status >= 300 && res.status < 400) throw new PermanentError('http_redirect', `${what} (redirects are not followed)`, detail);
  if (res.status === 401 || code === 20003) throw new PermanentError('auth', `${what}: check account_sid and auth_token`, detail);
  switch (code) {
    case 21211:
      throw new PermanentError('invalid_number', `${what}: the number cannot receive SMS`, detail, { addressGone: true });
    case 21614:
      throw new PermanentError('not_mobile', `${what}: the number cannot receive SMS`, detail, { addressGone: true });
    case 21610:
      throw new PermanentError('opted_out', `${what}: the recipient must text START to the sender to receive messages again`, detail);
    case 21408:
    case 21212:
    case 21606:
    case 21659:
      throw new PermanentError('config', what, detail);
    case 21617:
      throw new PermanentError('payload_too_large', what, detail);
  }
  if (res.status === 404) throw new PermanentError('config', `${what}: check account_sid and base_url`, detail);
  throw new PermanentError(code !== undefined ? `twilio_${code}` : `http_${res.status}`, what, detail);
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
