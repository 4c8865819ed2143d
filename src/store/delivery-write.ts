// The one delivery write. Every new delivery row, whoever makes it (accept, digest, topic fan-out,
// fallback), is inserted by its dialect's one bulk statement, built from this column list:
// PostgreSQL `INSERT INTO deliveries (DELIVERY_COLUMNS) SELECT * FROM unnest(<one array per
// column>)` (postgres.ts), SQLite `INSERT INTO deliveries (DELIVERY_COLUMNS) SELECT value->>0, …
// FROM jsonb_each(<the rows as JSON arrays>)` (sqlite-accept.ts). The accept write runs it inside
// its own statement; everything else calls StoreAdapter.insertDeliveries, on any executor (a
// transaction's included). The columns a new delivery never sets (status_detail, success_*) are
// left to their defaults (NULL).

import type { DeliveriesTable } from './schema.ts';

/** The columns of a new delivery row, in the order both dialects' statements list them. */
export const DELIVERY_COLUMNS = [
  'id', 'workspace_id', 'notification_id', 'recipient_id', 'channel', 'status', 'reason', 'attempts', 'run_at', 'lease_owner',
  'error_class', 'last_error', 'provider_message_id', 'created_at', 'updated_at', 'completed_at', 'device_id', 'after_id', 'content',
  'digest_id',
] as const satisfies readonly (keyof DeliveriesTable)[];

/** PostgreSQL's element type of each column's array parameter. */
export const DELIVERY_PG_TYPES: Record<(typeof DELIVERY_COLUMNS)[number], 'text' | 'int4' | 'int8'> = {
  id: 'text', workspace_id: 'text', notification_id: 'text', recipient_id: 'text', channel: 'text', status: 'text', reason: 'text',
  attempts: 'int4', run_at: 'int8', lease_owner: 'text', error_class: 'text', last_error: 'text', provider_message_id: 'text',
  created_at: 'int8', updated_at: 'int8', completed_at: 'int8', device_id: 'text', after_id: 'text', content: 'text', digest_id: 'text',
};

/** The values of `d` in DELIVERY_COLUMNS order (an absent optional column is NULL). */
export function deliveryValues(d: DeliveriesTable): unknown[] {
  return DELIVERY_COLUMNS.map((c) => d[c] ?? null);
}
