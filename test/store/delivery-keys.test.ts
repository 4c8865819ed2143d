// Migration 0013 (delivery keys) on SQLite and PostgreSQL: a database holding notifications and
// deliveries from before it migrates, and afterwards every reader finds both the old rows (ids of
// their own, through deliveries_notification_legacy) and the new ones (ids in their
// notification's primary-key range), recipients' notifications through notification_recipients,
// and new deliveries never enter the legacy index.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Migrator, sql } from 'kysely';
import { summarizeNotification, type DeliveryStatus } from '../../src/domain/delivery-status.ts';
import { deliveryId, newId } from '../../src/domain/ids.ts';
import type { AcceptItem, StoreAdapter } from '../../src/store/adapter.ts';
import { deliveryRange, LEGACY_DELIVERY_PREDICATE } from '../../src/store/delivery-keys.ts';
import { ofNotifications } from '../../src/store/of-notifications.ts';
import { createFallbackDelivery } from '../../src/store/deliveries.ts';
import { migrationProvider } from '../../src/store/migrations/index.ts';
import { cancelNotification, getNotification, listNotifications } from '../../src/notifications/store.ts';
import { PostgresAdapter } from '../../src/store/postgres.ts';
import { deleteRecipient } from '../../src/recipients/store.ts';
import type { DeliveriesTable, NotificationsTable, RecipientsTable } from '../../src/store/schema.ts';
import { SqliteAdapter } from '../../src/store/sqlite.ts';
import { tempDir } from '../helpers/herald.ts';
import { freshSchema } from '../helpers/postgres.ts';

const WS = 'ws_keys';
const BEFORE = '0012_success_on_delivery';

function recipient(id: string): RecipientsTable {
  return {
    workspace_id: WS, id, name: null, email: `${id}@example.com`, phone: null, locale: null, timezone: null, webhook_url: `https://example.com/${id}`,
    webhook_secret: null, webhook_disabled_at: null, webhook_disabled_reason: null, pushover_user_key: null, pushover_device: null,
    slack_webhook_url: null, discord_webhook_url: null, kakao_phone: null, address_disabled: null, metadata: null, created_at: 1, updated_at: 1,
  };
}

function notification(id: string, count: number, created: number): NotificationsTable {
  return {
    id, workspace_id: WS, kind: 'alert', title: 'T', body: 'B', data: null, metadata: null, status: 'accepted', idempotency_key: null,
    delivery_count: count, channel_options: null, fallback: 0, routing: 'all', template: null, created_at: created,
  };
}

function delivery(id: string, notificationId: string, recipientId: string, status: DeliveryStatus, channel = 'webhook'): DeliveriesTable {
  const terminal = status === 'sent' || status === 'skipped';
  return {
    id, workspace_id: WS, notification_id: notificationId, recipient_id: recipientId, channel, device_id: null, after_id: null, content: null,
    status, reason: null, attempts: status === 'pending' ? 0 : 1, run_at: 1000, lease_owner: null, error_class: null, last_error: null,
    provider_message_id: null, created_at: 1000, updated_at: 1000, completed_at: terminal ? 1000 : null,
  };
}

const variants: Record<'sqlite' | 'postgres', () => Promise<{ store: StoreAdapter; migrateBefore: () => Promise<void>; cleanup: () => Promise<void> }>> = {
  async sqlite() {
    const dir = tempDir('herald-keys-');
    const store = new SqliteAdapter(join(dir, 'herald.db'));
    return {
      store,
      migrateBefore: async () => {
        const { error } = await new Migrator({ db: store.db, provider: migrationProvider }).migrateTo(BEFORE);
        if (error) throw error;
      },
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  },
  async postgres() {
    const s = await freshSchema();
    const store = new PostgresAdapter(s.baseUrl, { schema: s.schema });
    return {
      store,
      migrateBefore: async () => {
        const { error } = await new Migrator({ db: store.db, provider: migrationProvider, migrationTableSchema: s.schema }).migrateTo(BEFORE);
        if (error) throw error;
      },
      cleanup: () => s.drop(),
    };
  },
};

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`delivery keys (migration 0013): ${dialect}`, () => {
    let store: StoreAdapter;
    let cleanup: () => Promise<void>;
    // Rows from before the migration: A has deliveries to r1 (pending) and r2 (sent), B to r1 (failed).
    const A = newId('ntf');
    const B = newId('ntf');
    const a1 = newId('dlv');
    const a2 = newId('dlv');
    const b1 = newId('dlv');

    before(async () => {
      const v = await variants[dialect]();
      store = v.store;
      cleanup = v.cleanup;
      await v.migrateBefore();
      await store.db.insertInto('recipients').values([recipient('r1'), recipient('r2'), recipient('r3')]).execute();
      await store.db.insertInto('notifications').values([notification(A, 2, 1000), notification(B, 1, 1001)]).execute();
      await store.db.insertInto('deliveries').values([delivery(a1, A, 'r1', 'pending'), delivery(a2, A, 'r2', 'sent'), delivery(b1, B, 'r1', 'failed')]).execute();
      await store.migrate();
    });
    after(async () => {
      await store?.close();
      await cleanup?.();
    });

    const legacyRows = async () =>
      (await sql<{ id: string }>`SELECT id FROM deliveries WHERE ${sql.raw(LEGACY_DELIVERY_PREDICATE)} ORDER BY id`.execute(store.db)).rows.map((r) => r.id);

    it('fills notification_recipients from the deliveries and keeps the old ids as legacy rows', async () => {
      const rows = await store.db.selectFrom('notification_recipients').selectAll().orderBy('notification_id').orderBy('recipient_id').execute();
      assert.deepEqual(rows, [
        { workspace_id: WS, recipient_id: 'r1', notification_id: A },
        { workspace_id: WS, recipient_id: 'r2', notification_id: A },
        { workspace_id: WS, recipient_id: 'r1', notification_id: B },
      ]);
      assert.deepEqual(await legacyRows(), [a1, a2, b1].sort());
    });

    it('lists a recipient\'s notifications newest first, with their deliveries, from old rows', async () => {
      const r1 = await listNotifications(store.db, WS, { recipient: 'r1', limit: 10 });
      assert.deepEqual(r1.notifications.map((n) => n.id), [B, A]);
      assert.deepEqual(r1.deliveries.map((d) => d.id).sort(), [a1, a2, b1].sort());
      const page = await listNotifications(store.db, WS, { recipient: 'r1', limit: 1, before: B });
      assert.deepEqual(page.notifications.map((n) => n.id), [A]);
      assert.deepEqual((await listNotifications(store.db, WS, { recipient: 'r2', limit: 10 })).notifications.map((n) => n.id), [A]);
      assert.deepEqual((await listNotifications(store.db, WS, { recipient: 'r2', status: 'failed', limit: 10 })).notifications, []);
    });

    it('finds an old notification\'s old and new deliveries together (fallback, status refresh, cancel)', async () => {
      assert.ok(await createFallbackDelivery(store, { id: a1, workspace_id: WS, notification_id: A, recipient_id: 'r1' }, 'sms', Date.now()));
      assert.equal(await createFallbackDelivery(store, { id: a1, workspace_id: WS, notification_id: A, recipient_id: 'r1' }, 'sms', Date.now()), undefined, 'the new delivery is found');
      assert.equal(await createFallbackDelivery(store, { id: a2, workspace_id: WS, notification_id: A, recipient_id: 'r2' }, 'webhook', Date.now()), undefined, 'the old delivery is found');
      const found = (await getNotification(store.db, WS, A))!;
      assert.equal(found.deliveries.length, 3);
      const added = found.deliveries.find((d) => d.channel === 'sms')!;
      const [lo, hi] = deliveryRange(A);
      assert.ok(added.id >= lo && added.id < hi, `${added.id} is in ${A}'s range`);
      assert.deepEqual(await legacyRows(), [a1, a2, b1].sort(), 'a new delivery never enters the legacy index');

      await store.refreshNotificationStatus([A]);
      const status = (await store.db.selectFrom('notifications').select('status').where('id', '=', A).executeTakeFirstOrThrow()).status;
      assert.equal(status, summarizeNotification({ pending: 2, sent: 1 }));

      assert.equal((await cancelNotification(store, WS, A, Date.now()))?.length, 2, 'the old pending delivery and the new one');
    });

    it('writes notification_recipients and in-range ids for new notifications, and settles multi-delivery ones by counting both kinds', async () => {
      const now = Date.now();
      const id = newId('ntf');
      const ds = ['r1', 'r3', 'r3'].map((r, i) => ({ ...delivery(deliveryId(id, i), id, r, 'pending', i === 2 ? 'email' : 'webhook'), run_at: now - 1, created_at: now }));
      const item: AcceptItem = { notification: notification(id, 3, now), deliveries: ds };
      assert.deepEqual(await store.acceptBatch([item]), ['ok']);
      assert.deepEqual(
        (await store.db.selectFrom('notification_recipients').select('recipient_id').where('notification_id', '=', id).orderBy('recipient_id').execute()).map((r) => r.recipient_id),
        ['r1', 'r3'],
      );
      assert.deepEqual((await getNotification(store.db, WS, id))!.deliveries.map((d) => d.id), ds.map((d) => d.id));
      assert.deepEqual((await listNotifications(store.db, WS, { recipient: 'r3', limit: 10 })).notifications.map((n) => n.id), [id]);

      // One recipient: named on the notification, no notification_recipients row.
      const single = newId('ntf');
      const sd = [0, 1].map((i) => ({ ...delivery(deliveryId(single, i), single, 'r3', 'skipped', i === 0 ? 'webhook' : 'email'), created_at: now }));
      assert.deepEqual(await store.acceptBatch([{ notification: { ...notification(single, 2, now), status: 'skipped' }, deliveries: sd }]), ['ok']);
      assert.equal((await store.db.selectFrom('notifications').select('recipient_id').where('id', '=', single).executeTakeFirstOrThrow()).recipient_id, 'r3');
      assert.equal((await store.db.selectFrom('notifications').select('recipient_id').where('id', '=', id).executeTakeFirstOrThrow()).recipient_id, null);
      assert.deepEqual(await store.db.selectFrom('notification_recipients').selectAll().where('notification_id', '=', single).execute(), []);
      const r3 = await listNotifications(store.db, WS, { recipient: 'r3', limit: 10 });
      assert.deepEqual(r3.notifications.map((n) => n.id), [single, id]);
      assert.deepEqual((await listNotifications(store.db, WS, { recipient: 'r3', limit: 1 })).notifications.map((n) => n.id), [single]);
      assert.deepEqual((await listNotifications(store.db, WS, { recipient: 'r3', limit: 5, before: single })).notifications.map((n) => n.id), [id]);
      assert.deepEqual((await listNotifications(store.db, WS, { recipient: 'r3', limit: 5, status: 'skipped' })).notifications.map((n) => n.id), [single]);
      assert.deepEqual(await legacyRows(), [a1, a2, b1].sort());

      const owner = `keys-${dialect}`;
      const claimed = await store.claim('email', owner, 10, now, 60_000);
      assert.deepEqual(claimed.map((c) => c.id), [ds[2]!.id]);
      const moved = await store.settle([{
        id: ds[2]!.id, owner, status: 'sent', deliveryCount: 3,
        attempt: { delivery_id: ds[2]!.id, workspace_id: WS, attempt: 1, started_at: now, duration_ms: 1, outcome: 'success', error_class: null, error: null, http_status: 250, smtp_reply: null, response: null },
      }]);
      assert.equal(moved, 1);
      const status = (await store.db.selectFrom('notifications').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status;
      assert.equal(status, summarizeNotification({ pending: 2, sent: 1 }));
    });

    it('skips a deleted recipient\'s waiting deliveries, old and new', async () => {
      assert.notEqual(await deleteRecipient(store, WS, 'r1'), undefined);
      const r1 = await store.db.selectFrom('deliveries').select(['id', 'status', 'reason']).where('recipient_id', '=', 'r1').where('status', '=', 'skipped').execute();
      assert.ok(r1.some((d) => d.id === b1), 'the old failed delivery is skipped');
      assert.ok(r1.every((d) => d.reason === 'recipient_deleted'));
      assert.deepEqual((await listNotifications(store.db, WS, { recipient: 'r1', limit: 10 })).notifications.length, 3, 'the history keeps the recipient id');
    });

    it('serves "deliveries of a notification" from the primary key and the legacy index', async () => {
      const q = store.db.selectFrom('deliveries').selectAll().where(ofNotifications([A, B])).compile();
      if (dialect === 'postgres') {
        const plan = await store.db.connection().execute(async (c) => {
          await sql`SET enable_seqscan = off`.execute(c);
          try {
            return (await c.executeQuery<{ 'QUERY PLAN': string }>({ ...q, sql: `EXPLAIN ${q.sql}` })).rows.map((r) => r['QUERY PLAN']).join('\n');
          } finally {
            await sql`RESET enable_seqscan`.execute(c);
          }
        });
        assert.match(plan, /deliveries_pkey/);
        assert.match(plan, /deliveries_notification_legacy/);
      } else {
        const plan = (await store.db.executeQuery<{ detail: string }>({ ...q, sql: `EXPLAIN QUERY PLAN ${q.sql}` })).rows.map((r) => r.detail).join('\n');
        assert.match(plan, /MULTI-INDEX OR/);
        assert.match(plan, /deliveries_notification_legacy/);
        assert.doesNotMatch(plan, /^SCAN deliveries/m);
      }
    });
  });
}
