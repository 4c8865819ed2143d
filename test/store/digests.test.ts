// acceptWithDigest (store/digests.ts) on both stores: its outcomes follow StoreAdapter.acceptBatch's
// contract, dedupe and idempotency conflicts included, and a refused item writes nothing.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { deliveryId, newId } from '../../src/domain/ids.ts';
import type { AcceptItem, StoreAdapter } from '../../src/store/adapter.ts';
import { acceptWithDigest, type DigestSpec } from '../../src/store/digests.ts';
import { PostgresAdapter } from '../../src/store/postgres.ts';
import { SqliteAdapter } from '../../src/store/sqlite.ts';
import { tempDir } from '../helpers/herald.ts';
import { freshSchema } from '../helpers/postgres.ts';

const WS = 'ws_digest_store';
const SPEC: DigestSpec = { key: 'daily', windowMs: 60_000, template: null };

function item(recipient: string, o: { dedupe?: string; idempotency?: string } = {}): AcceptItem {
  const now = Date.now();
  const id = newId('ntf');
  return {
    notification: {
      id, workspace_id: WS, kind: 'alert', title: 'T', body: 'B', data: null, metadata: null, status: 'accepted', idempotency_key: o.idempotency ?? null,
      delivery_count: 1, channel_options: null, fallback: 0, routing: 'all', template: null, created_at: now,
    },
    deliveries: [{
      id: deliveryId(id, 0), workspace_id: WS, notification_id: id, recipient_id: recipient, channel: 'email', device_id: null, after_id: null, content: null,
      status: 'pending', reason: null, attempts: 0, run_at: now, lease_owner: null, error_class: null, last_error: null, provider_message_id: null,
      created_at: now, updated_at: now, completed_at: null,
    }],
    ...(o.dedupe !== undefined && { dedupe: { key: o.dedupe, recipients: [recipient], expiresAt: now + 60_000 } }),
    ...(o.idempotency !== undefined && { idempotency: { key: o.idempotency, requestHash: 'h', response: '{}', expiresAt: now + 60_000 } }),
  };
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`acceptWithDigest: ${dialect}`, () => {
    let store: StoreAdapter;
    let cleanup: () => Promise<void>;

    before(async () => {
      if (dialect === 'sqlite') {
        const dir = tempDir('herald-digest-');
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

    const written = async (it: AcceptItem) => ({
      notifications: (await store.db.selectFrom('notifications').select('id').where('id', '=', it.notification.id).execute()).length,
      deliveries: (await store.db.selectFrom('deliveries').select('id').where('notification_id', '=', it.notification.id).execute()).length,
      items: (await store.db.selectFrom('digest_items').select('digest_id').where('notification_id', '=', it.notification.id).execute()).length,
    });

    it('reports dedupe_conflict when another notification holds the dedupe key, and writes nothing of the item', async () => {
      const first = item('r_dedupe', { dedupe: 'k1' });
      assert.equal(await acceptWithDigest(store, first, SPEC, Date.now(), () => '{}'), 'ok');
      assert.deepEqual(await written(first), { notifications: 1, deliveries: 1, items: 1 });
      const holder = await store.db.selectFrom('dedupe_keys').select('notification_id').where('workspace_id', '=', WS).where('key', '=', 'k1').executeTakeFirstOrThrow();
      assert.equal(holder.notification_id, first.notification.id);

      const second = item('r_dedupe', { dedupe: 'k1' });
      assert.equal(await acceptWithDigest(store, second, SPEC, Date.now(), () => '{}'), 'dedupe_conflict');
      assert.deepEqual(await written(second), { notifications: 0, deliveries: 0, items: 0 });
      const digest = await store.db.selectFrom('digests').select('count').where('recipient_id', '=', 'r_dedupe').executeTakeFirstOrThrow();
      assert.equal(Number(digest.count), 1, 'the refused item did not join the digest');
      const still = await store.db.selectFrom('dedupe_keys').select('notification_id').where('workspace_id', '=', WS).where('key', '=', 'k1').executeTakeFirstOrThrow();
      assert.equal(still.notification_id, first.notification.id);

      // Another key for the same recipient joins the open digest.
      const third = item('r_dedupe', { dedupe: 'k2' });
      assert.equal(await acceptWithDigest(store, third, SPEC, Date.now(), () => '{}'), 'ok');
      assert.deepEqual(await written(third), { notifications: 1, deliveries: 1, items: 1 });
    });

    it('reports idempotency_conflict when the key is held, and writes nothing of the item', async () => {
      const first = item('r_idem', { idempotency: 'i1' });
      assert.equal(await acceptWithDigest(store, first, SPEC, Date.now(), () => '{}'), 'ok');
      const second = item('r_idem', { idempotency: 'i1' });
      assert.equal(await acceptWithDigest(store, second, SPEC, Date.now(), () => '{}'), 'idempotency_conflict');
      assert.deepEqual(await written(second), { notifications: 0, deliveries: 0, items: 0 });
    });
  });
}
