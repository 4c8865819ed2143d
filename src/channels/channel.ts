// The one contract every channel implements, and the errors a channel may throw.
//
// A channel delivers one delivery per call. It returns on success and throws on failure:
//   RetryableError     the attempt failed but may succeed later (network, timeout, 5xx, SMTP 4xx)
//   PermanentError     retrying cannot help (most 4xx, SMTP 5xx, refused destination, bad address)
//   RateLimitedError   the receiver asked us to slow down; retryAfterMs when it said for how long
// Any other exception is treated as retryable. The queue, not the channel, decides what happens next
// (domain/retry.ts). Every outcome carries an AttemptDetail for the attempt log.

import type { FailureKind } from '../domain/retry.ts';

export type ChannelName = 'webhook' | 'email';
export const CHANNEL_NAMES: readonly ChannelName[] = ['webhook', 'email'];

/** What the attempt log records beyond time and duration. */
export interface AttemptDetail {
  httpStatus?: number;
  smtpReply?: string;
  /** A bounded excerpt of the receiver's response. */
  response?: string;
}

export interface DeliveryResult extends AttemptDetail {
  /** The receiver's id for the message (SMTP Message-ID, a vendor message id...). */
  providerMessageId?: string;
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
  constructor(errorClass: string, message: string, detail?: AttemptDetail, opts: { addressGone?: boolean } = {}) {
    super('permanent', errorClass, message, detail, undefined, opts.addressGone ?? false);
  }
}

export class RateLimitedError extends DeliveryError {
  constructor(message: string, retryAfterMs: number | undefined, detail?: AttemptDetail) {
    super('rate_limited', 'rate_limited', message, detail, retryAfterMs);
  }
}

/** Everything a channel needs to deliver one delivery; assembled by the queue from the store. */
export interface DeliveryJob {
  deliveryId: string;
  notificationId: string;
  workspaceId: string;
  /** 1 for the first attempt. */
  attempt: number;
  notification: {
    kind: string;
    title: string;
    body: string;
    data: unknown;
    createdAt: number;
  };
  recipient: {
    id: string;
    name: string | null;
    email: string | null;
    locale: string | null;
    webhookUrl: string | null;
    /** Decrypted. */
    webhookSecret: string | null;
  };
}

export interface Channel {
  readonly name: ChannelName;
  /** Whether this channel can reach the recipient at all (has an address, is configured). */
  canReach(recipient: { email: string | null; webhookUrl: string | null }): boolean;
  deliver(job: DeliveryJob, signal: AbortSignal): Promise<DeliveryResult>;
  close(): Promise<void>;
}
