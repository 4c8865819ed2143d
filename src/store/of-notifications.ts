// The WHERE of "deliveries of these notifications" as a Kysely expression (delivery-keys.ts says
// why it has this shape).

import { sql, type Expression, type ExpressionBuilder, type SqlBool } from 'kysely';
import { deliveryRange, LEGACY_DELIVERY_PREDICATE } from './delivery-keys.ts';
import type { Database } from './schema.ts';

/**
 * The WHERE of "deliveries of these notifications" on the `deliveries` table (unqualified
 * columns), in the shape both planners serve from the primary key and the legacy index. `ids` must
 * not be empty.
 */
export function ofNotifications(ids: readonly string[]): (eb: ExpressionBuilder<Database, 'deliveries'>) => Expression<SqlBool> {
  if (ids.length === 0) throw new Error('ofNotifications: no notification ids');
  const unique = [...new Set(ids)];
  return (eb) =>
    eb.or([
      ...unique.map((id) => {
        const [lo, hi] = deliveryRange(id);
        return eb.and([eb('notification_id', '=', id), eb('id', '>=', lo), eb('id', '<', hi)]);
      }),
      eb.and([unique.length === 1 ? eb('notification_id', '=', unique[0]!) : eb('notification_id', 'in', unique), sql<SqlBool>`${sql.raw(LEGACY_DELIVERY_PREDICATE)}`]),
    ]);
}
