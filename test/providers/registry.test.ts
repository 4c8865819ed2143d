// ProviderRegistry (src/providers/service.ts) against a real store, on SQLite and PostgreSQL:
// credentials are sealed at rest and opened on read; the cache lives `ttlMs` by the injected clock
// (no sleeps); put/delete drop the entry on this registry at once and on another one through the
// bus; a load an invalidation overtook is not cached; global channels count as configured without credentials.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { SecretBox } from '../../src/auth/secret-box.ts';
import { InProcessBus } from '../../src/bus/bus.ts';
import { ProviderRegistry } from '../../src/providers/service.ts';
import { putProvider } from '../../src/providers/store.ts';
import type { StoreAdapter } from '../../src/store/adapter.ts';
import { openTestStore, type TestStore } from '../helpers/store.ts';

const secrets = new SecretBox('registry-unit-test-key-registry-unit-test-key');
const ws = () => `ws_${randomBytes(5).toString('hex')}`;
const PUSHOVER = { token: 'a'.repeat(30) };

/** A clock the test moves by hand. */
function clock(start = 1_800_000_000_000) {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
}

for (const kind of ['sqlite', 'postgres'] as const) {
  describe(`ProviderRegistry (${kind})`, () => {
    let t: TestStore;
    let store: StoreAdapter;
    before(async () => {
      t = await openTestStore(kind);
      store = t.store;
    });
    after(() => t?.close());

    /** Writes credentials behind the registry's back, as another node would. */
    const writeBehind = (w: string, config: Record<string, unknown>) =>
      putProvider(store.db, { workspace_id: w, provider: 'pushover', config: secrets.seal(JSON.stringify(config)), base_url: null, created_at: 1, updated_at: 1 });

    it('seals the config at rest and opens it on read, with the clock\'s times', async () => {
      const c = clock();
      const reg = new ProviderRegistry(store.db, secrets, { now: c.now });
      const w = ws();
      const { created, stored } = await reg.put(w, 'pushover', PUSHOVER, 'https://api.example.test');
      assert.equal(created, true);
      assert.deepEqual({ ...stored, version: undefined }, { provider: 'pushover', config: PUSHOVER, baseUrl: 'https://api.example.test', version: undefined, createdAt: c.now(), updatedAt: c.now() });
      const row = await store.db.selectFrom('providers').selectAll().where('workspace_id', '=', w).executeTakeFirstOrThrow();
      assert.ok(!row.config.includes(PUSHOVER.token), 'the stored config does not hold the token in clear');
      assert.match(row.config, /^v1:/);
      assert.deepEqual(JSON.parse(secrets.open(row.config)), PUSHOVER);
      assert.throws(() => new SecretBox('another-key-another-key-another-key-0000').open(row.config), 'another key cannot open it');

      c.advance(1000);
      const again = await reg.put(w, 'pushover', { token: 'b'.repeat(30) }, null);
      assert.equal(again.created, false);
      assert.equal(again.stored.createdAt, c.now() - 1000, 'a replace keeps created_at');
      assert.equal(again.stored.updatedAt, c.now());
      assert.notEqual(again.stored.version, stored.version, 'new credentials get a new version');
      reg.close();
    });

    it('serves from its cache until ttlMs has passed by its clock, then reads the store again', async () => {
      const c = clock();
      const reg = new ProviderRegistry(store.db, secrets, { now: c.now, ttlMs: 10_000 });
      const w = ws();
      assert.equal(await reg.get(w, 'pushover'), undefined);
      await writeBehind(w, PUSHOVER);
      c.advance(9_999);
      assert.equal(await reg.get(w, 'pushover'), undefined, 'within ttlMs the cached (empty) entry is served');
      assert.deepEqual(await reg.channels(w), ['webhook', 'slack', 'discord', 'inbox']);
      c.advance(1);
      assert.deepEqual((await reg.get(w, 'pushover'))?.config, PUSHOVER, 'at ttlMs the entry has expired');
      assert.deepEqual(await reg.channels(w), ['webhook', 'pushover', 'slack', 'discord', 'inbox']);
      reg.close();
    });

    it('put and delete drop the entry here at once and on another registry through the bus', async () => {
      const c = clock();
      const bus = new InProcessBus();
      const a = new ProviderRegistry(store.db, secrets, { now: c.now, bus });
      const b = new ProviderRegistry(store.db, secrets, { now: c.now, bus });
      const w = ws();
      assert.deepEqual(await a.list(w), []);
      assert.deepEqual(await b.list(w), []);

      await a.put(w, 'pushover', PUSHOVER, null);
      assert.deepEqual((await a.get(w, 'pushover'))?.config, PUSHOVER);
      assert.deepEqual((await b.get(w, 'pushover'))?.config, PUSHOVER, 'the other registry heard the change (its clock has not moved)');

      assert.equal(await b.delete(w, 'pushover'), true);
      assert.equal(await b.get(w, 'pushover'), undefined);
      assert.equal(await a.get(w, 'pushover'), undefined, 'the delete reached the first registry');
      assert.equal(await a.delete(w, 'pushover'), false, 'nothing left to delete');

      // A closed registry no longer listens: it keeps its entry until ttlMs.
      assert.equal(await b.get(w, 'pushover'), undefined);
      b.close();
      await a.put(w, 'pushover', PUSHOVER, null);
      assert.equal(await b.get(w, 'pushover'), undefined);
      a.close();
      await bus.close();
    });

    it('does not keep a load that an invalidation overtook', async () => {
      const reg = new ProviderRegistry(store.db, secrets, { now: clock().now });
      const w = ws();
      const reading = reg.get(w, 'pushover');
      reg.invalidate(w); // while the load is in flight
      assert.equal(await reading, undefined);
      await writeBehind(w, PUSHOVER);
      assert.deepEqual((await reg.get(w, 'pushover'))?.config, PUSHOVER, 'the overtaken load was not cached');
      reg.close();
    });

    it('global channels are usable without credentials, in channel order', async () => {
      const reg = new ProviderRegistry(store.db, secrets, { now: clock().now, globalChannels: ['email'] });
      const w = ws();
      assert.deepEqual(await reg.channels(w), ['webhook', 'email', 'slack', 'discord', 'inbox']);
      await reg.put(w, 'twilio', { account_sid: 'AC' + '0'.repeat(32), auth_token: 'x'.repeat(32), from: '+15550000000' }, null);
      assert.deepEqual(await reg.channels(w), ['webhook', 'email', 'sms', 'slack', 'discord', 'inbox']);
      const plain = new ProviderRegistry(store.db, secrets, { now: clock().now });
      assert.deepEqual(await plain.channels(w), ['webhook', 'sms', 'slack', 'discord', 'inbox'], 'without it, email needs smtp credentials');
      reg.close();
      plain.close();
    });
  });
}
