// The policy store modules (kinds, preferences, templates, topics, settings) against SQLite (a
// temporary file) and PostgreSQL (a fresh schema). Tests share one store per dialect and keep out
// of each other's way with workspaces of their own.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { InsertQueryNode, type KyselyPlugin, type RootOperationNode } from 'kysely';
import type { StoreAdapter } from '../../src/store/adapter.ts';
import { DEFAULT_KINDS, DEFAULT_KIND_NAMES, type KindPolicy } from '../../src/domain/kinds.ts';
import { ensureDefaultKinds, getKind, getKinds, listKinds, putKind } from '../../src/kinds/store.ts';
import { LATEST_MIGRATION, MIGRATION_NAMES } from '../../src/store/migrations/index.ts';
import { PostgresAdapter } from '../../src/store/postgres.ts';
import { deletePreferences, getPreferences, getPreferencesFor, putPreferences } from '../../src/preferences/store.ts';
import { getSettings, putSettings } from '../../src/settings/store.ts';
import { SqliteAdapter } from '../../src/store/sqlite.ts';
import { deleteTemplate, getTemplate, listTemplates, putTemplate, type TemplateVariant } from '../../src/templates/store.ts';
import {
  addMembers,
  countMembers,
  deleteTopic,
  existingRecipientIds,
  getTopic,
  listMembers,
  listTopics,
  MEMBER_CHUNK,
  memberIdsAfter,
  removeMembers,
  removeRecipientFromTopics,
  upsertTopic,
} from '../../src/topics/store.ts';
import { DEFAULT_WORKSPACE_ID, ensureDefaultWorkspace } from '../../src/store/workspaces.ts';
import { tempDir } from '../helpers/herald.ts';
import { freshSchema } from '../helpers/postgres.ts';

const ws = () => `ws_${randomBytes(5).toString('hex')}`;

/** Counts INSERT statements and the rows each one carries. */
class InsertCounter implements KyselyPlugin {
  rowsPerInsert: number[] = [];
  transformQuery({ node }: { node: RootOperationNode }): RootOperationNode {
    if (InsertQueryNode.is(node)) {
      const values = node.values as { values?: readonly unknown[] } | undefined;
      this.rowsPerInsert.push(values?.values?.length ?? 0);
    }
    return node;
  }
  async transformResult<T>({ result }: { result: T }): Promise<T> {
    return result;
  }
}

for (const dialect of ['sqlite', 'postgres'] as const) {
  describe(`policy store: ${dialect}`, () => {
    let store: StoreAdapter;
    let cleanup: () => Promise<void>;

    before(async () => {
      if (dialect === 'sqlite') {
        const dir = tempDir('herald-policy-');
        store = new SqliteAdapter(join(dir, 'herald.db'));
        cleanup = async () => rmSync(dir, { recursive: true, force: true });
      } else {
        const s = await freshSchema();
        store = new PostgresAdapter(s.baseUrl, { schema: s.schema, poolSize: 8 });
        cleanup = () => s.drop();
      }
      await store.migrate();
    });
    after(async () => {
      await store?.close();
      await cleanup?.();
    });

    it('migrates with 0006_policy', async () => {
      assert.ok(MIGRATION_NAMES.includes('0006_policy'));
      assert.equal(await store.appliedMigration(), LATEST_MIGRATION);
    });

    describe('kinds', () => {
      it('the default workspace gets the default kinds at set-up, idempotently', async () => {
        await Promise.all([ensureDefaultWorkspace(store.db), ensureDefaultWorkspace(store.db)]);
        await ensureDefaultWorkspace(store.db);
        const rows = await store.db.selectFrom('kinds').select('kind').where('workspace_id', '=', DEFAULT_WORKSPACE_ID).orderBy('kind').execute();
        assert.deepEqual(rows.map((r) => r.kind), ['marketing', 'security', 'transactional']);
      });

      it('any other workspace gets them lazily when kinds are read, with the documented policies', async () => {
        const w = ws();
        assert.equal(await store.db.selectFrom('kinds').select('kind').where('workspace_id', '=', w).executeTakeFirst(), undefined);
        const security = await getKind(store.db, w, 'security');
        assert.equal(security?.mandatory, true);
        assert.equal(security?.quiet_hours, 'ignore');
        const all = await listKinds(store.db, w, { limit: 50 });
        assert.deepEqual(all.map((k) => k.kind), ['marketing', 'security', 'transactional']);
        for (const k of all) {
          const { workspace_id, kind, created_at, updated_at, ...policy } = k;
          assert.equal(workspace_id, w);
          assert.deepEqual(policy, DEFAULT_KINDS[kind], kind);
          assert.equal(typeof created_at, 'number');
          assert.equal(typeof updated_at, 'number');
        }
        assert.deepEqual(all.find((k) => k.kind === 'marketing')!.rate_limits, { '*': { limit: 3, per_ms: 86_400_000 } });
        assert.equal((await getKinds(store.db, ws(), ['transactional', 'nope'])).size, 1);
        assert.equal(await getKind(store.db, w, 'nope'), undefined);
      });

      it('concurrent first reads create each default once', async () => {
        const w = ws();
        await Promise.all([ensureDefaultKinds(store.db, w), ensureDefaultKinds(store.db, w), listKinds(store.db, w, { limit: 10 }), getKind(store.db, w, 'marketing')]);
        const n = await store.db.selectFrom('kinds').select((eb) => eb.fn.countAll<number>().as('n')).where('workspace_id', '=', w).executeTakeFirstOrThrow();
        assert.equal(Number(n.n), DEFAULT_KIND_NAMES.length);
      });

      it('putKind creates and replaces, keeping created_at; JSON columns round-trip; an edited default is left alone', async () => {
        const w = ws();
        const policy: KindPolicy = {
          mandatory: false,
          channels: ['email', 'webhook'],
          quiet_hours: 'drop',
          routing: 'first',
          rate_limits: { email: { limit: 5, per_ms: 60_000 }, '*': { limit: 10, per_ms: 3_600_000 } },
          throttle: 'drop',
          digest: { window_ms: 3_600_000, key: 'thread' },
          blackout: 'fallback',
        };
        const first = await putKind(store.db, w, 'order.shipped', policy, 1000);
        assert.equal(first.created, true);
        const second = await putKind(store.db, w, 'order.shipped', { ...policy, digest: null, channels: null }, 2000);
        assert.equal(second.created, false);
        const read = await getKind(store.db, w, 'order.shipped');
        assert.deepEqual(read, { workspace_id: w, kind: 'order.shipped', ...policy, digest: null, channels: null, created_at: 1000, updated_at: 2000 });

        const edited = await putKind(store.db, w, 'marketing', { ...DEFAULT_KINDS.marketing!, rate_limits: null }, 3000);
        assert.equal(edited.created, false, 'the default existed (created on demand) before the PUT');
        await ensureDefaultKinds(store.db, w);
        assert.equal((await getKind(store.db, w, 'marketing'))!.rate_limits, null);
      });

      it('listKinds pages by name', async () => {
        const w = ws();
        for (const k of ['a1', 'b2', 'c3']) await putKind(store.db, w, k, DEFAULT_KINDS.transactional!);
        const names: string[] = [];
        let after: string | undefined;
        for (;;) {
          const page = await listKinds(store.db, w, { after, limit: 2 });
          if (page.length === 0) break;
          names.push(...page.map((k) => k.kind));
          after = page.at(-1)!.kind;
        }
        assert.deepEqual(names, ['a1', 'b2', 'c3', 'marketing', 'security', 'transactional']);
      });
    });

    describe('preferences', () => {
      it('defaults without a row; put replaces; batch read; delete', async () => {
        const w = ws();
        assert.deepEqual(await getPreferences(store.db, w, 'alice'), { workspace_id: w, recipient_id: 'alice', kinds: {}, quiet_hours: null, updated_at: null });
        await putPreferences(store.db, { workspace_id: w, recipient_id: 'alice', kinds: { marketing: { allowed: false } }, quiet_hours: { start: '22:00', end: '08:00' } }, 1000);
        const saved = await putPreferences(store.db, { workspace_id: w, recipient_id: 'alice', kinds: { transactional: { channels: ['sms', 'email'] } }, quiet_hours: null }, 2000);
        const expected = { workspace_id: w, recipient_id: 'alice', kinds: { transactional: { channels: ['sms', 'email'] } }, quiet_hours: null, updated_at: 2000 };
        assert.deepEqual(saved, expected);
        assert.deepEqual(await getPreferences(store.db, w, 'alice'), expected);
        await putPreferences(store.db, { workspace_id: w, recipient_id: 'bob', kinds: {}, quiet_hours: { start: '23:30', end: '06:00' } }, 3000);
        const ids = ['alice', 'bob', ...Array.from({ length: 600 }, (_, i) => `x${i}`)];
        const many = await getPreferencesFor(store.db, w, ids);
        assert.equal(many.size, ids.length);
        assert.deepEqual(many.get('bob')!.quiet_hours, { start: '23:30', end: '06:00' });
        assert.equal(many.get('x599')!.updated_at, null);
        assert.equal((await getPreferences(store.db, ws(), 'alice')).updated_at, null, 'other workspaces do not see it');
        assert.equal(await deletePreferences(store.db, w, 'alice'), true);
        assert.equal(await deletePreferences(store.db, w, 'alice'), false);
        assert.equal((await getPreferences(store.db, w, 'alice')).updated_at, null);
      });
    });

    describe('templates', () => {
      const v = (title: string): TemplateVariant[] => [{ locale: 'en', channel: null, title, body: 'Hi {{name}}' }, { locale: 'ko-KR', channel: 'sms', title, body: '안녕 {{name}}', subject: 's' }];

      it('each put is the next version; get reads the latest or a given version; list shows latest; delete removes all', async () => {
        const w = ws();
        assert.equal((await putTemplate(store, w, 'welcome', v('one'), 1000)).version, 1);
        assert.equal((await putTemplate(store, w, 'welcome', v('two'), 2000)).version, 2);
        await putTemplate(store, w, 'another', v('x'), 1500);
        assert.deepEqual(await getTemplate(store.db, w, 'welcome'), { workspace_id: w, key: 'welcome', version: 2, variants: v('two'), created_at: 2000 });
        assert.deepEqual((await getTemplate(store.db, w, 'welcome', 1))!.variants, v('one'));
        assert.equal(await getTemplate(store.db, w, 'welcome', 3), undefined);
        assert.equal(await getTemplate(store.db, ws(), 'welcome'), undefined);
        assert.deepEqual(await listTemplates(store.db, w, { limit: 10 }), [
          { key: 'another', latest_version: 1, created_at: 1500, updated_at: 1500 },
          { key: 'welcome', latest_version: 2, created_at: 1000, updated_at: 2000 },
        ]);
        assert.deepEqual((await listTemplates(store.db, w, { after: 'another', limit: 10 })).map((t) => t.key), ['welcome']);
        assert.equal(await deleteTemplate(store.db, w, 'welcome'), true);
        assert.equal(await getTemplate(store.db, w, 'welcome'), undefined);
        assert.equal(await deleteTemplate(store.db, w, 'welcome'), false);
      });

      it('concurrent puts of one key get distinct consecutive versions', async () => {
        const w = ws();
        const made = await Promise.all(Array.from({ length: 12 }, (_, i) => putTemplate(store, w, 'race', v(`t${i}`))));
        assert.deepEqual(made.map((t) => t.version).sort((a, b) => a - b), Array.from({ length: 12 }, (_, i) => i + 1));
        for (const t of made) assert.deepEqual((await getTemplate(store.db, w, 'race', t.version))!.variants, t.variants);
      });
    });

    describe('settings', () => {
      it('defaults without a row; put replaces', async () => {
        const w = ws();
        assert.deepEqual(await getSettings(store.db, w), { workspace_id: w, default_locale: 'en', channel_blackouts: null, updated_at: null });
        await putSettings(store.db, { workspace_id: w, default_locale: 'ko-KR', channel_blackouts: { kakao: { start: '21:00', end: '08:00', timezone: 'Asia/Seoul' } } }, 1000);
        assert.deepEqual(await getSettings(store.db, w), {
          workspace_id: w, default_locale: 'ko-KR', channel_blackouts: { kakao: { start: '21:00', end: '08:00', timezone: 'Asia/Seoul' } }, updated_at: 1000,
        });
        await putSettings(store.db, { workspace_id: w, default_locale: 'de', channel_blackouts: null }, 2000);
        assert.deepEqual(await getSettings(store.db, w), { workspace_id: w, default_locale: 'de', channel_blackouts: null, updated_at: 2000 });
      });
    });

    describe('topics', () => {
      it('upsert creates then renames; members add (idempotent), remove, page, count; delete takes the members along', async () => {
        const w = ws();
        assert.deepEqual(await upsertTopic(store.db, w, 'ops', 'Ops', 1000), { topic: { workspace_id: w, key: 'ops', name: 'Ops', created_at: 1000, updated_at: 1000 }, created: true });
        assert.equal((await upsertTopic(store.db, w, 'ops', 'Operations', 2000)).created, false);
        assert.deepEqual(await getTopic(store.db, w, 'ops'), { workspace_id: w, key: 'ops', name: 'Operations', created_at: 1000, updated_at: 2000 });
        await upsertTopic(store.db, w, 'dev', null);
        assert.deepEqual((await listTopics(store.db, w, { limit: 10 })).map((t) => t.key), ['dev', 'ops']);
        assert.deepEqual((await listTopics(store.db, w, { after: 'dev', limit: 10 })).map((t) => t.key), ['ops']);

        assert.equal(await addMembers(store.db, w, 'ops', ['c', 'a', 'b', 'a'], 5000), 3);
        assert.equal(await addMembers(store.db, w, 'ops', ['b', 'd'], 6000), 1);
        await addMembers(store.db, w, 'dev', ['a']);
        assert.equal(await countMembers(store.db, w, 'ops'), 4);
        assert.deepEqual(await listMembers(store.db, w, 'ops', { limit: 2 }), [{ recipient_id: 'a', added_at: 5000 }, { recipient_id: 'b', added_at: 5000 }]);
        assert.deepEqual(await listMembers(store.db, w, 'ops', { after: 'b', limit: 5 }), [{ recipient_id: 'c', added_at: 5000 }, { recipient_id: 'd', added_at: 6000 }]);
        assert.deepEqual(await memberIdsAfter(store.db, w, 'ops', null, 3), ['a', 'b', 'c']);
        assert.deepEqual(await memberIdsAfter(store.db, w, 'ops', 'c', 3), ['d']);
        assert.deepEqual(await memberIdsAfter(store.db, w, 'ops', 'd', 3), []);

        assert.equal(await removeMembers(store.db, w, 'ops', ['b', 'zzz']), 1);
        assert.equal(await removeRecipientFromTopics(store.db, w, 'a'), 2);
        assert.deepEqual(await memberIdsAfter(store.db, w, 'ops', null, 10), ['c', 'd']);
        assert.equal(await countMembers(store.db, w, 'dev'), 0);

        assert.equal(await deleteTopic(store, w, 'ops'), true);
        assert.equal(await deleteTopic(store, w, 'ops'), false);
        assert.equal(await getTopic(store.db, w, 'ops'), undefined);
        await upsertTopic(store.db, w, 'ops', null);
        assert.equal(await countMembers(store.db, w, 'ops'), 0, 'a topic re-created with the same key starts empty');
      });

      it('existingRecipientIds finds the workspace\'s recipients among the ids', async () => {
        const w = ws();
        const now = Date.now();
        const ids = Array.from({ length: 700 }, (_, i) => `r${i}`);
        for (let i = 0; i < ids.length; i += 100) {
          await store.db.insertInto('recipients').values(ids.slice(i, i + 100).map((id) => ({
            workspace_id: w, id, name: null, email: null, phone: null, locale: null, timezone: null, webhook_url: null, webhook_secret: null,
            webhook_disabled_at: null, webhook_disabled_reason: null, pushover_user_key: null, pushover_device: null, slack_webhook_url: null,
            discord_webhook_url: null, kakao_phone: null, address_disabled: null, metadata: null, created_at: now, updated_at: now,
          }))).execute();
        }
        const found = await existingRecipientIds(store.db, w, [...ids, 'ghost', 'r5']);
        assert.equal(found.size, 700);
        assert.equal(found.has('ghost'), false);
        assert.equal((await existingRecipientIds(store.db, ws(), ids)).size, 0);
      });

      it('100,000 members: added in statements of at most 500 rows, and memberIdsAfter pages through every one', async () => {
        const w = ws();
        const N = 100_000;
        await upsertTopic(store.db, w, 'everyone', null);
        const ids = Array.from({ length: N }, (_, i) => `m${String(i).padStart(6, '0')}`);
        const shuffled = [...ids].reverse();
        const counter = new InsertCounter();
        assert.equal(await addMembers(store.db.withPlugin(counter), w, 'everyone', shuffled), N);
        assert.equal(counter.rowsPerInsert.length, N / MEMBER_CHUNK, 'one statement per chunk');
        assert.ok(Math.max(...counter.rowsPerInsert) <= 500, `largest statement: ${Math.max(...counter.rowsPerInsert)} rows`);
        assert.equal(await countMembers(store.db, w, 'everyone'), N);

        // Adding again inserts nothing, still in chunks.
        const again = new InsertCounter();
        assert.equal(await addMembers(store.db.withPlugin(again), w, 'everyone', ids.slice(0, 1200)), 0);
        assert.deepEqual(again.rowsPerInsert, [500, 500, 200]);

        const seen: string[] = [];
        let afterId: string | null = null;
        let batches = 0;
        for (;;) {
          const batch: string[] = await memberIdsAfter(store.db, w, 'everyone', afterId, 1000);
          if (batch.length === 0) break;
          assert.ok(batch.length <= 1000);
          batches++;
          seen.push(...batch);
          afterId = batch.at(-1)!;
        }
        assert.equal(batches, 100);
        assert.deepEqual(seen, ids, 'every member once, in recipient_id order');

        assert.equal(await deleteTopic(store, w, 'everyone'), true);
        assert.equal(await countMembers(store.db, w, 'everyone'), 0);
      });
    });
  });
}
