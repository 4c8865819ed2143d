// Migration numbers are handed to work done in parallel, so a database may have applied a higher
// number before a lower one lands (0017 before 0016 here). Such a database still starts, and the
// late migration is applied, on both stores.

import { after, before, it } from 'node:test';
import assert from 'node:assert/strict';
import { sql } from 'kysely';
import { describeOnStores, startHeraldOn, type TestHerald } from '../helpers/herald.ts';
import { MIGRATION_NAMES } from '../../src/store/migrations/index.ts';

describeOnStores('migrations landing out of order', (store) => {
  let h: TestHerald;
  before(async () => (h = await startHeraldOn(store)));
  after(async () => h?.stop());

  it('applies a lower-numbered migration after a higher one was applied', async () => {
    const late = '0016_identities';
    assert.ok(MIGRATION_NAMES.indexOf(late) < MIGRATION_NAMES.length - 1, 'a higher migration exists');
    const db = h.herald.services.store.db;
    // The database as it was before 0016 landed: its tables absent, its row not recorded.
    for (const t of ['oauth_states', 'identities', 'github_org_links']) await sql`DROP TABLE ${sql.table(t)}`.execute(db);
    await sql`DELETE FROM kysely_migration WHERE name = ${late}`.execute(db);
    h = await h.restart();
    const rows = await sql<{ name: string }>`SELECT name FROM kysely_migration ORDER BY name`.execute(h.herald.services.store.db);
    assert.deepEqual(rows.rows.map((r) => r.name), [...MIGRATION_NAMES]);
    const n = await h.herald.services.store.db.selectFrom('identities').select((e) => e.fn.countAll().as('n')).executeTakeFirstOrThrow();
    assert.equal(Number(n.n), 0);
  });
});
