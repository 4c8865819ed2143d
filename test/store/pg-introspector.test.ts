// SchemaIntrospector (src/store/pg-introspector.ts): Kysely's view of one PostgreSQL schema, the
// same as Kysely's own introspector gives for it, and unaffected by other schemas coming and going.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { Kysely, PostgresDialect, PostgresIntrospector } from 'kysely';
import pg from 'pg';
import { PostgresAdapter } from '../../src/store/postgres.ts';
import { SchemaIntrospector } from '../../src/store/pg-introspector.ts';
import { freshSchema, withClient, type TestSchema } from '../helpers/postgres.ts';

describe('SchemaIntrospector', () => {
  let s: TestSchema;
  let store: PostgresAdapter;
  let db: Kysely<unknown>;

  before(async () => {
    s = await freshSchema();
    store = new PostgresAdapter(s.baseUrl, { schema: s.schema, poolSize: 2 });
    await store.migrate();
    await withClient((c) => c.query(`CREATE TABLE ${s.schema}.extra (id serial PRIMARY KEY, note text); COMMENT ON COLUMN ${s.schema}.extra.note IS 'a comment'; CREATE VIEW ${s.schema}.extra_view AS SELECT id FROM ${s.schema}.extra`));
    db = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: s.baseUrl, max: 2 }) }) });
  });
  after(async () => {
    await db?.destroy();
    await store?.close();
    await s?.drop();
  });

  it("lists the schema's tables and views with their columns exactly as Kysely's own introspector does, and nothing of other schemas", async () => {
    for (const withInternalKyselyTables of [false, true]) {
      const ours = await new SchemaIntrospector(db, s.schema).getTables({ withInternalKyselyTables });
      const kysely = (await new PostgresIntrospector(db).getTables({ withInternalKyselyTables })).filter((t) => t.schema === s.schema);
      assert.deepEqual(ours, kysely);
      assert.ok(ours.some((t) => t.name === 'deliveries'));
      assert.equal(ours.some((t) => t.name === 'kysely_migration'), withInternalKyselyTables);
    }
    const extra = (await new SchemaIntrospector(db, s.schema).getTables()).find((t) => t.name === 'extra')!;
    assert.deepEqual(extra.columns.map((c) => [c.name, c.isAutoIncrementing, c.hasDefaultValue, c.comment]), [['id', true, true, undefined], ['note', false, false, 'a comment']]);
    assert.equal((await new SchemaIntrospector(db, s.schema).getTables()).find((t) => t.name === 'extra_view')?.isView, true);
  });

  it("without a schema, introspects the connection's current schema", async () => {
    const scoped = new Kysely<unknown>({ dialect: new PostgresDialect({ pool: new pg.Pool({ connectionString: s.url, max: 1 }) }) });
    try {
      const tables = await new SchemaIntrospector(scoped, undefined).getTables();
      assert.ok(tables.length > 5 && tables.every((t) => t.schema === s.schema), JSON.stringify(tables.map((t) => t.schema)));
    } finally {
      await scoped.destroy();
    }
  });

  it('migrates while other schemas are created and dropped all the time', async (t) => {
    // Other clients churn schemas with tables in them; Kysely's own introspector resolves every
    // schema by name and fails when one disappears mid-query ("schema ... does not exist").
    // Herald's migrations must never fail so (every failure is collected and asserted on), and the
    // churn must provably be one that hurts: Kysely's introspector, run against the same churn
    // until it fails, does fail (a deadline of a minute, not a count of rounds).
    let churning = true;
    const churn = withClient(async (c) => {
      for (let i = 0; churning; i++) {
        const name = `${s.schema}_churn_${i}`;
        await c.query(`CREATE SCHEMA ${name}; CREATE TABLE ${name}.t (id serial PRIMARY KEY, a text, b int)`);
        await c.query(`DROP SCHEMA ${name} CASCADE`);
      }
    });
    const heraldFailures: string[] = [];
    let kyselyRuns = 0;
    let kyselyFailure: string | undefined;
    try {
      for (let round = 0; round < 15; round++) {
        const other = await freshSchema();
        const st = new PostgresAdapter(other.baseUrl, { schema: other.schema, poolSize: 1 });
        try {
          await st.migrate();
          if ((await st.appliedMigration()) === undefined) heraldFailures.push(`round ${round}: no migration recorded`);
        } catch (err) {
          heraldFailures.push(`round ${round}: ${(err as Error).message}`);
        } finally {
          await st.close();
          await other.drop();
        }
      }
      const until = Date.now() + 60_000;
      while (kyselyFailure === undefined && Date.now() < until) {
        kyselyRuns++;
        await new PostgresIntrospector(db).getTables().catch((err: Error) => (kyselyFailure = err.message));
      }
    } finally {
      churning = false;
      await churn;
    }
    assert.deepEqual(heraldFailures, [], 'every migration under the churn succeeded');
    assert.ok(kyselyFailure, `the churn never hurt Kysely's introspector in ${kyselyRuns} runs: this test proved nothing`);
    t.diagnostic(`Kysely's own introspector failed after ${kyselyRuns} runs under the same churn: ${kyselyFailure}`);
  });
});
