// The one delivery write (store/delivery-write.ts) on both stores: StoreAdapter.insertDeliveries
// stores every column a new delivery has exactly as the accept write does, runs on the executor it
// is given (a rolled-back transaction leaves nothing), and takes any number of rows at once.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { deliveryId, newId } from '../../src/domain/ids.ts';
import type { StoreAdapter } from '../../src/store/adapter.ts';
import { DELIVERY_COLUMNS } from '../../src/store/delivery-write.ts';
import { PostgresAdapter } from '../../src/store/postgres.ts';
import type { DeliveriesTable, NotificationsTable } from '../../src/store/schema.ts';
import { SqliteAdapter } from '../../src/store/sqlite.ts';
import { tempDir } from '../helpers/herald.ts';
import { freshSchema } from '../helpers/postgres.ts';

const WS = 'ws_delivery_write';

function notification(n: number): NotificationsTable {
  return {
    id: newId('ntf'), workspace_id: WS, kind: 'alert', title: 'T', body: 'B', data: null, metadata: null, status: 'accepted', idempotency_key: null,
    delivery_count: n, channel_options: null, fallback: 0, routing: 'all', template: null, created_at: Date.now(),
  };
}

/** Deliveries with every column set to something awkward. */
function deliveries(n: NotificationsTable, count: number): DeliveriesTable[] {
  return Array.from({ length: count }, (_, i) => ({
    id: deliveryId(n.id, i), workspace_id: WS, notification_id: n.id, recipient_id: `r"${i}\\`, channel: 'email', device_id: i % 2 ? 'dev_1' : null,
    after_id: i % 3 ? null : 'dlv_before', content: '{"title":"caf\u00e9 \u{1F600}","body":"a,b {c} NULL"}', digest_id: i % 2 ? null : 'dig_x',
    status: i % 2 ? 'pending' : 'scheduled', reason: i % 2 ? null : 'digest', attempts: i, run_at: 1_700_000_000_000 + i, lease_owner: null,
    error_class: null, last_error: i % 2 ? '' : 'NULL', provider_message_id: null, created_at: 1_700_000_000_001, updated_at: 1_700_000_000_002, completed_at: i % 2 ? null : 5,
  }));
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`insertDeliveries: ${dialect}`, () => {
    let store: StoreAdapter;
    let cleanup: () => Promise<void>;
    before(async () => {
      if (dialect === 'sqlite') {
        const dir = tempDir('herald-dwrite-');
        store = new SqliteAdapter(join(dir, 'herald.db'));
        cleanup = async () => rmSync(dir, { recursive: true, force: true });
      } else {
        const s = await freshSchema();
        store = new PostgresAdapter(s.baseUrl, { schema: s.schema });
        cleanup = () => s.drop();
      }
      await store.migrate();
    });
    after(async () => {
      await store?.close();
      await cleanup?.();
    });

    const stored = async (nid: string) =>
      (await store.db.selectFrom('deliveries').select([...DELIVERY_COLUMNS]).where('notification_id', '=', nid).orderBy('id').execute()).map((r) => ({
        ...r, notification_id: 'n', id: r.id.slice(-3), run_at: Number(r.run_at), created_at: Number(r.created_at), updated_at: Number(r.updated_at),
        completed_at: r.completed_at === null ? null : Number(r.completed_at),
      }));

    it('stores every column as the accept write does', async () => {
      const viaAccept = notification(4);
      assert.deepEqual(await store.acceptBatch([{ notification: viaAccept, deliveries: deliveries(viaAccept, 4) }]), ['ok']);
      const viaInsert = notification(4);
      await store.db.insertInto('notifications').values(viaInsert).execute();
      await store.transaction((trx) => store.insertDeliveries(trx, deliveries(viaInsert, 4)));
      const a = await stored(viaAccept.id);
      assert.equal(a.length, 4);
      assert.deepEqual(await stored(viaInsert.id), a);
      assert.deepEqual(a[0], {
        id: '000', workspace_id: WS, notification_id: 'n', recipient_id: 'r"0\\', channel: 'email', status: 'scheduled', reason: 'digest', attempts: 0,
        run_at: 1_700_000_000_000, lease_owner: null, error_class: null, last_error: 'NULL', provider_message_id: null, created_at: 1_700_000_000_001,
        updated_at: 1_700_000_000_002, completed_at: 5, device_id: null, after_id: 'dlv_before', content: '{"title":"caf\u00e9 \u{1F600}","body":"a,b {c} NULL"}',
        digest_id: 'dig_x',
      });
    });

    it('runs on the executor it is given: a rolled-back transaction leaves nothing; many rows at once', async () => {
      const n = notification(1200);
      await store.db.insertInto('notifications').values(n).execute();
      await assert.rejects(
        store.transaction(async (trx) => {
          await store.insertDeliveries(trx, deliveries(n, 3));
          throw new Error('roll back');
        }),
        /roll back/,
      );
      assert.equal((await stored(n.id)).length, 0);
      await store.insertDeliveries(store.db, deliveries(n, 1200));
      assert.equal((await stored(n.id)).length, 1200);
    });
  });
}
