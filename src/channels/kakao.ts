// Kakao AlimTalk through NHN Cloud Notification "KakaoTalk Bizmessage" (API v2.3). One POST per
// delivery to {base_url | https://kakaotalk-bizmessage.api.nhncloudservice.com}
//   /alimtalk/v2.3/appkeys/{app_key}/messages, header X-Secret-Key: {secret_key}, JSON body
//   {senderKey, templateCode, recipientList: [{recipientNo, templateParameter, recipientGroupingKey,
//    resendParameter?}]}
//   templateCode   channel_options.kakao.template_code (none: permanent 'no_template', nothing sent)
//   templateParameter  channel_options.kakao.variables; AlimTalk text is the registered template
//                  filled with them, so the notification's title and body are not sent as AlimTalk
//   recipientNo    recipient.kakaoPhone: +82 numbers in national form (+821012345678 -> 01012345678),
//                  other countries as E.164 digits without "+"
//   recipientGroupingKey  the delivery id (find the delivery in the NHN console and APIs)
//   resendParameter  when the send allows fallback (options.fallback, else the notification's
//                  fallback) and config.sms_fallback is set: {isResend: true, resendSendNo: send_no,
//                  resendTitle: the title (LMS, cut to 40 characters), resendType: "SMS" abroad}, so
//                  NHN itself resends as SMS/LMS when Kakao reports a failure only after accepting
//                  (not a KakaoTalk user, blocked...). When the send allows no fallback:
//                  {isResend: false}, overriding a resend configured in the NHN console.
// Outcome: the answer is {header: {resultCode, resultMessage, isSuccessful}, message: {requestId,
// sendResults: [{recipientSeq, recipientNo, resultCode, resultMessage}]}}. The recipient's own
// sendResults code decides when it is not 0, else the header's (KAKAO_RESULT_CODES has the table):
//   0                                   success; providerMessageId = requestId
//   auth (-1000, -1001, -4004, -4005)   permanent 'auth'
//   sender key (-1006, -1014, -1027, -2017...)  permanent 'invalid_sender'
//   SMS resend settings (-1002, -1003, -2502...) permanent 'fallback_config'
//   template unknown / not approved / content, buttons or parameters not matching, banned word,
//   recipient blocked or not a KakaoTalk user  permanent, with fallback 'sms' when the send allows
//                                       it; not for a content mismatch NHN resends itself (-3010...)
//                                       when we asked it to resend
//   invalid number (-4019, -5000, 3008) permanent 'invalid_number', address gone
//   system error (-9999, -7000, 9999...)  retryable 'provider_error'
//   other codes                         permanent 'invalid_request' or 'rejected'
//   no parseable answer: 429 rate limited (Retry-After), 408/5xx retryable 'http_<status>', other
//   4xx permanent 'http_<status>', 2xx retryable 'bad_response'
//   network                             retryable 'network' / 'timeout'; refused destination permanent
// Limits (checked before sending, permanent 'payload_too_large'): a variable value over 1300
// characters, or values together over 1300 (the filled template may not exceed 1300); template_code
// over 20 characters is 'invalid_options'.

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

export const KAKAO_BASE_URL = 'https://kakaotalk-bizmessage.api.nhncloudservice.com';
export const KAKAO_API_VERSION = 'v2.3';

export const KAKAO_LIMITS = {
  templateCode: 20,
  /** NHN: a template parameter, and the content filled from the template, at most 1300 characters. */
  variable: 1300,
  content: 1300,
  /** LMS resend title; NHN cuts longer ones itself. */
  resendTitle: 40,
} as const;

const ELLIPSIS = '…';

export const KakaoProviderConfig = Type.Object(
  {
    app_key: Type.String({ minLength: 1, maxLength: 100, description: 'NHN Cloud KakaoTalk Bizmessage app key' }),
    secret_key: Type.String({ minLength: 1, maxLength: 200, description: 'X-Secret-Key from the NHN Cloud console' }),
    sender_key: Type.String({ minLength: 40, maxLength: 40, description: 'Sender key of the KakaoTalk channel (sender profile), 40 characters' }),
    sms_fallback: Type.Optional(
      Type.Object(
        {
          send_no: Type.String({ pattern: '^[0-9]{4,13}$', description: 'Sender number registered in NHN Cloud SMS (digits only), used when NHN resends a failed AlimTalk as SMS' }),
        },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type KakaoProviderConfig = Static<typeof KakaoProviderConfig>;

export const KAKAO_SECRET_FIELDS: readonly string[] = ['secret_key'];

export const KakaoOptions = Type.Object(
  {
    template_code: Type.Optional(Type.String({ minLength: 1, maxLength: KAKAO_LIMITS.templateCode, description: 'Approved AlimTalk template code (required to send AlimTalk)' })),
    variables: Type.Optional(
      Type.Record(Type.String({ minLength: 1, maxLength: 100 }), Type.String({ maxLength: KAKAO_LIMITS.variable }), {
        description: 'Values of the template #{variables}',
      }),
    ),
    fallback: Type.Optional(Type.Boolean({ description: "Send as SMS when AlimTalk cannot reach the recipient (overrides the send's fallback)" })),
  },
  { additionalProperties: false },
);
export type KakaoOptions = Static<typeof KakaoOptions>;

export interface KakaoChannelOptions {
  http: SafeHttp;
}

type Verdict =
  | { kind: 'permanent'; errorClass: string; fallback?: boolean; addressGone?: boolean; nhnResends?: boolean }
  | { kind: 'retryable'; errorClass: string }
  | { kind: 'rate_limited' };

const AUTH: Verdict = { kind: 'permanent', errorClass: 'auth' };
const SENDER: Verdict = { kind: 'permanent', errorClass: 'invalid_sender' };
const RESEND_CONFIG: Verdict = { kind: 'permanent', errorClass: 'fallback_config' };
const INVALID: Verdict = { kind: 'permanent', errorClass: 'invalid_request' };
const NUMBER: Verdict = { kind: 'permanent', errorClass: 'invalid_number', addressGone: true };
const TEMPLATE_UNKNOWN: Verdict = { kind: 'permanent', errorClass: 'unknown_template', fallback: true };
const TEMPLATE_STATUS: Verdict = { kind: 'permanent', errorClass: 'template_not_approved', fallback: true };
const TEMPLATE_PARAMS: Verdict = { kind: 'permanent', errorClass: 'template_parameter', fallback: true };
const TEMPLATE_MISMATCH: Verdict = { kind: 'permanent', errorClass: 'template_mismatch', fallback: true };
const TEMPLATE_MISMATCH_RESENT: Verdict = { kind: 'permanent', errorClass: 'template_mismatch', fallback: true, nhnResends: true };
const TOO_LARGE: Verdict = { kind: 'permanent', errorClass: 'payload_too_large', fallback: true };
const PROVIDER: Verdict = { kind: 'retryable', errorClass: 'provider_error' };

/**
 * NHN's API result codes (negative; header or sendResults) and Kakao's delivery result codes
 * (positive; sendResults or a later message lookup), from NHN's "KakaoTalk Bizmessage > Error Codes".
 */
export const KAKAO_RESULT_CODES: ReadonlyMap<number, Verdict> = new Map<number, Verdict>([
  [-1000, AUTH], // Invalid appKey.
  [-1001, AUTH], // Invalid secretKey.
  [-4004, AUTH], // Not exist appkey.
  [-4005, AUTH], // Appkey is disabled status.
  [-1002, RESEND_CONFIG], // Invalid Sms appkey
  [-1003, RESEND_CONFIG], // Invalid Sms Sendno
  [-1019, RESEND_CONFIG], // Invalid Sms UnSubscribeno
  [-2502, RESEND_CONFIG], // Please set up plus-friend resend setting.
  [-4200, RESEND_CONFIG], // Resend Message is invalid.
  [-1006, SENDER], // Plus friend don't have senderKey.
  [-1014, SENDER], // Not active status plus friend.
  [-1024, SENDER], // The sender-group can't send the message.
  [-1027, SENDER], // The sender is blocked status.
  [-2017, SENDER], // Not exist plus friend.
  [-3003, TEMPLATE_UNKNOWN], // Template does not exist.
  [-3005, TEMPLATE_STATUS], // Please check template status.
  [-3004, TEMPLATE_PARAMS], // Please check template parameter.
  [-3049, TEMPLATE_PARAMS], // The template parameter is not matched to template.
  [-3324, TEMPLATE_PARAMS], // The template parameter is invalid.
  [-1028, TEMPLATE_PARAMS], // Blacklist can't use more than 14 characters in template value.
  [-3010, TEMPLATE_MISMATCH_RESENT], // The contents are not matched to template. (resent by SMS if on)
  [-3011, TEMPLATE_MISMATCH_RESENT], // The buttons or quickReplies are not matched to template.
  [-3042, TEMPLATE_MISMATCH_RESENT], // The templateHeader are not matched to template.
  [-3043, TEMPLATE_MISMATCH_RESENT], // The templateItem or templateItemHighlight are not matched.
  [-3046, TEMPLATE_MISMATCH_RESENT], // The templateRepresentLink is not matched to template.
  [-3033, TEMPLATE_MISMATCH], // The button or quickReply is not exist in template.
  [-8008, { kind: 'permanent', errorClass: 'banned_word', fallback: true }], // The content has banned word.
  [-2019, TOO_LARGE], // The content that is replaced by the template parameters can not exceed 1,300 characters.
  [-3048, TOO_LARGE], // The template parameter's length can not exceed 1300 characters.
  [-3301, { kind: 'permanent', errorClass: 'unsubscribed', fallback: true }], // The unsubscribed recipient are found.
  [-4019, NUMBER], // Invalid recipient number.
  [-5000, NUMBER], // RecipientNo is invalid.
  [-1005, { kind: 'retryable', errorClass: 'duplicate_request' }], // Same X-NC-API-IDEMPOTENCY-KEY within 10 minutes.
  [-7000, PROVIDER], // Vender request API is failed.
  [-9999, PROVIDER], // System error.
  [-2000, INVALID], // The '{}' must be at less than or equal to {}.
  [-2001, INVALID], // The '{}' must not be blank.
  [-2002, INVALID], // The '{}' must not be null.
  [-2003, INVALID],
  [-2004, INVALID],
  [-2005, INVALID],
  [-3002, INVALID], // Field is not valid.
  [-4000, INVALID], // Invalid parameter
  [-9993, INVALID],
  [-9994, INVALID],
  [-9996, INVALID], // Only application/json Content-type is supported.
  [-9997, INVALID], // Client Error.
  [-9998, INVALID], // Not exist API
  [1003, SENDER], // Invalid sender profile key
  [1006, SENDER], // Deleted sender profile
  [1007, SENDER], // Blocked sender profile
  [1021, SENDER], // Blocked KakaoTalk channel
  [1022, SENDER], // Closed KakaoTalk channel
  [1023, SENDER], // Deleted KakaoTalk channel
  [1024, SENDER], // KakaoTalk channel pending deletion
  [1025, SENDER], // Channel sanctioned
  [1027, SENDER], // Channel messages sanctioned
  [2001, PROVIDER], // Unexpected error
  [3000, PROVIDER], // Unexpected error
  [3006, PROVIDER], // Internal system error
  [3008, NUMBER], // Phone number error
  [3010, PROVIDER], // Unexpected error
  [3012, PROVIDER], // Kakao communication failure
  [3015, TEMPLATE_UNKNOWN], // Template not found
  [3016, TEMPLATE_MISMATCH], // Message does not match the template
  [3018, { kind: 'permanent', errorClass: 'not_deliverable', fallback: true }], // Cannot send (inactive user, SIM mismatch...)
  [3019, { kind: 'permanent', errorClass: 'not_kakao_user', fallback: true }], // Not a KakaoTalk user
  [3020, { kind: 'permanent', errorClass: 'blocked', fallback: true }], // AlimTalk blocked by the user
  [3021, { kind: 'permanent', errorClass: 'kakao_version', fallback: true }], // KakaoTalk version unsupported
  [3025, TEMPLATE_PARAMS], // Variable length limit exceeded
  [3027, TEMPLATE_MISMATCH], // Buttons do not match the template
  [4132, TEMPLATE_PARAMS], // Template variables do not match
  [4133, TEMPLATE_STATUS], // Stopped template
  [4134, TEMPLATE_STATUS], // Changed template
  [4156, { kind: 'rate_limited' }], // Maximum send count exceeded
  [9998, PROVIDER], // System problem (service not available)
  [9999, PROVIDER], // System problem (unknown error)
]);

interface NhnAnswer {
  header?: { resultCode?: unknown; resultMessage?: unknown; isSuccessful?: unknown };
  message?: { requestId?: unknown; sendResults?: unknown } | null;
}

interface SendResult {
  recipientSeq?: unknown;
  recipientNo?: unknown;
  resultCode?: unknown;
  resultMessage?: unknown;
}

export class KakaoChannel implements Channel {
  readonly name = 'kakao' as const;
  readonly #http: SafeHttp;

  constructor(opts: KakaoChannelOptions) {
    this.#http = opts.http;
  }


  async deliver(job: DeliveryJob, signal: AbortSignal): Promise<DeliveryResult> {
    const opts = job.notification.options as KakaoOptions;
    const fallbackAllowed = typeof opts.fallback === 'boolean' ? opts.fallback : job.notification.fallback;
    const fallback = fallbackAllowed ? ({ fallback: 'sms' } as const) : {};
    const phone = job.recipient.kakaoPhone;
    if (!phone) throw new PermanentError('no_address', 'recipient has no kakao_phone');
    const recipientNo = nhnRecipientNo(phone);
    if (!recipientNo) throw new PermanentError('invalid_number', `kakao_phone ${JSON.stringify(phone.slice(0, 20))} is not an E.164 number`, {}, { addressGone: true });
    const config = credentials(job.provider);
    const templateCode = opts.template_code;
    if (!templateCode) throw new PermanentError('no_template', 'AlimTalk needs channel_options.kakao.template_code (an approved template)', {}, fallback);
    if (codePoints(templateCode) > KAKAO_LIMITS.templateCode) {
      throw new PermanentError('invalid_options', `template_code is ${codePoints(templateCode)} characters; NHN accepts at most ${KAKAO_LIMITS.templateCode}`);
    }
    const variables = opts.variables ?? {};
    checkVariables(variables, fallback);

    const recipient: Record<string, unknown> = { recipientNo, templateParameter: variables, recipientGroupingKey: job.deliveryId };
    const resendRequested = fallbackAllowed && !!config.sms_fallback;
    if (resendRequested) {
      const resend: Record<string, unknown> = { isResend: true, resendSendNo: config.sms_fallback!.send_no };
      const title = job.notification.title.trim();
      if (title) resend.resendTitle = truncate(title, KAKAO_LIMITS.resendTitle);
      if (!phone.startsWith('+82')) resend.resendType = 'SMS';
      recipient.resendParameter = resend;
    } else if (!fallbackAllowed) {
      recipient.resendParameter = { isResend: false };
    }
    const body = JSON.stringify({ senderKey: config.sender_key, templateCode, recipientList: [recipient] });
    const url = `${job.provider?.baseUrl ?? KAKAO_BASE_URL}/alimtalk/${KAKAO_API_VERSION}/appkeys/${encodeURIComponent(config.app_key)}/messages`;
    const headers = {
      'content-type': 'application/json;charset=UTF-8',
      accept: 'application/json',
      'user-agent': 'Herald-Kakao/1',
      'x-secret-key': config.secret_key,
    };
    const res = await call(this.#http, url, headers, body, signal);
    const detail: AttemptDetail = { httpStatus: res.status, response: res.excerpt };
    const answer = parseAnswer(res.excerpt);

    if (!answer) {
      if (res.status === 429) throw new RateLimitedError('NHN answered 429', parseRetryAfter(header(res, 'retry-after')), detail);
      if (res.status === 408 || res.status >= 500) throw new RetryableError(`http_${res.status}`, `NHN answered ${res.status}`, detail, parseRetryAfter(header(res, 'retry-after')));
      if (res.status >= 200 && res.status < 300) throw new RetryableError('bad_response', `NHN answered ${res.status} without a result header`, detail);
      throw new PermanentError(`http_${res.status}`, `NHN answered ${res.status}`, detail);
    }

    const own = ownResult(answer, recipientNo);
    const ownCode = own ? Number(own.resultCode) : NaN;
    if (own && Number.isFinite(ownCode) && ownCode !== 0) {
      throw classify(ownCode, String(own.resultMessage ?? ''), detail, fallback, resendRequested, res);
    }
    const headerCode = Number(answer.header!.resultCode);
    if (headerCode !== 0 || answer.header!.isSuccessful === false) {
      throw classify(headerCode, String(answer.header!.resultMessage ?? ''), detail, fallback, resendRequested, res);
    }
    if (res.status >= 300) throw new RetryableError(`http_${res.status}`, `NHN answered ${res.status} with a success header`, detail);
    const result: DeliveryResult = { ...detail };
    const requestId = answer.message?.requestId;
    if (typeof requestId === 'string' && requestId) result.providerMessageId = requestId;
    return result;
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

/** recipientNo as NHN expects it: national form for Korea (+821012345678 -> 01012345678), E.164 digits otherwise. */
export function nhnRecipientNo(e164: string): string | null {
  if (!/^\+[1-9][0-9]{6,14}$/.test(e164)) return null;
  if (e164.startsWith('+82')) {
    const rest = e164.slice(3);
    return rest.startsWith('0') ? rest : `0${rest}`;
  }
  return e164.slice(1);
}

function classify(code: number, message: string, detail: AttemptDetail, fallback: { fallback?: 'sms' }, resendRequested: boolean, res: HttpResult): Error {
  const text = `NHN result ${Number.isFinite(code) ? code : '?'}${message ? `: ${message}` : ''}`;
  const verdict = Number.isFinite(code) ? KAKAO_RESULT_CODES.get(code) : undefined;
  if (!verdict) {
    if (res.status === 429) return new RateLimitedError(text, parseRetryAfter(header(res, 'retry-after')), detail);
    if (res.status >= 500) return new RetryableError(`http_${res.status}`, text, detail, parseRetryAfter(header(res, 'retry-after')));
    return new PermanentError('rejected', text, detail);
  }
  if (verdict.kind === 'rate_limited') return new RateLimitedError(text, parseRetryAfter(header(res, 'retry-after')), detail);
  if (verdict.kind === 'retryable') return new RetryableError(verdict.errorClass, text, detail, parseRetryAfter(header(res, 'retry-after')));
  if (verdict.nhnResends && resendRequested) {
    return new PermanentError(verdict.errorClass, `${text} (NHN resends it as SMS)`, detail);
  }
  return new PermanentError(verdict.errorClass, text, detail, {
    addressGone: verdict.addressGone ?? false,
    ...(verdict.fallback ? fallback : {}),
  });
}

function ownResult(answer: NhnAnswer, recipientNo: string): SendResult | undefined {
  const results = answer.message?.sendResults;
  if (!Array.isArray(results) || results.length === 0) return undefined;
  const list = results.filter((r): r is SendResult => !!r && typeof r === 'object');
  return list.find((r) => r.recipientNo === recipientNo) ?? (list.length === 1 ? list[0] : undefined);
}

function checkVariables(variables: Record<string, string>, fallback: { fallback?: 'sms' }): void {
  let total = 0;
  for (const [key, value] of Object.entries(variables)) {
    if (typeof value !== 'string') throw new PermanentError('invalid_options', `variable ${JSON.stringify(key)} must be a string`);
    const n = codePoints(value);
    if (n > KAKAO_LIMITS.variable) {
      throw new PermanentError('payload_too_large', `variable ${JSON.stringify(key)} is ${n} characters; NHN accepts at most ${KAKAO_LIMITS.variable} per variable`, {}, fallback);
    }
    total += n;
  }
  if (total > KAKAO_LIMITS.content) {
    throw new PermanentError('payload_too_large', `the variables total ${total} characters; an AlimTalk filled from its template is at most ${KAKAO_LIMITS.content}`, {}, fallback);
  }
}

function credentials(creds: ProviderCredentials | undefined): KakaoProviderConfig {
  const c = creds?.config as Partial<KakaoProviderConfig> | undefined;
  if (!c || typeof c.app_key !== 'string' || !c.app_key || typeof c.secret_key !== 'string' || !c.secret_key || typeof c.sender_key !== 'string' || !c.sender_key) {
    throw new PermanentError('no_credentials', 'the workspace has no NHN Cloud AlimTalk credentials (PUT /v1/providers/kakao)');
  }
  return c as KakaoProviderConfig;
}

async function call(http: SafeHttp, url: string, headers: Record<string, string>, body: string, signal: AbortSignal): Promise<HttpResult> {
  try {
    return await http.request('POST', url, headers, body, signal);
  } catch (err) {
    throw transportError(err);
  }
}

function parseAnswer(excerpt: string): NhnAnswer | undefined {
  try {
    const v = JSON.parse(excerpt) as NhnAnswer;
    if (!v || typeof v !== 'object' || !v.header || typeof v.header !== 'object') return undefined;
    return v;
  } catch {
    return undefined;
  }
}

function header(res: HttpResult, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function codePoints(s: string): number {
  let n = 0;
  for (const _ of s) n++;
  return n;
}

function truncate(s: string, max: number): string {
  if (codePoints(s) <= max) return s;
  return `${Array.from(s).slice(0, max - 1).join('')}${ELLIPSIS}`;
}
