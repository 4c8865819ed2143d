// How deliveries are found by notification and notifications by recipient without an index of
// their own on `deliveries` (migration 0013): every index of that table gets an entry at each claim
// and settle, so it holds only what the queue and the primary key need.
//
// - A notification's deliveries: a delivery id is its notification's range prefix (`dlv_` + the
//   notification id from its 5th character) + a suffix (domain/ids.ts deliveryId), so they are
//   the primary-key range [prefix, prefix + '~'). Deliveries made before 0013 have ids outside that
//   range; they are the rows of the partial index deliveries_notification_legacy, whose predicate
//   (LEGACY_DELIVERY_PREDICATE) a query must repeat verbatim for either planner to use it. So
//   `ofNotifications` (of-notifications.ts) is, per notification, `(notification_id = X AND id in X's range) OR
//   (notification_id = X AND <legacy predicate>)`: written this way (an OR of ANDs) SQLite runs it
//   as a multi-index OR and PostgreSQL as a BitmapOr; SQLite scans the table for other shapes.
// - A recipient's notifications: those whose recipient_id is the recipient (one index entry on
//   the notification, no row of its own: the common single-recipient send), and those listed in
//   notification_recipients (several recipients, topics, and notifications from before 0013).
//   The store decides between the two when it writes a notification (recipientsOf).
//
// The SQLite writer thread imports this module: it imports no package (Kysely's query builder is
// in of-notifications.ts), so the thread loads none.

import type { DeliveriesTable, NotificationRecipientsTable } from './schema.ts';

/**
 * The rows of deliveries_notification_legacy (migration 0013): a delivery whose id does not start
 * with its notification's range prefix (`dlv_` + notification_id from its 5th character). Readers
 * use this exact text.
 */
export const LEGACY_DELIVERY_PREDICATE = `substr(id, 1, length(notification_id)) <> 'dlv_' || substr(notification_id, 5)`;

/** The primary-key range [lo, hi) of the deliveries made for `notificationId` since 0013. */
export function deliveryRange(notificationId: string): [lo: string, hi: string] {
  const lo = `dlv_${notificationId.slice(4)}`;
  return [lo, `${lo}~`];
}

/**
 * How a notification written with `deliveries` (its deliveries at accept) records its recipients:
 * the recipient_id of a notification whose deliveries all go to one recipient, else null and the
 * notification_recipients rows (recipientRows).
 */
export function recipientsOf(deliveries: readonly Pick<DeliveriesTable, 'workspace_id' | 'recipient_id' | 'notification_id'>[]): { recipientId: string | null; rows: NotificationRecipientsTable[] } {
  const first = deliveries[0]?.recipient_id;
  if (first !== undefined && deliveries.every((d) => d.recipient_id === first)) return { recipientId: first, rows: [] };
  return { recipientId: null, rows: recipientRows(deliveries) };
}

/** The notification_recipients rows of `deliveries`: one per notification and recipient. */
export function recipientRows(deliveries: readonly Pick<DeliveriesTable, 'workspace_id' | 'recipient_id' | 'notification_id'>[]): NotificationRecipientsTable[] {
  const seen = new Set<string>();
  const rows: NotificationRecipientsTable[] = [];
  for (const d of deliveries) {
    const k = `${d.workspace_id}\u0000${d.recipient_id}\u0000${d.notification_id}`;
    if (seen.has(k)) continue;
    seen.add(k);
    rows.push({ workspace_id: d.workspace_id, recipient_id: d.recipient_id, notification_id: d.notification_id });
  }
  return rows;
}
