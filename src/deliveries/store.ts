// Queries of the deliveries feature that are not the queue's hot path (store/adapter.ts) nor the
// after-send writes (store/deliveries.ts).

import type { Kysely } from 'kysely';
import { CLAIMABLE, type DeliveryStatus } from '../domain/delivery-status.ts';
import type { Database } from '../store/schema.ts';

/** Deliveries waiting (the claimable statuses) or exhausted (the DLQ), counted by channel and status. */
export async function queueDepth(db: Kysely<Database>): Promise<{ channel: string; status: DeliveryStatus; n: number }[]> {
  const rows = await db
    .selectFrom('deliveries')
    .select(['channel', 'status', (eb) => eb.fn.countAll<number>().as('n')])
    .where('status', 'in', [...CLAIMABLE, 'exhausted'])
    .groupBy(['channel', 'status'])
    .execute();
  return rows.map((r) => ({ channel: r.channel, status: r.status, n: Number(r.n) }));
}
