// The one contract every channel implements, and the errors a channel may throw.
//
// A channel delivers one delivery per call. It returns on success and throws on failure:
//   RetryableError     the attempt failed but may succeed later (network, timeout, 5xx, SMTP 4xx)
//   PermanentError     retrying cannot help (most 4xx, SMTP 5xx, refused destination, bad address)
//   RateLimitedError   the receiver asked us to slow down; retryAfterMs when it said for how long
// Any other exception is treated as retryable. The queue, not the channel, decides what happens next
// (domain/retry.ts). Every outcome carries an AttemptDetail for the attempt log.

import type { FailureKind } from '../domain/retry.ts';
import { isBlockedDestination } from '../net/safe-http.ts';

/**
 * Delivery channels. Each is its own queue lane (deliveries.channel) with its own workers,
 * concurrency, throughput limit and circuit breaker, so one vendor's trouble never holds up another.
 */
export const CHANNEL_NAMES = ['webhook', 'email', 'fcm', 'apns', 'webpush', 'pushover', 'sms', 'kakao', 'slack', 'discord', 'inbox'] as const;
export type ChannelName = (typeof CHANNEL_NAMES)[number];

/** Workspace credentials are stored per provider; a channel uses at most one provider. */
export const PROVIDER_NAMES = ['fcm', 'apns', 'webpush', 'pushover', 'twilio', 'kakao', 'smtp'] as const;
export type ProviderName = (typeof PROVIDER_NAMES)[number];

/** The provider whose workspace credentials a channel needs (none: the address is the credential). */
export const CHANNEL_PROVIDER: Readonly<Record<ChannelName, ProviderName | null>> = {
  webhook: null,
  email: 'smtp',
  fcm: 'fcm',
  apns: 'apns',
  webpush: 'webpush',
  pushover: 'pushover',
  sms: 'twilio',
  kakao: 'kakao',
  slack: null,
  discord: null,
  inbox: null,
};

/** Channels whose address is a device registered under the recipient (one delivery per device). */
export const DEVICE_CHANNELS = ['fcm', 'apns', 'webpush'] as const;
export type DevicePlatform = (typeof DEVICE_CHANNELS)[number];

/** What the attempt log records beyond time and duration. */
export interface AttemptDetail {
  httpStatus?: number;
  smtpReply?: string;
  /** A bounded excerpt of the receiver's response. */
  response?: string;
}

export interface DeliveryResult extends AttemptDetail {
  /** The receiver's id for the message (SMTP Message-ID, FCM message name, Twilio SID...). */
  providerMessageId?: string;
  /**
   * A vendor receipt Herald must follow until it settles (Pushover emergency priority): the
   * delivery is `sent` and a tracker polls the receipt until it is acknowledged or expires.
   */
  receipt?: { id: string; expiresAt: number };
}

export class DeliveryError extends Error {
  readonly kind: FailureKind;
  readonly detail: AttemptDetail;
  readonly retryAfterMs: number | undefined;
  /** A short machine-readable class for the attempt log and the DLQ (e.g. "http_5xx", "timeout"). */
  readonly errorClass: string;
  /**
   * The address itself is gone for good (a webhook answering 410 Gone, an unregistered device):
   * the queue disables it so later notifications skip it instead of failing on it again.
   */
  readonly addressGone: boolean;

  constructor(kind: FailureKind, errorClass: string, message: string, detail: AttemptDetail = {}, retryAfterMs?: number, addressGone = false) {
    super(message);
    this.kind = kind;
    this.errorClass = errorClass;
    this.detail = detail;
    this.retryAfterMs = retryAfterMs;
    this.addressGone = addressGone;
  }
}

export class RetryableError extends DeliveryError {
  constructor(errorClass: string, message: string, detail?: AttemptDetail, retryAfterMs?: number) {
    super('retryable', errorClass, message, detail, retryAfterMs);
  }
}

export class PermanentError extends DeliveryError {
  /**
   * The channel asks for this notification to go to the recipient on `fallback` instead (Kakao
   * AlimTalk rejected -> SMS), when the send allowed it. The queue creates that delivery.
   */
  readonly fallback: ChannelName | undefined;

  constructor(errorClass: string, message: string, detail?: AttemptDetail, opts: { addressGone?: boolean; fallback?: ChannelName } = {}) {
    super('permanent', errorClass, message, detail, undefined, opts.addressGone ?? false);
    this.fallback = opts.fallback;
  }
}

export class RateLimitedError extends DeliveryError {
  constructor(message: string, retryAfterMs: number | undefined, detail?: AttemptDetail) {
    super('rate_limited', 'rate_limited', message, detail, retryAfterMs);
  }
}

/**
 * What an error thrown by an outgoing request (SafeHttp, undici, node:http2) means for the
 * delivery: a destination the SSRF policy refused is permanent ('destination_refused'); a timeout
 * ('timeout') and any other transport failure ('network') are retryable.
 */
export function transportError(err: unknown): DeliveryError {
  if (isBlockedDestination(err)) return new PermanentError('destination_refused', (err as Error).message);
  const e = err as { name?: string; code?: string; message: string };
  const timeout = e.name === 'TimeoutError' || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT';
  if (timeout) return new RetryableError('timeout', `timed out: ${e.message}`);
  return new RetryableError('network', `${e.code ?? e.name ?? 'error'}: ${e.message}`);
}

/** A workspace's credentials for one provider, decrypted (PUT /v1/providers/{provider}). */
export interface ProviderCredentials {
  provider: ProviderName;
  /** The provider's own settings, validated by the provider's schema (see providers/service.ts). */
  config: Record<string, unknown>;
  /** Overrides the vendor's endpoint (regional endpoints, proxies, tests). No trailing slash. */
  baseUrl: string | null;
  /**
   * Changes whenever the credentials change: the key under which a channel may cache what it
   * derives from them (OAuth tokens, signed JWTs, HTTP/2 sessions, SMTP pools).
   */
  version: string;
}

/** A registered device (DEVICE_CHANNELS). */
export interface DeviceAddress {
  id: string;
  platform: DevicePlatform;
  /** FCM registration token, APNs device token (hex), or the Web Push endpoint URL. */
  token: string;
  /** Web Push only: the browser's PushSubscription keys. */
  subscription?: { endpoint: string; keys: { p256dh: string; auth: string } };
  /** The app (APNs bundle id / FCM app) the device belongs to, when registered. */
  app: string | null;
}

/** A recipient's addresses. Secrets are decrypted. */
export interface RecipientAddress {
  id: string;
  name: string | null;
  email: string | null;
  /** E.164. */
  phone: string | null;
  locale: string | null;
  timezone: string | null;
  webhookUrl: string | null;
  webhookSecret: string | null;
  pushover: { userKey: string; device: string | null } | null;
  slackWebhookUrl: string | null;
  discordWebhookUrl: string | null;
  /** E.164; AlimTalk goes to the KakaoTalk account of this number. */
  kakaoPhone: string | null;
}

/** Everything a channel needs to deliver one delivery; assembled by the queue from the store. */
export interface DeliveryJob {
  deliveryId: string;
  notificationId: string;
  workspaceId: string;
  channel: ChannelName;
  /** 1 for the first attempt. */
  attempt: number;
  notification: {
    kind: string;
    title: string;
    body: string;
    data: unknown;
    createdAt: number;
    /**
     * This channel's entry of the send's `channel_options` (e.g. {priority, retry, expire, sound}
     * for pushover), or {}. Validated at accept by the channel's option schema.
     */
    options: Record<string, unknown>;
    /** Whether the send allows a fallback channel (PermanentError.fallback), e.g. kakao -> sms. */
    fallback: boolean;
    /** Email only, from a template's variant: the HTML part and the subject. */
    html?: string;
    subject?: string;
  };
  recipient: RecipientAddress;
  /** Set for DEVICE_CHANNELS: the one device this delivery goes to. */
  device?: DeviceAddress;
  /** The workspace's credentials for CHANNEL_PROVIDER[channel]; absent when it has none. */
  provider?: ProviderCredentials;
  /**
   * The URL the vendor should call back about this delivery (status callbacks, receipts), built
   * from HERALD_PUBLIC_URL and carrying what authenticates the call; undefined when
   * HERALD_PUBLIC_URL is unset (then the channel asks for no callback).
   */
  callbackUrl?: string;
}

export interface Channel {
  readonly name: ChannelName;
  deliver(job: DeliveryJob, signal: AbortSignal): Promise<DeliveryResult>;
  close(): Promise<void>;
}
