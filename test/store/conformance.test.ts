// One suite, every StoreAdapter: each contract in src/store/adapter.ts is checked against SQLite (a
// temporary file) and PostgreSQL (a fresh schema). Tests share one store per dialect and keep out
// of each other's way with their own channel names, owners and recipients.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import type { AcceptItem, ClaimedDelivery, SettleItem, StoreAdapter } from '../../src/store/adapter.ts';
import { deliveryId, newId } from '../../src/domain/ids.ts';
import { LATEST_MIGRATION, MIGRATION_NAMES } from '../../src/store/migrations/index.ts';
import { PostgresAdapter } from '../../src/store/postgres.ts';
import type { DeliveriesTable, NotificationsTable, RecipientsTable } from '../../src/store/schema.ts';
import { SqliteAdapter } from '../../src/store/sqlite.ts';
import { tempDir } from '../helpers/herald.ts';
import { freshSchema, withClient, type TestSchema } from '../helpers/postgres.ts';

interface Harness {
  /** Opens another adapter on the same database (another process, as far as the store can tell). */
  open(): Promise<StoreAdapter>;
  cleanup(): Promise<void>;
}

type Variant = 'sqlite' | 'sqlite (no writer thread)' | 'postgres';

function sqliteHarness(writerThread: boolean): () => Promise<Harness> {
  return async () => {
    const dir = tempDir('herald-store-');
    return {
      open: async () => new SqliteAdapter(join(dir, 'herald.db'), { writerThread }),
      cleanup: async () => rmSync(dir, { recursive: true, force: true }),
    };
  };
}

const harnesses: Record<Variant, () => Promise<Harness>> = {
  sqlite: sqliteHarness(true),
  // Accept batches on the main connection, as ':memory:' databases run them.
  'sqlite (no writer thread)': sqliteHarness(false),
  async postgres() {
    const s = await freshSchema();
    return {
      open: async () => new PostgresAdapter(s.baseUrl, { schema: s.schema, poolSize: 24 }),
      cleanup: () => s.drop(),
    };
  },
};

const WS = 'ws_conformance';
const uniq = (p: string) => `${p}_${randomBytes(5).toString('hex')}`;

function recipient(id: string, over: Partial<RecipientsTable> = {}): RecipientsTable {
  const now = Date.now();
  return {
    workspace_id: WS, id, name: `Name of ${id}`, email: `${id}@example.com`, phone: null, locale: 'de-DE', timezone: null,
    webhook_url: `https://example.com/${id}`, webhook_secret: `sealed-${id}`, webhook_disabled_at: null, webhook_disabled_reason: null,
    pushover_user_key: null, pushover_device: null, slack_webhook_url: null, discord_webhook_url: null, kakao_phone: null, address_disabled: null,
    metadata: null, created_at: now - 5000, updated_at: now - 5000,
    ...over,
  };
}

/** A notification with one delivery per recipient on `channel`, due at `runAt`. */
function item(
  channel: string,
  recipients: string[],
  o: { runAt?: number; createdAt?: number; key?: string; expiresAt?: number; skip?: boolean; ws?: string } = {},
): AcceptItem {
  const created = o.createdAt ?? Date.now();
  const ws = o.ws ?? WS;
  const notification: NotificationsTable = {
    id: newId('ntf'), workspace_id: ws, kind: 'alert', title: `T ${channel}`, body: 'B', data: '{"n":1}', metadata: null,
    status: 'accepted', idempotency_key: o.key ?? null, delivery_count: recipients.length, channel_options: null, fallback: 0, routing: 'all', template: null, created_at: created,
  };
  const deliveries: DeliveriesTable[] = recipients.map((r, i) => ({
    id: deliveryId(notification.id, i), workspace_id: ws, notification_id: notification.id, recipient_id: r, channel, device_id: null, after_id: null, content: null,
    status: o.skip ? 'skipped' : 'pending', reason: o.skip ? 'no_address' : null, attempts: 0, run_at: o.runAt ?? created,
    lease_owner: null, error_class: null, last_error: null, provider_message_id: null, created_at: created, updated_at: created,
    completed_at: o.skip ? created : null,
  }));
  return {
    notification,
    deliveries,
    ...(o.key !== undefined && {
      idempotency: { key: o.key, requestHash: `hash-${o.key}`, response: JSON.stringify({ id: notification.id }), expiresAt: o.expiresAt ?? created + 86_400_000 },
    }),
  };
}

function settleItem(id: string, owner: string, attempt: number, status: SettleItem['status'], over: Partial<SettleItem> = {}): SettleItem {
  return {
    id, owner, status,
    attempt: {
      delivery_id: id, workspace_id: WS, attempt, started_at: Date.now() - 10, duration_ms: 10,
      outcome: status === 'sent' ? 'success' : status === 'failed' ? 'retryable' : 'permanent',
      error_class: status === 'sent' ? null : 'http_5xx', error: status === 'sent' ? null : 'boom', http_status: status === 'sent' ? 200 : 503,
      smtp_reply: null, response: 'resp',
    },
    ...over,
  };
}

for (const variant of ['sqlite', 'sqlite (no writer thread)', 'postgres'] as const) {
  const dialect = variant === 'postgres' ? 'postgres' : 'sqlite';
  describe(`StoreAdapter conformance: ${variant}`, () => {
    let h: Harness;
    let store: StoreAdapter;
    const extra: StoreAdapter[] = [];

    before(async () => {
      h = await harnesses[variant]();
      store = await h.open();
      await store.migrate();
    });
    after(async () => {
      await Promise.all(extra.map((s) => s.close()));
      await store?.close();
      await h?.cleanup();
    });

    async function addRecipients(...rs: RecipientsTable[]): Promise<void> {
      await store.db.insertInto('recipients').values(rs).execute();
    }
    const delivery = (id: string) => store.db.selectFrom('deliveries').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
    const notificationStatus = async (id: string) =>
      (await store.db.selectFrom('notifications').select('status').where('id', '=', id).executeTakeFirstOrThrow()).status;

    it('migrates, reports the applied migration, answers ping, and migrates again as a no-op', async () => {
      assert.equal(store.dialect, dialect);
      assert.equal(await store.appliedMigration(), LATEST_MIGRATION);
      await store.migrate();
      assert.equal(await store.appliedMigration(), LATEST_MIGRATION);
      await store.ping();
    });

    it('reports no applied migration on an empty database', async () => {
      const h2 = await harnesses[variant]();
      const empty = await h2.open();
      try {
        assert.equal(await empty.appliedMigration(), undefined);
      } finally {
        await empty.close();
        await h2.cleanup();
      }
    });

    it('transaction commits what fn wrote, and rolls all of it back when fn throws', async () => {
      const [a, b] = [uniq('ws'), uniq('ws')];
      await store.transaction(async (trx) => {
        await trx.insertInto('workspaces').values({ id: a, name: 'A', created_at: 1 }).execute();
      });
      await assert.rejects(
        store.transaction(async (trx) => {
          await trx.insertInto('workspaces').values({ id: b, name: 'B', created_at: 2 }).execute();
          throw new Error('abort');
        }),
        /abort/,
      );
      const rows = await store.db.selectFrom('workspaces').select(['id', 'name', 'created_at']).where('id', 'in', [a, b]).execute();
      assert.deepEqual(rows, [{ id: a, name: 'A', created_at: 1 }]);
    });

    it('findRecipients returns the addresses of the workspace\'s recipients among the ids, with times as numbers', async () => {
      const byId = (x: { id: string }, y: { id: string }) => (x.id < y.id ? -1 : 1);
      const rows = [
        recipient(uniq('r'), { webhook_disabled_at: Date.now(), pushover_user_key: 'u'.repeat(30), address_disabled: 'pushover' }),
        recipient(uniq('r'), { email: null, slack_webhook_url: 'sealed-slack', discord_webhook_url: 'sealed-discord', kakao_phone: '+821012345678' }),
      ];
      await addRecipients(...rows, { ...recipient(rows[0]!.id), workspace_id: 'ws_other', name: 'Other' });
      const found = await store.findRecipients(WS, [rows[0]!.id, rows[1]!.id, 'nobody']);
      const addresses = rows.map((r) => ({
        id: r.id, email: r.email, phone: r.phone, locale: r.locale, timezone: r.timezone, webhook_url: r.webhook_url, webhook_disabled_at: r.webhook_disabled_at,
        pushover_user_key: r.pushover_user_key, slack_webhook_url: r.slack_webhook_url, discord_webhook_url: r.discord_webhook_url,
        kakao_phone: r.kakao_phone, address_disabled: r.address_disabled,
      }));
      assert.deepEqual([...found].sort(byId), addresses.sort(byId));
      assert.deepEqual(await store.findRecipients(WS, [rows[1]!.id]), [addresses.find((a) => a.id === rows[1]!.id)]);
      assert.equal(typeof found.find((f) => f.webhook_disabled_at !== null)!.webhook_disabled_at, 'number');
      assert.deepEqual(await store.findRecipients(WS, []), []);
    });

    it('acceptBatch writes every item\'s notification, deliveries and idempotency record, one outcome per item', async () => {
      const ch = uniq('ch');
      const r = uniq('r');
      const items = [item(ch, [r, `${r}_2`]), item(ch, [r], { key: uniq('k') }), item(ch, [r], { skip: true })];
      assert.deepEqual(await store.acceptBatch(items), ['ok', 'ok', 'ok']);

      const ns = await store.db.selectFrom('notifications').selectAll().where('id', 'in', items.map((i) => i.notification.id)).orderBy('id').execute();
      // A notification with one recipient names it; the others list theirs in notification_recipients.
      assert.deepEqual(ns, items.map((i, n) => ({ ...i.notification, recipient_id: n === 0 ? null : r })));
      const listed = await store.db.selectFrom('notification_recipients').selectAll().where('notification_id', 'in', items.map((i) => i.notification.id)).orderBy('recipient_id').execute();
      assert.deepEqual(listed, [r, `${r}_2`].map((recipient_id) => ({ workspace_id: WS, recipient_id, notification_id: items[0]!.notification.id })));
      const ds = await store.db.selectFrom('deliveries').selectAll().where('channel', '=', ch).orderBy('id').execute();
      const noSuccess = { success_attempt_id: null, success_attempt: null, success_started_at: null, success_duration_ms: null, success_http_status: null, success_smtp_reply: null, success_response: null };
      assert.deepEqual(ds, items.flatMap((i) => i.deliveries.map((d) => ({ ...d, status_detail: null, digest_id: null, ...noSuccess }))));
      const idem = await store.db.selectFrom('idempotency_keys').selectAll().where('key', '=', items[1]!.idempotency!.key).execute();
      assert.deepEqual(idem, [{
        workspace_id: WS, key: items[1]!.idempotency!.key, request_hash: items[1]!.idempotency!.requestHash,
        notification_id: items[1]!.notification.id, response: items[1]!.idempotency!.response,
        created_at: items[1]!.notification.created_at, expires_at: items[1]!.idempotency!.expiresAt,
      }]);
      assert.deepEqual(await store.acceptBatch([]), []);
    });

    it('acceptBatch stores text as sent: quotes, backslashes, escapes as text, JSON in JSON, astral characters; a lone surrogate becomes U+FFFD', async () => {
      const ch = uniq('ch');
      const hostile = [
        'plain', '"quoted" \'single\'', 'back\\slash \\\\ double', '\\ud800 is text, not an escape', '\\\\\\ud83d odd run', '{"json": [1, "two"]}',
        'tab\tnew\nline\r \u0001 \u001f \u007f controls', 'emoji 😀 and 한국어 and \u2028\u2029', '',
      ];
      const items = hostile.map((text, n) => {
        const it = item(ch, ['r']);
        it.notification.title = text;
        it.notification.body = `${n}: ${text}`;
        it.notification.data = JSON.stringify({ text, lone: 'a\ud800b' });
        return it;
      });
      const lone = item(ch, ['r']);
      lone.notification.title = 'a\ud800b\udc00c\ud83d\ude00d';
      items.push(lone);
      assert.deepEqual(await store.acceptBatch(items), items.map(() => 'ok'));
      const rows = await store.db.selectFrom('notifications').select(['id', 'title', 'body', 'data']).where('id', 'in', items.map((i) => i.notification.id)).execute();
      const byId = new Map(rows.map((r) => [r.id, r]));
      hostile.forEach((text, n) => {
        const row = byId.get(items[n]!.notification.id)!;
        assert.equal(row.title, text);
        assert.equal(row.body, `${n}: ${text}`);
        assert.equal(row.data, items[n]!.notification.data, 'JSON text with its own escapes is stored verbatim');
      });
      assert.equal(byId.get(lone.notification.id)!.title, 'a\ufffdb\ufffdc\ud83d\ude00d');
    });

    it('acceptBatch: an item whose key is taken writes nothing, the rest of the batch commits', async () => {
      const ch = uniq('ch');
      const [k1, k2, k3] = [uniq('k'), uniq('k'), uniq('k')];
      const first = item(ch, ['r'], { key: k1 });
      assert.deepEqual(await store.acceptBatch([first]), ['ok']);

      // Taken by an earlier batch; new key; no key; the same key twice in one batch (first wins).
      const batch = [item(ch, ['r'], { key: k1 }), item(ch, ['r'], { key: k2 }), item(ch, ['r']), item(ch, ['r'], { key: k3 }), item(ch, ['r'], { key: k3 })];
      assert.deepEqual(await store.acceptBatch(batch), ['idempotency_conflict', 'ok', 'ok', 'ok', 'idempotency_conflict']);

      const written = new Set((await store.db.selectFrom('notifications').select('id').where('id', 'in', batch.map((i) => i.notification.id)).execute()).map((r) => r.id));
      assert.deepEqual(batch.map((i) => written.has(i.notification.id)), [false, true, true, true, false]);
      const dCount = await store.db.selectFrom('deliveries').select('notification_id').where('notification_id', 'in', [batch[0]!.notification.id, batch[4]!.notification.id]).execute();
      assert.deepEqual(dCount, []);
      const owners = await store.db.selectFrom('idempotency_keys').select(['key', 'notification_id']).where('key', 'in', [k1, k3]).orderBy('key').execute();
      assert.deepEqual(owners, [{ key: k1, notification_id: first.notification.id }, { key: k3, notification_id: batch[3]!.notification.id }].sort((a, b) => (a.key < b.key ? -1 : 1)));
    });

    it('acceptBatch: concurrent calls each get their own outcomes, also when the store merges them into one transaction', async () => {
      const ch = uniq('ch');
      const shared = uniq('k');
      // Sent without waiting, so the SQLite writer thread finds several batches queued and merges
      // them; two calls race for the same idempotency key.
      const calls = [
        [item(ch, ['r']), item(ch, ['r'], { key: shared })],
        [item(ch, ['r', 'r2'])],
        [item(ch, ['r'], { key: shared }), item(ch, ['r'], { key: uniq('k') }), item(ch, ['r'])],
        [],
        [item(ch, ['r'], { skip: true })],
      ];
      const outcomes = await Promise.all(calls.map((items) => store.acceptBatch(items)));
      assert.deepEqual(outcomes.map((o) => o.length), calls.map((c) => c.length));
      const sharedOutcomes = [outcomes[0]![1], outcomes[2]![0]].sort();
      assert.deepEqual(sharedOutcomes, ['idempotency_conflict', 'ok']);
      const others = outcomes.flat().filter((_, i) => ![1, 3].includes(i));
      assert.ok(others.every((o) => o === 'ok'), JSON.stringify(outcomes));
      const all = calls.flat();
      const written = new Set((await store.db.selectFrom('notifications').select('id').where('id', 'in', all.map((i) => i.notification.id)).execute()).map((r) => r.id));
      assert.deepEqual(all.map((i) => written.has(i.notification.id)), outcomes.flat().map((o) => o === 'ok'));
      const deliveries = await store.db.selectFrom('deliveries').select('id').where('channel', '=', ch).execute();
      assert.equal(deliveries.length, all.filter((_, i) => outcomes.flat()[i] === 'ok').reduce((n, it) => n + it.deliveries.length, 0));
    });

    it('acceptBatch: dedupe keys are held by one notification per recipient; a conflicting item writes nothing', async () => {
      const ch = uniq('ch');
      const [ra, rb] = [uniq('r'), uniq('r')];
      const key = uniq('dk');
      const later = Date.now() + 60_000;
      const deduped = (rs: string[], k = key, expiresAt = later, idem?: string) => {
        const it = item(ch, rs, idem ? { key: idem } : {});
        it.dedupe = { key: k, recipients: rs, expiresAt };
        return it;
      };
      const first = deduped([ra]);
      // Same key and recipient twice in one batch (first wins, the loser's idempotency key is not
      // taken); another recipient; another key.
      const idem = uniq('k');
      const batch = [first, deduped([ra, rb], key, later, idem), deduped([rb]), deduped([ra], uniq('dk'))];
      assert.deepEqual(await store.acceptBatch(batch), ['ok', 'dedupe_conflict', 'ok', 'ok']);
      // Held by an earlier batch: conflict, and nothing of the item is written, not even its other keys.
      const again = deduped([uniq('r'), ra], key, later, idem);
      assert.deepEqual(await store.acceptBatch([again]), ['dedupe_conflict']);
      const ids = [...batch, again].map((i) => i.notification.id);
      const written = new Set((await store.db.selectFrom('notifications').select('id').where('id', 'in', ids).execute()).map((r) => r.id));
      assert.deepEqual(ids.map((id) => written.has(id)), [true, false, true, true, false]);
      const holders = await store.db.selectFrom('dedupe_keys').select(['recipient_id', 'notification_id']).where('key', '=', key).orderBy('recipient_id').execute();
      assert.deepEqual(holders, [{ recipient_id: ra, notification_id: first.notification.id }, { recipient_id: rb, notification_id: batch[2]!.notification.id }].sort((a, b) => (a.recipient_id < b.recipient_id ? -1 : 1)));
      assert.deepEqual(await store.db.selectFrom('idempotency_keys').select('key').where('key', '=', idem).execute(), [], 'a loser gives its idempotency key back');
      // An expired key is taken over.
      const expiring = uniq('dk');
      assert.deepEqual(await store.acceptBatch([deduped([ra], expiring, Date.now() - 1)]), ['ok']);
      const takeover = deduped([ra], expiring);
      assert.deepEqual(await store.acceptBatch([takeover]), ['ok']);
      const row = await store.db.selectFrom('dedupe_keys').select('notification_id').where('key', '=', expiring).executeTakeFirstOrThrow();
      assert.equal(row.notification_id, takeover.notification.id);
    });

    it('acceptBatch: an expired idempotency record is replaced', async () => {
      const ch = uniq('ch');
      const key = uniq('k');
      const t = Date.now();
      const old = item(ch, ['r'], { key, createdAt: t - 1000, expiresAt: t });
      const again = item(ch, ['r'], { key, createdAt: t });
      assert.deepEqual(await store.acceptBatch([old]), ['ok']);
      assert.deepEqual(await store.acceptBatch([again]), ['ok']);
      const rec = await store.db.selectFrom('idempotency_keys').selectAll().where('key', '=', key).executeTakeFirstOrThrow();
      assert.equal(rec.notification_id, again.notification.id);
      assert.equal(rec.expires_at, again.idempotency!.expiresAt);
    });

    it('acceptBatch from two store instances with the same key: exactly one wins', async () => {
      const other = await h.open();
      extra.push(other);
      await other.migrate();
      for (let round = 0; round < 5; round++) {
        const key = uniq('k');
        const a = item(uniq('ch'), ['r'], { key });
        const b = item(uniq('ch'), ['r'], { key });
        const outcomes = (await Promise.all([store.acceptBatch([a]), other.acceptBatch([b])])).flat();
        assert.deepEqual([...outcomes].sort(), ['idempotency_conflict', 'ok']);
        const winner = outcomes[0] === 'ok' ? a : b;
        const rec = await store.db.selectFrom('idempotency_keys').select('notification_id').where('key', '=', key).executeTakeFirstOrThrow();
        assert.equal(rec.notification_id, winner.notification.id);
      }
    });

    it('claim returns due rows oldest first with the joined fields, leases them, and leaves the rest', async () => {
      const ch = uniq('ch');
      const [r1, r2] = [uniq('r'), uniq('r')];
      await addRecipients(recipient(r1), recipient(r2));
      const t = Date.now();
      const items = [
        item(ch, [r1], { runAt: t - 1000, createdAt: t - 5000 }),
        item(ch, [r2], { runAt: t - 3000, createdAt: t - 5000 }),
        item(ch, [r1], { runAt: t - 2000, createdAt: t - 5000 }),
        item(ch, [r2], { runAt: t + 60_000 }), // not due
        item(ch, [r1], { runAt: t - 9000, skip: true }), // not claimable
        item(uniq('ch'), [r1], { runAt: t - 9000 }), // another channel
      ];
      await store.acceptBatch(items);
      const owner = uniq('owner');

      const firstTwo = await store.claim(ch, owner, 2, t, 120_000);
      assert.deepEqual(firstTwo.map((c) => c.id), [items[1]!.deliveries[0]!.id, items[2]!.deliveries[0]!.id]);
      const rest = await store.claim(ch, owner, 10, t, 120_000);
      assert.deepEqual(rest.map((c) => c.id), [items[0]!.deliveries[0]!.id]);
      assert.deepEqual(await store.claim(ch, owner, 10, t, 120_000), []);

      const n = items[1]!.notification;
      const rr = recipient(r2);
      const got = firstTwo[0]!;
      assert.deepEqual({ ...got }, {
        id: items[1]!.deliveries[0]!.id, workspace_id: WS, notification_id: n.id, recipient_id: r2, channel: ch, device_id: null, attempts: 1, content: null, digest_id: null,
        kind: n.kind, title: n.title, body: n.body, data: n.data, notification_created_at: n.created_at,
        delivery_count: 1, channel_options: null, fallback: 0, routing: 'all',
        recipient_exists: got.recipient_exists, name: rr.name, email: rr.email, phone: rr.phone, locale: rr.locale, timezone: rr.timezone,
        webhook_url: rr.webhook_url, webhook_secret: rr.webhook_secret, webhook_disabled_at: null,
        pushover_user_key: null, pushover_device: null, slack_webhook_url: null, discord_webhook_url: null, kakao_phone: null, address_disabled: null,
        device_platform: null, device_token: null, device_app: null, device_disabled_at: null,
      });
      assert.equal(typeof got.recipient_exists, 'number');

      const row = await delivery(got.id);
      assert.equal(row.status, 'sending');
      assert.equal(row.attempts, 1);
      assert.equal(row.lease_owner, owner);
      assert.equal(row.run_at, t + 120_000);
      assert.equal(row.updated_at, t);

      // The future row falls due at its run_at, not before.
      assert.deepEqual(await store.claim(ch, owner, 10, t + 59_999, 30_000), []);
      assert.deepEqual((await store.claim(ch, owner, 10, t + 60_000, 30_000)).map((c) => c.id), [items[3]!.deliveries[0]!.id]);
      assert.equal((await delivery(items[4]!.deliveries[0]!.id)).status, 'skipped');
      assert.equal((await delivery(items[5]!.deliveries[0]!.id)).status, 'pending');
      assert.deepEqual(await store.claim(ch, owner, 0, t + 60_000, 30_000), []);
    });

    it('claim: concurrent claimers never get the same row, and together get all of them', async () => {
      const ch = uniq('ch');
      const t = Date.now();
      const items = Array.from({ length: 100 }, (_, i) => item(ch, ['a', 'b', 'c', 'd', 'e'], { runAt: t - 1000 + i }));
      await store.acceptBatch(items);
      const other = await h.open();
      extra.push(other);
      await other.migrate();

      const byOwner = new Map<string, string[]>();
      await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          const owner = `claimer-${ch}-${i}`;
          const s = i % 2 === 0 ? store : other;
          const mine: string[] = [];
          for (;;) {
            const got = await s.claim(ch, owner, 7, t, 60_000);
            if (got.length === 0) break;
            for (const c of got) {
              assert.equal(c.attempts, 1);
              mine.push(c.id);
            }
          }
          byOwner.set(owner, mine);
        }),
      );
      const all = [...byOwner.values()].flat();
      assert.equal(new Set(all).size, all.length, 'a delivery was claimed twice');
      assert.deepEqual([...all].sort(), items.flatMap((i) => i.deliveries.map((d) => d.id)).sort());
      const rows = await store.db.selectFrom('deliveries').select(['id', 'status', 'attempts', 'lease_owner']).where('channel', '=', ch).execute();
      const ownerOf = new Map([...byOwner].flatMap(([o, ids]) => ids.map((id) => [id, o] as const)));
      for (const r of rows) assert.deepEqual(r, { id: r.id, status: 'sending', attempts: 1, lease_owner: ownerOf.get(r.id) });
    });

    it('claim: an expired lease is claimed again, and the old owner\'s settle is then ignored', async () => {
      const ch = uniq('ch');
      const t = Date.now();
      const it0 = item(ch, ['r'], { runAt: t - 10 });
      await store.acceptBatch([it0]);
      const id = it0.deliveries[0]!.id;
      const [a, b] = [uniq('owner'), uniq('owner')];

      assert.deepEqual((await store.claim(ch, a, 5, t, 1000)).map((c) => [c.id, c.attempts]), [[id, 1]]);
      assert.deepEqual(await store.claim(ch, b, 5, t + 999, 1000), []);
      assert.deepEqual((await store.claim(ch, b, 5, t + 1000, 1000)).map((c) => [c.id, c.attempts]), [[id, 2]]);
      assert.equal((await delivery(id)).lease_owner, b);

      assert.equal(await store.settle([settleItem(id, a, 1, 'sent', { providerMessageId: 'from-a' })]), 0);
      const still = await delivery(id);
      assert.deepEqual([still.status, still.lease_owner, still.provider_message_id], ['sending', b, null]);
      assert.equal(await notificationStatus(it0.notification.id), 'accepted');

      assert.equal(await store.settle([settleItem(id, b, 2, 'sent', { providerMessageId: 'from-b' })]), 1);
      const done = await delivery(id);
      assert.deepEqual([done.status, done.lease_owner, done.provider_message_id], ['sent', null, 'from-b']);
      assert.equal(await notificationStatus(it0.notification.id), 'sent');
      // Both attempts happened, so both are logged.
      const log = await store.db.selectFrom('attempt_log').select('attempt').where('delivery_id', '=', id).orderBy('attempt').execute();
      assert.deepEqual(log, [{ attempt: 1 }, { attempt: 2 }]);
    });

    it('settle moves each delivery, appends its attempt, and refreshes the notification\'s status', async () => {
      const ch = uniq('ch');
      const t = Date.now();
      const it0 = item(ch, ['r0', 'r1', 'r2', 'r3'], { runAt: t - 10 });
      await store.acceptBatch([it0]);
      const owner = uniq('owner');
      const claimed = await store.claim(ch, owner, 10, t, 60_000);
      assert.equal(claimed.length, 4);
      const [d0, d1, d2, d3] = it0.deliveries.map((d) => d.id) as [string, string, string, string];
      assert.equal(await notificationStatus(it0.notification.id), 'accepted');

      const before = Date.now();
      const moved = await store.settle([
        settleItem(d0, owner, 1, 'sent', { providerMessageId: 'pm-0' }),
        settleItem(d1, owner, 1, 'failed', { runAt: t + 5000, errorClass: 'http_5xx', error: 'busy' }),
        settleItem(d2, owner, 1, 'exhausted', { errorClass: 'http_4xx', error: 'gone' }),
        settleItem(d3, owner, 1, 'skipped', { reason: 'no_address', errorClass: 'no_address', error: 'no email' }),
      ]);
      const after = Date.now();
      assert.equal(moved, 4);

      const rows = new Map((await store.db.selectFrom('deliveries').selectAll().where('channel', '=', ch).execute()).map((r) => [r.id, r]));
      const pick = (id: string) => {
        const r = rows.get(id)!;
        assert.ok(r.updated_at >= before && r.updated_at <= after, 'updated_at is the settle time');
        if (r.completed_at !== null) assert.equal(r.completed_at, r.updated_at);
        return [r.status, r.lease_owner, r.run_at, r.attempts, r.reason, r.error_class, r.last_error, r.provider_message_id, r.completed_at === null];
      };
      assert.deepEqual(pick(d0), ['sent', null, t + 60_000, 1, null, null, null, 'pm-0', false]);
      assert.deepEqual(pick(d1), ['failed', null, t + 5000, 1, null, 'http_5xx', 'busy', null, true]);
      assert.deepEqual(pick(d2), ['exhausted', null, t + 60_000, 1, null, 'http_4xx', 'gone', null, false]);
      assert.deepEqual(pick(d3), ['skipped', null, t + 60_000, 1, 'no_address', 'no_address', 'no email', null, false]);

      const log = await store.db.selectFrom('attempt_log').selectAll().where('delivery_id', 'in', [d0, d1, d2, d3]).execute();
      assert.equal(log.length, 4);
      const a0 = log.find((l) => l.delivery_id === d0)!;
      const s0 = settleItem(d0, owner, 1, 'sent');
      assert.match(a0.id, /^att_/);
      assert.deepEqual({ ...a0, id: undefined }, { ...s0.attempt, id: undefined, started_at: a0.started_at });
      assert.equal(typeof a0.started_at, 'number');
      assert.equal(await notificationStatus(it0.notification.id), 'in_progress');

      // The retry falls due, succeeds: sent + exhausted + skipped -> partial.
      assert.deepEqual(await store.claim(ch, owner, 10, t + 4999, 60_000), []);
      const retry = await store.claim(ch, owner, 10, t + 5000, 60_000);
      assert.deepEqual(retry.map((c) => [c.id, c.attempts]), [[d1, 2]]);
      assert.equal(await store.settle([settleItem(d1, owner, 2, 'sent')]), 1);
      assert.equal(await notificationStatus(it0.notification.id), 'partial');
      assert.equal(await store.settle([]), 0);
    });

    it('accept, claim and settle keep awkward text exactly (quotes, backslashes, braces, commas, "NULL", empty, unicode)', async () => {
      const ch = uniq('ch');
      const t = Date.now();
      const odd = ['say "hi"', 'back\\slash \\"', '{a,b}', 'NULL', '', 'ünïcödé ✓ \u{1F600}', 'tab\tnew\nline', "it's"];
      const items = odd.map((title, i) => {
        const it = item(ch, [`r${i}`], { runAt: t - 10 });
        it.notification.title = title;
        it.notification.body = odd[(i + 1) % odd.length]!;
        it.notification.metadata = i % 2 ? odd[i]! : null;
        return it;
      });
      await store.acceptBatch(items);
      const owner = uniq('owner "\\');
      const claimed = await store.claim(ch, owner, 100, t, 60_000);
      assert.deepEqual(
        claimed.map((c) => [c.title, c.body]).sort(),
        items.map((it) => [it.notification.title, it.notification.body]).sort(),
      );
      const moved = await store.settle(
        claimed.map((c, i) => settleItem(c.id, owner, 1, 'failed', { runAt: t + 1000, errorClass: odd[i]!, error: odd[(i + 2) % odd.length]!, deliveryCount: 1 })),
      );
      assert.equal(moved, odd.length);
      for (const [i, c] of claimed.entries()) {
        const d = await delivery(c.id);
        assert.deepEqual([d.status, d.error_class, d.last_error], ['failed', odd[i], odd[(i + 2) % odd.length]]);
      }
      const meta = await store.db.selectFrom('notifications').select(['id', 'metadata']).where('id', 'in', items.map((it) => it.notification.id)).execute();
      assert.deepEqual(new Map(meta.map((m) => [m.id, m.metadata])), new Map(items.map((it) => [it.notification.id, it.notification.metadata])));
    });

    it('settle of a single-delivery notification (deliveryCount 1) sets its status from that outcome', async () => {
      const ch = uniq('ch');
      const t = Date.now();
      const items = [item(ch, ['r0'], { runAt: t - 10 }), item(ch, ['r1'], { runAt: t - 9 }), item(ch, ['r2'], { runAt: t - 8 })];
      await store.acceptBatch(items);
      const owner = uniq('owner');
      const [c0, c1, c2] = (await store.claim(ch, owner, 10, t, 60_000)) as [ClaimedDelivery, ClaimedDelivery, ClaimedDelivery];
      assert.deepEqual([c0.delivery_count, c1.delivery_count, c2.delivery_count], [1, 1, 1]);
      await store.settle([
        settleItem(c0.id, owner, 1, 'sent', { deliveryCount: 1 }),
        settleItem(c1.id, owner, 1, 'failed', { deliveryCount: 1, runAt: t + 1000 }),
        settleItem(c2.id, owner, 1, 'exhausted', { deliveryCount: 1 }),
      ]);
      assert.deepEqual(
        [await notificationStatus(items[0]!.notification.id), await notificationStatus(items[1]!.notification.id), await notificationStatus(items[2]!.notification.id)],
        ['sent', 'in_progress', 'failed'],
      );
      // A settle ignored by the owner guard changes nothing.
      await store.settle([settleItem(c0.id, owner, 1, 'exhausted', { deliveryCount: 1 })]);
      assert.equal(await notificationStatus(items[0]!.notification.id), 'sent');
    });

    it('settle: the same delivery twice in one batch moves it once (the first item), logs both attempts', async () => {
      const ch = uniq('ch');
      const it0 = item(ch, ['r']);
      await store.acceptBatch([it0]);
      const owner = uniq('owner');
      const [c] = await store.claim(ch, owner, 1, Date.now(), 60_000);
      const id = c!.id;
      assert.equal(await store.settle([settleItem(id, owner, 1, 'exhausted'), settleItem(id, owner, 1, 'sent')]), 1);
      assert.equal((await delivery(id)).status, 'exhausted');
      assert.equal((await store.db.selectFrom('attempt_log').select('id').where('delivery_id', '=', id).execute()).length, 2);
      assert.equal(await notificationStatus(it0.notification.id), 'failed');
    });

    it('settle: a success that moves its delivery is kept on the delivery row, every other attempt in delivery_attempts; attempt_log shows them all alike', async () => {
      const ch = uniq('ch');
      const t = Date.now();
      const it0 = item(ch, ['r0', 'r1', 'r2'], { runAt: t - 10 });
      await store.acceptBatch([it0]);
      const [d0, d1, d2] = it0.deliveries.map((d) => d.id) as [string, string, string];
      const [a, b] = [uniq('owner'), uniq('owner')];
      assert.equal((await store.claim(ch, a, 10, t, 1000)).length, 3);
      // d0 fails once, then succeeds; d1 fails for good; d2's lease expires and is claimed by b.
      const fail0 = settleItem(d0, a, 1, 'failed', { runAt: t + 500 });
      assert.equal(await store.settle([fail0, settleItem(d1, a, 1, 'exhausted')]), 2);
      assert.deepEqual((await store.claim(ch, b, 10, t + 1000, 60_000)).map((c) => c.id).sort(), [d0, d2].sort());
      // a's late success of d2 no longer applies: it is still logged, as a row.
      const stale = settleItem(d2, a, 1, 'sent', { providerMessageId: 'late' });
      assert.equal(await store.settle([stale]), 0);
      const ok0 = settleItem(d0, b, 2, 'sent', { providerMessageId: 'pm-0' });
      const ok2 = settleItem(d2, b, 2, 'sent');
      // A second item for d2 in the same batch does not move it; its success is logged as a row.
      const dup2 = settleItem(d2, b, 2, 'sent');
      assert.equal(await store.settle([ok0, ok2, dup2]), 2);

      const rows = await store.db.selectFrom('delivery_attempts').select(['delivery_id', 'attempt', 'outcome']).where('delivery_id', 'in', [d0, d1, d2]).orderBy('id').execute();
      assert.deepEqual(rows, [
        { delivery_id: d0, attempt: 1, outcome: 'retryable' },
        { delivery_id: d1, attempt: 1, outcome: 'permanent' },
        { delivery_id: d2, attempt: 1, outcome: 'success' },
        { delivery_id: d2, attempt: 2, outcome: 'success' },
      ]);
      const r0 = await delivery(d0);
      assert.match(r0.success_attempt_id!, /^att_/);
      assert.deepEqual(
        [r0.success_attempt, r0.success_started_at, r0.success_duration_ms, r0.success_http_status, r0.success_smtp_reply, r0.success_response],
        [2, ok0.attempt.started_at, 10, 200, null, 'resp'],
      );
      assert.equal((await delivery(d1)).success_attempt_id, null);
      assert.match((await delivery(d2)).success_attempt_id!, /^att_/);

      const log = await store.db.selectFrom('attempt_log').selectAll().where('delivery_id', 'in', [d0, d1, d2]).orderBy('id').execute();
      const strip = (l: (typeof log)[number]) => ({ ...l, id: undefined });
      const expect = (it: SettleItem) => ({ ...it.attempt, id: undefined });
      assert.ok(log.every((l) => /^att_/.test(l.id)));
      // In the order the attempts were recorded (ids are time-ordered).
      assert.deepEqual(log.map(strip), [expect(fail0), expect(settleItem(d1, a, 1, 'exhausted')), expect(stale), expect(ok0), expect(ok2), expect(dup2)].map((e, i) => ({ ...e, started_at: log[i]!.started_at })));
      assert.deepEqual(log.filter((l) => l.delivery_id === d0).map((l) => l.started_at), [fail0.attempt.started_at, ok0.attempt.started_at]);
    });

    it('settle: concurrent settles of one notification\'s deliveries leave its status right', async () => {
      const other = await h.open();
      extra.push(other);
      await other.migrate();
      for (let round = 0; round < 5; round++) {
        const ch = uniq('ch');
        const it0 = item(ch, Array.from({ length: 16 }, (_, i) => `r${i}`));
        await store.acceptBatch([it0]);
        const claims = await Promise.all(it0.deliveries.map((_, i) => (i % 2 ? other : store).claim(ch, `${ch}-owner-${i}`, 1, Date.now(), 60_000)));
        await Promise.all(claims.map(([c], i) => (i % 2 ? store : other).settle([settleItem(c!.id, `${ch}-owner-${i}`, 1, 'sent')])));
        assert.equal(await notificationStatus(it0.notification.id), 'sent');
      }
    });

    it('releaseLeases gives back the owners\' sending rows: pending or failed by attempts, due now, attempt uncounted', async () => {
      const ch = uniq('ch');
      const t = Date.now();
      const it0 = item(ch, ['r0', 'r1', 'r2'], { runAt: t - 10 });
      const otherItem = item(uniq('ch'), ['r'], { runAt: t - 10 });
      await store.acceptBatch([it0, otherItem]);
      const [d0, d1, d2] = it0.deliveries.map((d) => d.id) as [string, string, string];
      const [a, b] = [uniq('owner'), uniq('owner')];

      assert.equal((await store.claim(ch, a, 10, t, 60_000)).length, 3);
      await store.settle([settleItem(d0, a, 1, 'failed', { runAt: t }), settleItem(d2, a, 1, 'sent')]);
      assert.deepEqual((await store.claim(ch, a, 10, t, 60_000)).map((c) => [c.id, c.attempts]), [[d0, 2]]);
      assert.equal((await store.claim(otherItem.deliveries[0]!.channel, b, 10, t, 60_000)).length, 1);

      const owners = await store.leaseOwners();
      assert.ok(owners.includes(a) && owners.includes(b), `${owners}`);
      assert.equal(new Set(owners).size, owners.length, 'leaseOwners is distinct');

      const now = t + 123;
      assert.equal(await store.releaseLeases([a, uniq('nobody')], now), 2);
      const row = async (id: string) => {
        const r = await delivery(id);
        return [r.status, r.attempts, r.run_at, r.lease_owner];
      };
      assert.deepEqual(await row(d0), ['failed', 1, now, null]);
      assert.deepEqual(await row(d1), ['pending', 0, now, null]);
      assert.deepEqual(await row(d2), ['sent', 1, t + 60_000, null]);
      assert.deepEqual(await row(otherItem.deliveries[0]!.id), ['sending', 1, t + 60_000, b]);

      const after = await store.leaseOwners();
      assert.ok(!after.includes(a) && after.includes(b));
      assert.equal(await store.releaseLeases([], now), 0);
      // Released rows are due again.
      assert.deepEqual((await store.claim(ch, b, 10, now, 60_000)).map((c) => [c.id, c.attempts]).sort(), [[d0, 2], [d1, 1]].sort());
    });

    it('claim of a delivery whose recipient was deleted: recipient_exists and the recipient fields are null', async () => {
      const ch = uniq('ch');
      const r = uniq('r');
      await addRecipients(recipient(r));
      const it0 = item(ch, [r]);
      await store.acceptBatch([it0]);
      await store.db.deleteFrom('recipients').where('workspace_id', '=', WS).where('id', '=', r).execute();
      const [c] = await store.claim(ch, uniq('owner'), 1, Date.now(), 60_000);
      assert.deepEqual(
        [c!.id, c!.recipient_id, c!.title, c!.recipient_exists, c!.name, c!.email, c!.locale, c!.webhook_url, c!.webhook_secret],
        [it0.deliveries[0]!.id, r, it0.notification.title, null, null, null, null, null, null],
      );
    });

    it('refreshNotificationStatus recomputes the status from the deliveries', async () => {
      const ch = uniq('ch');
      const [x, y] = [item(ch, ['r0', 'r1']), item(ch, ['r0', 'r1'])];
      await store.acceptBatch([x, y]);
      await store.db.updateTable('deliveries').set({ status: 'discarded' }).where('notification_id', '=', x.notification.id).execute();
      await store.db.updateTable('deliveries').set({ status: 'skipped' }).where('id', '=', y.deliveries[0]!.id).execute();
      await store.db.updateTable('deliveries').set({ status: 'sent' }).where('id', '=', y.deliveries[1]!.id).execute();
      await store.refreshNotificationStatus([x.notification.id, y.notification.id, 'ntf_missing']);
      assert.equal(await notificationStatus(x.notification.id), 'failed');
      assert.equal(await notificationStatus(y.notification.id), 'sent');
      await store.refreshNotificationStatus([]);
    });

    it(dialect === 'postgres' ? 'listen wakes on commits of due work' : 'has no listen (one process: woken in-process)', async () => {
      if (dialect === 'sqlite') {
        assert.equal(store.listen, undefined);
        return;
      }
      const woken: string[] = [];
      const stop = await store.listen!((c) => woken.push(c));
      try {
        const [skipOnly, due, released] = [uniq('ch'), uniq('ch'), uniq('ch')];
        await store.acceptBatch([item(skipOnly, ['r'], { skip: true })]);
        await store.acceptBatch([item(due, ['r']), item(due, ['r2'], { key: uniq('k') })]);
        await waitUntil(() => woken.includes(due), 'wake-up for the accepted channel');
        assert.ok(!woken.includes(skipOnly), 'a channel with only skipped deliveries was woken');
        assert.equal(woken.filter((c) => c === due).length, 1, 'one wake-up per channel and commit');

        await store.acceptBatch([item(released, ['r'])]);
        const owner = uniq('owner');
        await store.claim(released, owner, 10, Date.now(), 60_000);
        await waitUntil(() => woken.includes(released), 'wake-up for the accept');
        woken.length = 0;
        await store.releaseLeases([owner], Date.now());
        await waitUntil(() => woken.includes(released), 'wake-up for released leases');
      } finally {
        await stop();
      }
      const count = woken.length;
      await store.acceptBatch([item(uniq('ch'), ['r'])]);
      await new Promise((r) => setTimeout(r, 200));
      assert.equal(woken.length, count, 'woken after stop');
    });
  });
}

describe('PostgreSQL specifics', () => {
  let s: TestSchema;
  before(async () => {
    s = await freshSchema();
  });
  after(() => s?.drop());

  it('plans for SSDs (random_page_cost 1.1) unless the URL sets its own, keeping the schema', async () => {
    const setting = async (store: PostgresAdapter) => {
      const r = await sql<{ cost: string; path: string }>`SELECT current_setting('random_page_cost') AS cost, current_setting('search_path') AS path`.execute(store.db);
      return r.rows[0]!;
    };
    const plain = new PostgresAdapter(s.baseUrl, { schema: s.schema });
    const own = new PostgresAdapter(`${s.baseUrl}${s.baseUrl.includes('?') ? '&' : '?'}options=${encodeURIComponent('-c random_page_cost=2')}`, { schema: s.schema });
    try {
      assert.deepEqual(await setting(plain), { cost: '1.1', path: s.schema });
      assert.deepEqual(await setting(own), { cost: '2', path: s.schema });
    } finally {
      await plain.close();
      await own.close();
    }
  });

  it('migrates once when several processes start together, into a schema that does not exist yet', async () => {
    const schema = uniq('herald_t_concurrent');
    const stores = Array.from({ length: 6 }, () => new PostgresAdapter(s.baseUrl, { schema, poolSize: 2 }));
    try {
      await Promise.all(stores.map((st) => st.migrate()));
      const { rows } = await withClient((c) => c.query(`SELECT name FROM ${schema}.kysely_migration ORDER BY name`));
      assert.deepEqual(rows, MIGRATION_NAMES.map((name) => ({ name })), 'each migration recorded exactly once');
      for (const st of stores) assert.equal(await st.appliedMigration(), LATEST_MIGRATION);
      const tables = await withClient((c) => c.query(`SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY 1`, [schema]));
      assert.ok(tables.rows.some((r) => r.table_name === 'deliveries'), JSON.stringify(tables.rows));
    } finally {
      await Promise.all(stores.map((st) => st.close()));
      await withClient((c) => c.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`));
    }
  });

  it('uses the search_path of the connection URL when no schema is given', async () => {
    const store = new PostgresAdapter(s.url);
    try {
      await store.migrate();
      assert.equal(await store.appliedMigration(), LATEST_MIGRATION);
      const { rows } = await withClient((c) => c.query(`SELECT count(*)::int AS n FROM ${s.schema}.kysely_migration`));
      assert.deepEqual(rows, [{ n: MIGRATION_NAMES.length }]);
    } finally {
      await store.close();
    }
  });

  it('rejects a schema name it could not put in search_path safely', () => {
    assert.throws(() => new PostgresAdapter(s.baseUrl, { schema: 'x; DROP' }), /invalid schema name/);
    assert.throws(() => new PostgresAdapter(s.baseUrl, { schema: 'Upper' }), /invalid schema name/);
  });

  it('listen reconnects after its connection is killed, and close() stops it', async () => {
    const store = new PostgresAdapter(s.url);
    await store.migrate();
    const woken: string[] = [];
    await store.listen((c) => woken.push(c));
    try {
      const killed = await withClient(async (c) => {
        const { rows } = await c.query(`SELECT pg_terminate_backend(pid) AS ok, pid FROM pg_stat_activity WHERE application_name = 'herald-listen'`);
        return rows.map((r) => r.pid as number);
      });
      assert.ok(killed.length >= 1);
      await waitUntil(async () => {
        const { rows } = await withClient((c) => c.query(`SELECT pid FROM pg_stat_activity WHERE application_name = 'herald-listen' AND query = 'LISTEN herald_deliveries'`));
        return rows.some((r) => !killed.includes(r.pid));
      }, 'a new listening connection');
      const ch = uniq('ch');
      await store.acceptBatch([item(ch, ['r'])]);
      await waitUntil(() => woken.includes(ch), 'wake-up after reconnecting');
    } finally {
      await store.close();
    }
    const ch = uniq('ch');
    const other = new PostgresAdapter(s.url);
    try {
      await other.acceptBatch([item(ch, ['r'])]);
      await new Promise((r) => setTimeout(r, 200));
      assert.ok(!woken.includes(ch), 'woken after close');
    } finally {
      await other.close();
    }
  });
});

async function waitUntil(fn: () => boolean | Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await fn())) {
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
