// Twilio request signatures (X-Twilio-Signature) and message status callbacks.
//
// Signature (https://www.twilio.com/docs/usage/security#validating-requests): take the full URL
// Twilio requested (scheme, host, path, query string, exactly as given in StatusCallback), append
// every POST parameter sorted by name, each name immediately followed by its value, no
// delimiters; HMAC-SHA1 that with the account's auth token as key; base64. Verification compares
// in constant time and, like Twilio's helper libraries, also accepts the URL with the default port
// (:443 / :80) added or removed, since proxies differ on whether it is part of the signed URL.
//
// Status callbacks are form-encoded POSTs to StatusCallback; Herald reads MessageSid,
// MessageStatus and, for failed/undelivered, ErrorCode. Twilio adds fields without notice, so the
// signature covers whatever fields arrived, not a fixed list.

import { createHmac, timingSafeEqual } from 'node:crypto';
import { fail, OK, type SignedRequest, type Verdict } from './verdict.ts';

export const TWILIO_SIGNATURE_HEADER = 'x-twilio-signature';

export const TWILIO_CALLBACK_FIELDS = {
  messageSid: 'MessageSid',
  messageStatus: 'MessageStatus',
  errorCode: 'ErrorCode',
} as const;

export type TwilioMessageStatus = 'queued' | 'sending' | 'sent' | 'accepted' | 'scheduled' | 'delivered' | 'undelivered' | 'failed' | 'read' | 'canceled' | 'receiving' | 'received' | 'partially_delivered';

export function computeTwilioSignature(authToken: string, url: string, params: Record<string, string>): string {
  let data = url;
  for (const name of Object.keys(params).sort()) data += name + params[name];
  return createHmac('sha1', authToken).update(data, 'utf8').digest('base64');
}

export function verifyTwilioSignature(authToken: string, url: string, params: Record<string, string>, header: string | null | undefined): boolean {
  if (!header) return false;
  const given = Buffer.from(header, 'utf8');
  let ok = false;
  for (const candidate of urlVariants(url)) {
    const expected = Buffer.from(computeTwilioSignature(authToken, candidate, params), 'utf8');
    if (expected.length === given.length && timingSafeEqual(expected, given)) ok = true;
  }
  return ok;
}

function urlVariants(url: string): string[] {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return [url];
  }
  const defaultPort = u.protocol === 'https:' ? '443' : u.protocol === 'http:' ? '80' : '';
  if (!defaultPort) return [url];
  const auth = u.username ? `${u.username}${u.password ? `:${u.password}` : ''}@` : '';
  const rest = `${u.pathname}${u.search}${u.hash}`;
  const host = u.hostname;
  // new URL() drops a default port, so rebuild both spellings from the parts.
  const withPort = `${u.protocol}//${auth}${host}:${u.port || defaultPort}${rest}`;
  const withoutPort = u.port && u.port !== defaultPort ? withPort : `${u.protocol}//${auth}${host}${rest}`;
  const variants = new Set([url, withPort, withoutPort]);
  return [...variants];
}

/** What a status callback's MessageStatus means for the delivery; null for interim states. */
export function twilioCallbackStatus(messageStatus: string): 'delivered' | 'undelivered' | 'read' | null {
  switch (messageStatus) {
    case 'delivered':
      return 'delivered';
    case 'undelivered':
    case 'failed':
      return 'undelivered';
    case 'read':
      return 'read';
    default:
      return null;
  }
}

/** The fields of a status callback Herald uses; undefined when MessageSid or MessageStatus is missing. */
export function parseTwilioCallback(params: Record<string, string>): { messageSid: string; messageStatus: string; status: ReturnType<typeof twilioCallbackStatus>; errorCode: string | null } | undefined {
  const messageSid = params[TWILIO_CALLBACK_FIELDS.messageSid];
  const messageStatus = params[TWILIO_CALLBACK_FIELDS.messageStatus];
  if (!messageSid || !messageStatus) return undefined;
  const errorCode = params[TWILIO_CALLBACK_FIELDS.errorCode];
  return { messageSid, messageStatus, status: twilioCallbackStatus(messageStatus), errorCode: errorCode ? errorCode : null };
}

/**
 * The broker's Twilio verifier (inbound/verifiers/index.ts): the signature over `url` (the public
 * URL Twilio was given: HERALD_PUBLIC_URL + /hooks/<path> + query) and the form parameters, tried
 * with each of the source's auth tokens.
 */
export function verifyTwilio(req: SignedRequest, secrets: readonly string[], url: string, params: Record<string, string>): Verdict {
  const header = req.headers[TWILIO_SIGNATURE_HEADER];
  if (header === undefined || header === '') return fail('missing');
  if (!/^[A-Za-z0-9+/]{27}=$/.test(header.trim())) return fail('malformed');
  let ok = false;
  for (const token of secrets) if (verifyTwilioSignature(token, url, params, header.trim())) ok = true;
  return ok ? OK : fail('mismatch');
}
