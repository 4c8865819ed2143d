// One list of claimable statuses: CLAIMABLE (domain/delivery-status.ts) is what the claim
// statements select (CLAIMABLE_SQL) and what the partial index deliveries_due covers, on both
// stores. A change to CLAIMABLE without a migration rebuilding the index fails here.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { CLAIMABLE, DELIVERY_STATUSES } from '../../src/domain/delivery-status.ts';
import { deliveryId, newId } from '../../src/domain/ids.ts';
import { CLAIMABLE_SQL, type StoreAdapter } from '../../src/store/adapter.ts';
import { PostgresAdapter } from '../../src/store/postgres.ts';
import { SqliteAdapter } from '../../src/store/sqlite.ts';
import { tempDir } from '../helpers/herald.ts';
import { freshSchema } from '../helpers/postgres.ts';

const quoted = (text: string) => [...text.matchAll(/'([a-z_]+)'/g)].map((m) => m[1]!).sort();

it('CLAIMABLE_SQL lists exactly CLAIMABLE', () => {
  assert.deepEqual(quoted(CLAIMABLE_SQL), [...CLAIMABLE].sort());
});

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`claimable statuses: ${dialect}`, () => {
    let store: StoreAdapter;
    let cleanup: () => Promise<void>;
    before(async () => {
      if (dialect === 'sqlite') {
        const dir = tempDir('herald-claimable-');
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

    it('the partial index deliveries_due covers exactly CLAIMABLE', async () => {
      const def =
        dialect === 'sqlite'
          ? (await sql<{ def: string }>`SELECT sql AS def FROM sqlite_master WHERE type = 'index' AND name = 'deliveries_due'`.execute(store.db)).rows[0]!.def
          : (await sql<{ def: string }>`SELECT indexdef AS def FROM pg_indexes WHERE schemaname = current_schema() AND indexname = 'deliveries_due'`.execute(store.db)).rows[0]!.def;
      const where = def.slice(def.search(/ WHERE /i));
      assert.deepEqual(quoted(where), [...CLAIMABLE].sort());
    });

    it('claim takes a due delivery in every claimable status and in no other', async () => {
      const now = Date.now();
      const channel = `ch_${dialect}`;
      const nid = newId('ntf');
      await store.db.insertInto('notifications').values({
        id: nid, workspace_id: 'ws_claimable', kind: 'alert', title: 'T', body: 'B', data: null, metadata: null, status: 'accepted', idempotency_key: null,
        delivery_count: DELIVERY_STATUSES.length, channel_options: null, fallback: 0, routing: 'all', template: null, created_at: now,
      }).execute();
      await store.db.insertInto('deliveries').values(DELIVERY_STATUSES.map((status, i) => ({
        id: deliveryId(nid, i), workspace_id: 'ws_claimable', notification_id: nid, recipient_id: `r_${status}`, channel, device_id: null, after_id: null, content: null,
        status, reason: null, attempts: 0, run_at: now - 1000, lease_owner: status === 'sending' ? 'gone' : null, error_class: null, last_error: null, provider_message_id: null,
        created_at: now, updated_at: now, completed_at: null,
      }))).execute();
      const claimed = await store.claim(channel, 'w1', 100, now, 30_000);
      assert.deepEqual(claimed.map((c) => c.recipient_id.slice(2)).sort(), [...CLAIMABLE].sort());
    });
  });
}
