// Signed outgoing webhooks (Standard Webhooks). One POST per delivery to the recipient's URL:
//   body    {type: "notification", id, delivery_id, recipient, kind, title, body, data, created_at};
//           an operator alert (kind OPERATOR_KIND, src/alerts) is sent as its event instead:
//           {type: "delivery.exhausted" | …, timestamp, data} (domain/operator.ts);
//           an inbound forward (kind FORWARD_KIND, src/subscriptions) is sent as the original body
//           with its content type, and herald-event-id/-type, herald-source-path headers (domain/forward.ts)
//   headers webhook-id (= delivery id, stable across retries so receivers can de-duplicate),
//           webhook-timestamp (unix seconds of this attempt), webhook-signature ("v1,<base64>")
// Outcome: 2xx success; 408, 429, 5xx and network errors retryable (Retry-After honoured);
// 3xx (redirects are not followed) and other 4xx permanent; a refused destination permanent.
// 410 Gone also disables the recipient's webhook (Standard Webhooks) until it is PUT again.

import { signWebhook } from '../domain/webhook-signature.ts';
import { OPERATOR_KIND } from '../domain/operator.ts';
import { FORWARD_KIND, forwardRequest } from '../domain/forward.ts';
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

export function webhookPayload(job: DeliveryJob): string {
  if (job.notification.kind === OPERATOR_KIND) return JSON.stringify(job.notification.data);
  return JSON.stringify({
    type: 'notification',
    id: job.notificationId,
    delivery_id: job.deliveryId,
    recipient: job.recipient.id,
    kind: job.notification.kind,
    title: job.notification.title,
    body: job.notification.body,
    data: job.notification.data ?? null,
    created_at: new Date(job.notification.createdAt).toISOString(),
  });
}

export class WebhookChannel implements Channel {
  readonly name = 'webhook' as const;
  readonly #http: SafeHttp;

  constructor(http: SafeHttp) {
    this.#http = http;
  }

  async deliver(job: DeliveryJob, signal: AbortSignal): Promise<DeliveryResult> {
    const { webhookUrl, webhookSecret } = job.recipient;
    if (!webhookUrl || !webhookSecret) throw new PermanentError('no_address', 'recipient has no webhook');
    const forward = job.notification.kind === FORWARD_KIND ? forwardRequest(job.notification.data) : undefined;
    const body = forward ? forward.body : webhookPayload(job);
    const timestamp = Math.floor(Date.now() / 1000);
    const headers = {
      'content-type': forward ? forward.contentType : 'application/json',
      ...forward?.headers,
      'user-agent': 'Herald-Webhooks/1',
      'webhook-id': job.deliveryId,
      'webhook-timestamp': String(timestamp),
      'webhook-signature': signWebhook(webhookSecret, job.deliveryId, timestamp, body),
    };
    let res;
    try {
      res = await this.#http.post(webhookUrl, headers, body, signal);
    } catch (err) {
      throw transportError(err);
    }
    const detail = { httpStatus: res.status, response: res.excerpt };
    if (res.status >= 200 && res.status < 300) return detail;
    const retryAfter = parseRetryAfter(headerValue(res.headers['retry-after']));
    if (res.status === 429) throw new RateLimitedError('receiver answered 429', retryAfter, detail);
    if (res.status === 408 || res.status >= 500) throw new RetryableError(`http_${res.status}`, `receiver answered ${res.status}`, detail, retryAfter);
    if (res.status >= 300 && res.status < 400) throw new PermanentError('http_redirect', `receiver answered ${res.status} (redirects are not followed)`, detail);
    if (res.status === 410) throw new PermanentError('http_410', 'receiver answered 410 Gone: the webhook is disabled', detail, { addressGone: true });
    throw new PermanentError(`http_${res.status}`, `receiver answered ${res.status}`, detail);
  }

  close(): Promise<void> {
    return Promise.resolve();
  }
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
