// Delivery state machine. A delivery row is also the queue entry that carries it.
//
//   pending ──claim──▶ sending ──2xx──────────────▶ sent
//   failed  ──claim──▶ sending ──retryable error──▶ failed     (run_at = next retry)
//                      sending ──permanent error / last retry failed ──▶ exhausted  (the DLQ)
//                      sending ──address gone────▶ skipped    (with a reason)
//                      sending ──lease released──▶ pending | failed  (shutdown; attempt not counted)
//                      sending ──lease expired───▶ sending    (another worker reclaims it)
//   exhausted ──replay──▶ pending (fresh retry budget)      exhausted ──discard──▶ discarded
//   pending | failed ──recipient deleted──▶ skipped
//   scheduled | throttled ──due (run_at)──▶ claimed like pending    (send_at, quiet hours, blackout; rate limit)
//   pending | failed | scheduled | throttled ──cancel──▶ cancelled
//   (at accept) ──same dedupe key inside its window──▶ deduplicated
//   (at accept) ──joined an open digest of the recipient and channel──▶ digested (the digest's delivery carries it)
//   standby ──the step it waits for failed (exhausted, undelivered, skipped)──▶ pending   (routing "first")
//   standby ──the step it waits for succeeded──▶ skipped (reason earlier_channel_sent)
//   skipped (earlier_channel_sent) ──that step is reported undelivered later──▶ pending
//
// After `sent`, vendor callbacks and receipts (advanceAfterSent) move it on, forward only:
//   sent ──delivered──▶ delivered ──read──▶ read
//   sent | delivered ──acknowledged (Pushover receipt)──▶ acknowledged
//   sent | delivered ──undelivered / failed / receipt expired──▶ undelivered
//
// Terminal: sent and what follows it, exhausted (until an operator acts), discarded, skipped,
// cancelled, deduplicated.

export const DELIVERY_STATUSES = [
  'pending', 'scheduled', 'throttled', 'standby', 'sending', 'sent', 'failed', 'exhausted', 'discarded', 'skipped', 'cancelled', 'deduplicated', 'digested',
  'delivered', 'read', 'acknowledged', 'undelivered',
] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** Statuses a worker may claim (when due). `sending` is claimable once its lease has expired. */
export const CLAIMABLE: readonly DeliveryStatus[] = ['pending', 'failed', 'sending', 'scheduled', 'throttled'];

/** Not yet attempted or between attempts, and not leased: what cancelling a notification stops. */
export const CANCELLABLE: readonly DeliveryStatus[] = ['pending', 'failed', 'scheduled', 'throttled', 'standby'];

export const NOTIFICATION_STATUSES = ['accepted', 'in_progress', 'sent', 'partial', 'failed', 'skipped', 'cancelled'] as const;
export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number];

/** Statuses a vendor callback or receipt may set. */
export const AFTER_SENT = ['delivered', 'read', 'acknowledged', 'undelivered'] as const;
export type AfterSentStatus = (typeof AFTER_SENT)[number];

/** Reached by a send that went out: the vendor took it (sent) or reported on it since. */
export const WENT_OUT: readonly DeliveryStatus[] = ['sent', 'delivered', 'read', 'acknowledged', 'undelivered'];

const RANK: Partial<Record<DeliveryStatus, number>> = { sent: 0, delivered: 1, read: 2, acknowledged: 2, undelivered: 2 };

/**
 * Whether a callback may move a delivery from `current` to `next`: only forward along the
 * machine above, so late, repeated or reordered callbacks are harmless (idempotent).
 */
export function advanceAfterSent(current: DeliveryStatus, next: AfterSentStatus): boolean {
  const from = RANK[current];
  if (from === undefined || current === next) return false;
  if (next === 'undelivered' || next === 'acknowledged') return current === 'sent' || current === 'delivered';
  return RANK[next]! > from && current !== 'undelivered' && current !== 'acknowledged';
}

export type StatusCounts = Partial<Record<DeliveryStatus, number>>;

/**
 * A notification's status summarizes its deliveries:
 * - accepted: nothing attempted yet; in_progress: some attempted, some still to go;
 * - once every delivery is terminal: sent (no failures), partial (some sent, some failed),
 *   failed (none sent, some failed), cancelled (none sent or failed, some cancelled), skipped
 *   (every delivery skipped or deduplicated). Delivered, read, acknowledged and digested (carried
 *   by a digest) count as sent; undelivered as failed. Scheduled, throttled and standby are still
 *   to go, like pending.
 */
export function summarizeNotification(c: StatusCounts): NotificationStatus {
  const n = (s: DeliveryStatus) => c[s] ?? 0;
  const active = n('pending') + n('scheduled') + n('throttled') + n('standby') + n('sending') + n('failed');
  const ok = n('sent') + n('delivered') + n('read') + n('acknowledged') + n('digested');
  const problems = n('exhausted') + n('discarded') + n('undelivered');
  const done = ok + problems + n('skipped') + n('deduplicated') + n('cancelled');
  if (active > 0) return n('sending') + n('failed') + done === 0 ? 'accepted' : 'in_progress';
  if (problems === 0) return ok > 0 ? 'sent' : n('cancelled') > 0 ? 'cancelled' : 'skipped';
  return ok > 0 ? 'partial' : 'failed';
}
