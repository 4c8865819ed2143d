// Builders of the delivery events the queue announces, from what each emitter has at hand. Pure.

import { CHANNEL_PROVIDER, type ChannelName } from '../channels/channel.ts';
import type { DeliveryStatus } from '../domain/delivery-status.ts';
import type { DeliveryMove, DeliveryRef, HeraldEvent } from '../domain/events.ts';
import { CREDENTIALS_REFUSED } from '../domain/operator.ts';
import type { ClaimedDelivery, SettleItem } from '../store/adapter.ts';

function ref(d: Pick<ClaimedDelivery, 'workspace_id' | 'id' | 'notification_id' | 'recipient_id' | 'channel'>): DeliveryRef {
  return { workspace_id: d.workspace_id, delivery_id: d.id, notification_id: d.notification_id, recipient_id: d.recipient_id, channel: d.channel };
}

/**
 * The events of recorded attempt outcomes: a delivery.status (from `sending`) each; also
 * delivery.exhausted for an exhausted one, and provider.failing for one whose credentials the
 * vendor refused.
 */
export function settledEvents(outcomes: readonly { item: SettleItem; row: ClaimedDelivery }[], at = Date.now()): HeraldEvent[] {
  const out: HeraldEvent[] = [];
  for (const { item, row } of outcomes) {
    const r = ref(row);
    out.push({ type: 'delivery.status', at, ...r, from: 'sending', to: item.status, reason: item.reason ?? null, error_class: item.errorClass ?? null });
    if (item.status === 'exhausted') out.push({ type: 'delivery.exhausted', at, ...r, attempts: row.attempts, error_class: item.errorClass ?? null, error: item.error ?? null });
    const provider = CHANNEL_PROVIDER[row.channel as ChannelName];
    if (provider && item.errorClass && CREDENTIALS_REFUSED.has(item.errorClass)) {
      out.push({ type: 'provider.failing', at, ...r, provider, error_class: item.errorClass, error: item.error ?? '' });
    }
  }
  return out;
}

/** The event of a breaker's move, if it is one that is announced: closed → open, and back to closed. */
export function circuitEvent(channel: string, node: string, before: string, after: string, at: number): HeraldEvent | undefined {
  const provider = CHANNEL_PROVIDER[channel as ChannelName] ?? channel;
  if (before === 'closed' && after === 'open') return { type: 'circuit.opened', at, provider, channel, node };
  if (before !== 'closed' && after === 'closed') return { type: 'circuit.closed', at, provider, channel, node };
  return undefined;
}

/** delivery.status events of moves a store reported. */
export function moveEvents(moves: readonly DeliveryMove[], at = Date.now()): HeraldEvent[] {
  return moves.map((m) => ({ type: 'delivery.status', at, ...ref(m), from: m.from, to: m.to, reason: m.reason, error_class: null }));
}

/** delivery.status events of deliveries an operation moved from known statuses to `to`. */
export function movedEvents(
  moved: readonly { workspace_id: string; id: string; notification_id: string; recipient_id: string; channel: string; from: DeliveryStatus | null }[],
  to: DeliveryStatus,
  reason: string | null,
  at = Date.now(),
): HeraldEvent[] {
  return moved.map((m) => ({ type: 'delivery.status', at, ...ref(m), from: m.from, to, reason, error_class: null }));
}
