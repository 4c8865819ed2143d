// JSON views of stored rows, shared by the resources that show them, with their schemas.

import { Type, type Static } from 'typebox';
import { CANCELLABLE } from '../domain/delivery-status.ts';
import type { DeliveriesTable, DeliveryAttemptsTable, NotificationsTable } from '../store/schema.ts';
import { iso } from './schemas.ts';

const Str = Type.String();
const NullStr = Type.Union([Type.String(), Type.Null()]);
const NullInt = Type.Union([Type.Integer(), Type.Null()]);

export const AttemptView = Type.Object({
  attempt: Type.Integer(),
  started_at: Str,
  duration_ms: Type.Integer(),
  outcome: Str,
  error_class: NullStr,
  error: NullStr,
  http_status: NullInt,
  smtp_reply: NullStr,
  response: NullStr,
});

export const DeliveryView = Type.Object({
  id: Str,
  notification_id: Str,
  recipient: Str,
  channel: Str,
  device: NullStr,
  status: Str,
  waits_for: Type.Union([Type.String(), Type.Null()], { description: 'Routing "first": the delivery whose channel must fail before this one goes' }),
  reason: NullStr,
  status_detail: Type.Union([Type.Record(Type.String(), Type.Unknown()), Type.Null()], { description: 'What the vendor reported after sending (who acknowledged, its error code…)' }),
  attempts: Type.Integer(),
  next_attempt_at: NullStr,
  error_class: NullStr,
  last_error: NullStr,
  provider_message_id: NullStr,
  created_at: Str,
  updated_at: Str,
  completed_at: NullStr,
  attempt_log: Type.Optional(Type.Array(AttemptView)),
});

export const NotificationView = Type.Object({
  id: Str,
  kind: Str,
  title: Str,
  body: Str,
  data: Type.Unknown(),
  metadata: Type.Unknown(),
  status: Str,
  idempotency_key: NullStr,
  template: NullStr,
  created_at: Str,
  /** A topic send: how far its members have been expanded. */
  topic: Type.Optional(Type.Object({ key: Str, state: Str, recipients: Type.Integer({ description: 'Members expanded so far' }) })),
  deliveries: Type.Array(DeliveryView),
});

export function attemptView(a: DeliveryAttemptsTable): Static<typeof AttemptView> {
  return {
    attempt: a.attempt,
    started_at: iso(a.started_at)!,
    duration_ms: a.duration_ms,
    outcome: a.outcome,
    error_class: a.error_class,
    error: a.error,
    http_status: a.http_status,
    smtp_reply: a.smtp_reply,
    response: a.response,
  };
}

export function deliveryView(d: DeliveriesTable, attempts?: DeliveryAttemptsTable[]): Static<typeof DeliveryView> {
  const waiting = d.status !== 'standby' && (CANCELLABLE as readonly string[]).includes(d.status);
  return {
    id: d.id,
    notification_id: d.notification_id,
    recipient: d.recipient_id,
    channel: d.channel,
    device: d.device_id,
    status: d.status,
    waits_for: d.after_id,
    reason: d.reason,
    status_detail: d.status_detail ? (JSON.parse(d.status_detail) as Record<string, unknown>) : null,
    attempts: d.attempts,
    next_attempt_at: waiting ? iso(d.run_at) : null,
    error_class: d.error_class,
    last_error: d.last_error,
    provider_message_id: d.provider_message_id,
    created_at: iso(d.created_at)!,
    updated_at: iso(d.updated_at)!,
    completed_at: iso(d.completed_at),
    ...(attempts && { attempt_log: attempts.map(attemptView) }),
  };
}

export function notificationView(
  n: NotificationsTable,
  deliveries: Static<typeof DeliveryView>[],
  fanout?: { topic: string; state: string; recipients: number },
): Static<typeof NotificationView> {
  return {
    id: n.id,
    kind: n.kind,
    title: n.title,
    body: n.body,
    data: n.data === null ? null : JSON.parse(n.data),
    metadata: n.metadata === null ? null : JSON.parse(n.metadata),
    status: n.status,
    idempotency_key: n.idempotency_key,
    template: n.template,
    created_at: iso(n.created_at)!,
    ...(fanout && { topic: { key: fanout.topic, state: fanout.state, recipients: fanout.recipients } }),
    deliveries,
  };
}
