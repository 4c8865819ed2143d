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
//
// Terminal: sent, exhausted (until an operator acts), discarded, skipped.

export const DELIVERY_STATUSES = ['pending', 'sending', 'sent', 'failed', 'exhausted', 'discarded', 'skipped'] as const;
export type DeliveryStatus = (typeof DELIVERY_STATUSES)[number];

/** Statuses a worker may claim (when due). `sending` is claimable once its lease has expired. */
export const CLAIMABLE: readonly DeliveryStatus[] = ['pending', 'failed', 'sending'];

export const NOTIFICATION_STATUSES = ['accepted', 'in_progress', 'sent', 'partial', 'failed', 'skipped'] as const;
export type NotificationStatus = (typeof NOTIFICATION_STATUSES)[number];

export type StatusCounts = Partial<Record<DeliveryStatus, number>>;

/**
 * A notification's status summarizes its deliveries:
 * - accepted: nothing attempted yet; in_progress: some attempted, some still to go;
 * - once every delivery is terminal: sent (no failures), partial (some sent, some failed),
 *   failed (none sent, some failed), skipped (every delivery skipped).
 */
export function summarizeNotification(c: StatusCounts): NotificationStatus {
  const n = (s: DeliveryStatus) => c[s] ?? 0;
  const active = n('pending') + n('sending') + n('failed');
  const done = n('sent') + n('exhausted') + n('discarded') + n('skipped');
  if (active > 0) return n('sending') + n('failed') + done === 0 ? 'accepted' : 'in_progress';
  const problems = n('exhausted') + n('discarded');
  if (problems === 0) return n('sent') > 0 ? 'sent' : 'skipped';
  return n('sent') > 0 ? 'partial' : 'failed';
}
