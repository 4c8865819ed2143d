// The accept path's recipient cache (src/queue/recipient-cache.ts) over a real SQLite store: what
// it reads, what it keeps, and how a change on this node or another one reaches it.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { InProcessBus, type Bus } from '../../src/bus/bus.ts';
import { RecipientCache, RECIPIENTS_INVALIDATE } from '../../src/queue/recipient-cache.ts';
import type { RecipientAddresses } from '../../src/store/adapter.ts';
import { SqliteAdapter } from '../../src/store/sqlite.ts';
import { DEFAULT_WORKSPACE_ID as WS, ensureDefaultWorkspace } from '../../src/store/workspaces.ts';
import { tempDir } from '../helpers/herald.ts';

describe('RecipientCache', () => {
  let dir: string;
  let store: SqliteAdapter;
  let reads: string[][];

  before(async () => {
    dir = tempDir();
    store = new SqliteAdapter(join(dir, 'herald.db'));
    await store.migrate();
    await ensureDefaultWorkspace(store.db);
    const find = store.findRecipients.bind(store);
    store.findRecipients = async (ws: string, ids: string[]) => {
      reads.push([...ids]);
      return find(ws, ids);
    };
  });
  after(async () => {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  const put = (id: string, email: string | null) =>
    store.db
      .insertInto('recipients')
      .values({
        workspace_id: WS, id, name: id, email, phone: null, locale: null, timezone: null, webhook_url: null, webhook_secret: null,
        webhook_disabled_at: null, webhook_disabled_reason: null, pushover_user_key: null, pushover_device: null, slack_webhook_url: null,
        discord_webhook_url: null, kakao_phone: null, address_disabled: null, metadata: null, created_at: 1, updated_at: 1,
      })
      .onConflict((oc) => oc.columns(['workspace_id', 'id']).doUpdateSet({ email }))
      .execute();
  const emails = (rs: RecipientAddresses[]) => rs.map((r) => `${r.id}:${r.email}`);

  it('reads only what it does not hold, answers in the order asked, and leaves out unknown ids', async () => {
    reads = [];
    const cache = new RecipientCache(store);
    await put('a', 'a@x');
    await put('b', 'b@x');
    assert.deepEqual(emails(await cache.find(WS, ['b', 'nobody', 'a'])), ['b:b@x', 'a:a@x']);
    assert.deepEqual(emails(await cache.find(WS, ['a', 'b'])), ['a:a@x', 'b:b@x']);
    assert.deepEqual(emails(await cache.find(WS, ['c', 'a'])), ['a:a@x']);
    assert.deepEqual(reads, [['b', 'nobody', 'a'], ['c']], 'hits are not read again; unknown ids are, every time');
    await put('c', 'c@x');
    assert.deepEqual(emails(await cache.find(WS, ['c'])), ['c:c@x'], 'a recipient created after a miss is found at once');
    assert.deepEqual(await cache.find('ws_other', ['a']), [], 'entries are per workspace');
  });

  it('invalidate drops the entry here and, through the bus, on every node', async () => {
    reads = [];
    const bus = new InProcessBus();
    const here = new RecipientCache(store, { bus });
    const there = new RecipientCache(store, { bus });
    await put('d', 'old@x');
    await here.find(WS, ['d']);
    await there.find(WS, ['d']);
    await put('d', 'new@x');
    assert.deepEqual(emails(await there.find(WS, ['d'])), ['d:old@x'], 'cached until told');
    here.invalidate(WS, 'd');
    assert.deepEqual(emails(await here.find(WS, ['d'])), ['d:new@x']);
    assert.deepEqual(emails(await there.find(WS, ['d'])), ['d:new@x']);
    here.close();
    there.close();
  });

  it('expires entries after ttlMs, and then forgets a recipient that was deleted', async () => {
    reads = [];
    let now = 1_800_000_000_000;
    const cache = new RecipientCache(store, { ttlMs: 30, now: () => now });
    await put('e', 'e@x');
    assert.equal((await cache.find(WS, ['e'])).length, 1);
    await store.db.deleteFrom('recipients').where('id', '=', 'e').execute();
    now += 29;
    assert.equal((await cache.find(WS, ['e'])).length, 1, 'still cached');
    now += 1;
    assert.deepEqual(await cache.find(WS, ['e']), []);
    assert.deepEqual(reads, [['e'], ['e']]);
  });

  it('does not cache a read that an invalidation overtook, and drops everything after a bus gap', async () => {
    reads = [];
    let gap!: () => void;
    const subscribers: ((m: string) => void)[] = [];
    const bus: Bus = {
      kind: 'test',
      connected: true,
      publish: async (_t, m) => subscribers.forEach((s) => s(m)),
      subscribe: (topic, sub) => {
        assert.equal(topic, RECIPIENTS_INVALIDATE);
        subscribers.push(sub.onMessage);
        gap = sub.onGap!;
        return () => undefined;
      },
      close: async () => undefined,
    };
    const cache = new RecipientCache(store, { bus });
    await put('f', 'f1@x');
    const reading = cache.find(WS, ['f']);
    cache.invalidate(WS, 'f'); // while the read is in flight
    assert.deepEqual(emails(await reading), ['f:f1@x']);
    await cache.find(WS, ['f']);
    assert.deepEqual(reads, [['f'], ['f']], 'the overtaken read was not kept');
    await put('g', 'g@x');
    await cache.find(WS, ['f', 'g']);
    gap();
    await cache.find(WS, ['f', 'g']);
    assert.deepEqual(reads.slice(2), [['g'], ['f', 'g']]);
  });
});
