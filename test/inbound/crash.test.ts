// Ingest crash safety, on each store: a real server under concurrent webhook load is SIGKILLed,
// started again on the same data, and every event that got a 202 is stored exactly once; a
// provider's retry of one of them after the restart answers 200 with the original id.

import { after, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { describeOnStores, postgresRedisEnv, tempDir } from '../helpers/herald.ts';
import { withClient } from '../helpers/postgres.ts';
import { spawnHerald, type HeraldProcess } from '../helpers/process.ts';
import { GH_SECRET, postGithub } from '../helpers/hooks.ts';

const IN_FLIGHT = 16;

describeOnStores('crash: SIGKILL under webhook load', (store) => {
  const cleanup: (() => Promise<void> | void)[] = [];
  after(async () => {
    for (const c of cleanup.reverse()) await c();
  });

  it('every 202 is stored once after a restart; a retried delivery gets its original id', async (t) => {
    const dataDir = tempDir('herald-ingest-crash-');
    cleanup.push(() => rmSync(dataDir, { recursive: true, force: true }));
    const pg = store === 'postgres' ? await postgresRedisEnv() : undefined;
    if (pg) cleanup.push(() => pg.db.drop());
    const env = { ...pg?.env };
    const first: HeraldProcess = await spawnHerald({ dataDir, env });
    cleanup.push(() => first.kill('SIGKILL'));
    const src = await first.api('PUT', '/v1/sources/gh', { path: '/crash/repo', provider: 'github', secrets: [GH_SECRET] });
    assert.equal(src.status, 201, src.text);

    const accepted = new Map<string, string>(); // delivery id -> event id
    const outcomes = { accepted: 0, networkError: 0 };
    let running = true;
    let seq = 0;
    const failures: unknown[] = [];
    const loop = async () => {
      while (running) {
        const delivery = `crash-${seq++}`;
        try {
          const r = await postGithub(first.url, '/crash/repo', { n: delivery, pad: 'x'.repeat(200) }, { delivery, event: 'push' });
          if (r.status !== 202) throw new assert.AssertionError({ message: `unexpected ${r.status} before the kill: ${r.text}` });
          outcomes.accepted++;
          accepted.set(delivery, r.body.id);
        } catch (err) {
          if ((err as Error).name === 'AssertionError') {
            failures.push(err);
            running = false;
          } else outcomes.networkError++; // the connection died with the server
        }
      }
    };
    const senders = Array.from({ length: IN_FLIGHT }, loop);
    await new Promise((r) => setTimeout(r, 2500));
    assert.ok(outcomes.accepted > 0, 'events were accepted before the kill');
    first.kill('SIGKILL');
    assert.equal((await first.exited(10_000)).signal, 'SIGKILL');
    running = false;
    await Promise.all(senders);
    if (failures.length) throw failures[0];

    // What the dead process left, read from its database.
    type Row = { id: string; delivery_id: string };
    let rows: Row[];
    if (pg) rows = await withClient(async (c) => (await c.query<Row>(`SELECT id, delivery_id FROM ${pg.db.schema}.inbound_events`)).rows);
    else {
      const db = new BetterSqlite3(join(dataDir, 'herald.db'));
      rows = db.prepare('SELECT id, delivery_id FROM inbound_events').all() as Row[];
      db.close();
    }
    const perDelivery = new Map<string, string[]>();
    for (const r of rows) perDelivery.set(r.delivery_id, [...(perDelivery.get(r.delivery_id) ?? []), r.id]);
    for (const [delivery, id] of accepted) assert.deepEqual(perDelivery.get(delivery), [id], `${delivery}: its 202 id, stored once`);
    for (const [delivery, ids] of perDelivery) assert.equal(ids.length, 1, `${delivery} stored once`);
    t.diagnostic(`202s: ${outcomes.accepted}; requests cut by the kill: ${outcomes.networkError}; stored: ${rows.length} (${rows.length - accepted.size} whose 202 was lost with the connection)`);

    const second = await spawnHerald({ dataDir, key: first.key, env });
    cleanup.push(() => second.kill('SIGKILL'));
    for (const [delivery, id] of [...accepted].slice(-5)) {
      const r = await postGithub(second.url, '/crash/repo', { n: delivery, pad: 'x'.repeat(200) }, { delivery, event: 'push' });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.body.id, id);
    }
    for (const [, id] of [...accepted].slice(0, 20)) assert.equal((await second.api('GET', `/v1/events/${id}`)).status, 200);
    second.kill('SIGTERM');
    assert.equal((await second.exited(20_000)).code, 0);
  });
});
