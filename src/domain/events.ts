// The events Herald announces (events/events.ts is the port that carries them): names and
// payloads. Times are ms since the epoch.
//
// Adding an event: add its payload to EventPayloads under its name. Names reserved by the design
// for what comes next: inbox.item, inbox.read, presence.changed.

import type { DeliveryStatus } from './delivery-status.ts';

/** What a delivery is, in every delivery event. */
export interface DeliveryRef {
  workspace_id: string;
  delivery_id: string;
  notification_id: string;
  recipient_id: string;
  channel: string;
}

/** A delivery's move from one status to another, as stores report it for announcing. */
export interface DeliveryMove {
  id: string;
  workspace_id: string;
  notification_id: string;
  recipient_id: string;
  channel: string;
  /** Null when the delivery was created in status `to`. */
  from: DeliveryStatus | null;
  to: DeliveryStatus;
  reason: string | null;
}

/** Each event's payload, by event name. */
export interface EventPayloads {
  /** A notification was committed with its deliveries (a topic send: before its fan-out). */
  'notification.accepted': {
    workspace_id: string;
    notification_id: string;
    kind: string;
    deliveries: { delivery_id: string; recipient_id: string; channel: string; status: DeliveryStatus }[];
  };
  /**
   * A delivery moved from `from` to `to` (not announced: a claim, pending/failed → sending, which
   * is a lease, not an outcome). `from` is null when the delivery was created in status `to` after
   * its notification was accepted (a fallback).
   */
  'delivery.status': DeliveryRef & { from: DeliveryStatus | null; to: DeliveryStatus; reason: string | null; error_class: string | null };
  /** A delivery reached `exhausted` (the DLQ): its last attempt failed or the failure was permanent. */
  'delivery.exhausted': DeliveryRef & { attempts: number; error_class: string | null; error: string | null };
  /** A vendor lane's circuit breaker opened on `node`: no attempts on `channel` until it probes again. */
  'circuit.opened': { provider: string; channel: string; node: string };
  /** A vendor lane's circuit breaker closed again on `node`. */
  'circuit.closed': { provider: string; channel: string; node: string };
  /** The vendor refused a workspace's credentials for `provider` (401/403 class answers). */
  'provider.failing': DeliveryRef & { provider: string; error_class: string; error: string };
  /**
   * A webhook was received and committed (inbound/service.ts). The event itself (payload, headers,
   * body) is read with InboundService.getEvent(workspace_id, event_id).
   */
  'inbound.received': { workspace_id: string; event_id: string; source_id: string; path: string; provider: string; event_type: string | null; received_at: number };
}

export type EventType = keyof EventPayloads;

/** One event: its name, when it happened (ms since the epoch), and its payload. */
export type HeraldEvent = { [T in EventType]: { type: T; at: number } & EventPayloads[T] }[EventType];
export type EventOf<T extends EventType> = Extract<HeraldEvent, { type: T }>;

