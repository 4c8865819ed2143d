// Operator alerts: which events become a signed webhook to the workspace's operator_webhook, and
// what that webhook's body is. Pure rules; the alerts service (src/alerts) does the I/O.
//
// An alert is an ordinary delivery on the webhook channel: a notification of kind OPERATOR_KIND
// with one delivery to the workspace's reserved recipient OPERATOR_RECIPIENT (whose webhook is the
// operator_webhook). Neither name matches the API's patterns (recipient ids and kinds start with a
// letter or digit), so no API call can address them.
//
// Loops: a delivery to OPERATOR_RECIPIENT never raises an alert about itself (an exhausted alert
// stays in the DLQ, visible there, and nothing more).

import type { HeraldEvent } from './events.ts';

/** The reserved recipient whose webhook is the workspace's operator_webhook. */
export const OPERATOR_RECIPIENT = '_operator';
/** The kind of alert notifications. */
export const OPERATOR_KIND = '_operator';

/** Error classes by which a vendor refused the workspace's credentials (channels/*.ts). */
export const CREDENTIALS_REFUSED: ReadonlySet<string> = new Set(['auth', 'vapid']);

/** Events that alert the operator. */
export const ALERT_TYPES = ['delivery.exhausted', 'circuit.opened', 'circuit.closed', 'provider.failing'] as const;
export type AlertType = (typeof ALERT_TYPES)[number];

/**
 * One provider.failing alert per workspace and provider within this window: every delivery of a
 * workspace with refused credentials fails the same way, and the operator needs to hear it once.
 */
export const PROVIDER_FAILING_WINDOW_MS = 3_600_000;

/** Whether `e` alerts the operator of its workspace (or, for circuit events, of every workspace). */
export function raisesAlert(e: HeraldEvent): boolean {
  switch (e.type) {
    case 'delivery.exhausted':
      return e.recipient_id !== OPERATOR_RECIPIENT;
    case 'provider.failing':
      return e.recipient_id !== OPERATOR_RECIPIENT;
    case 'circuit.opened':
    case 'circuit.closed':
      return true;
    default:
      return false;
  }
}

/** The Standard Webhooks body of an alert: {type, timestamp, data}. */
export interface AlertBody {
  type: AlertType;
  /** When the event happened, ISO 8601. */
  timestamp: string;
  data: Record<string, unknown>;
}

/** The body an alert about `e` carries (raisesAlert(e) must hold). */
export function alertBody(e: Extract<HeraldEvent, { type: AlertType }>): AlertBody {
  const timestamp = new Date(e.at).toISOString();
  switch (e.type) {
    case 'delivery.exhausted':
      return {
        type: e.type,
        timestamp,
        data: { delivery_id: e.delivery_id, notification_id: e.notification_id, recipient_id: e.recipient_id, channel: e.channel, attempts: e.attempts, error_class: e.error_class, error: e.error },
      };
    case 'provider.failing':
      return { type: e.type, timestamp, data: { provider: e.provider, channel: e.channel, delivery_id: e.delivery_id, notification_id: e.notification_id, error_class: e.error_class, error: e.error } };
    case 'circuit.opened':
    case 'circuit.closed':
      return { type: e.type, timestamp, data: { provider: e.provider, channel: e.channel, node: e.node } };
  }
}

/** The alert's title and body as the notification history shows them. */
export function alertSummary(b: AlertBody): { title: string; body: string } {
  const d = b.data as Record<string, string | number | null>;
  switch (b.type) {
    case 'delivery.exhausted':
      return { title: 'Delivery exhausted', body: `${String(d.delivery_id)} (${String(d.channel)}) went to the dead-letter queue: ${String(d.error_class ?? 'error')}` };
    case 'provider.failing':
      return { title: 'Provider credentials refused', body: `${String(d.provider)} refused the workspace's credentials: ${String(d.error)}` };
    case 'circuit.opened':
      return { title: 'Circuit opened', body: `${String(d.provider)}: attempts on ${String(d.channel)} paused on ${String(d.node)}` };
    case 'circuit.closed':
      return { title: 'Circuit closed', body: `${String(d.provider)}: attempts on ${String(d.channel)} resumed on ${String(d.node)}` };
  }
}
