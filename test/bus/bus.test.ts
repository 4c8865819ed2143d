// The in-process bus, and the API key cache on top of a bus: what a revocation does on a node that
// hears it and on one that does not.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { createApiKey, KeyResolver } from '../../src/auth/api-keys.ts';
import { InProcessBus, KEYS_INVALIDATE } from '../../src/bus/bus.ts';
import { revokeApiKey } from '../../src/keys/store.ts';
import { SqliteAdapter } from '../../src/store/sqlite.ts';
import { DEFAULT_WORKSPACE_ID, ensureDefaultWorkspace } from '../../src/store/workspaces.ts';
import { tempDir } from '../helpers/herald.ts';

describe('InProcessBus', () => {
  it('delivers each message to every subscriber of its topic, and only of its topic', async () => {
    const bus = new InProcessBus();
    const got: string[] = [];
    bus.subscribe('a', { onMessage: (m) => got.push(`1:${m}`) });
    bus.subscribe('a', { onMessage: (m) => got.push(`2:${m}`) });
    bus.subscribe('b', { onMessage: (m) => got.push(`b:${m}`) });
    await bus.publish('a', 'x');
    assert.deepEqual(got, ['1:x', '2:x']);
    assert.equal(bus.connected, true);
    assert.equal(bus.kind, 'in-process');
  });

  it('stops delivering after unsubscribe', async () => {
    const bus = new InProcessBus();
    const got: string[] = [];
    const off = bus.subscribe('t', { onMessage: (m) => got.push(m) });
    await bus.publish('t', 'one');
    off();
    await bus.publish('t', 'two');
    assert.deepEqual(got, ['one']);
  });

  it('keeps delivering to the others when a subscriber throws, and logs it', async () => {
    const lines: string[] = [];
    const log = pino({ level: 'error' }, { write: (s: string) => void lines.push(s) });
    const bus = new InProcessBus({ log });
    const got: string[] = [];
    bus.subscribe('t', { onMessage: () => { throw new Error('subscriber bug'); } });
    bus.subscribe('t', { onMessage: (m) => got.push(m) });
    await assert.doesNotReject(bus.publish('t', 'm'));
    assert.deepEqual(got, ['m']);
    assert.equal(lines.length, 1);
    assert.match(lines[0]!, /bus subscriber failed/);
    assert.match(lines[0]!, /subscriber bug/);
  });

  it('drops messages once closed, without throwing', async () => {
    const bus = new InProcessBus();
    const got: string[] = [];
    bus.subscribe('t', { onMessage: (m) => got.push(m) });
    await bus.close();
    await assert.doesNotReject(bus.publish('t', 'late'));
    assert.deepEqual(got, []);
  });
});

describe('KeyResolver over a bus', () => {
  let dir: string;
  let store: SqliteAdapter;
  before(async () => {
    dir = tempDir('herald-bus-');
    store = new SqliteAdapter(join(dir, 'herald.db'));
    await store.migrate();
    await ensureDefaultWorkspace(store.db);
  });
  after(async () => {
    await store?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('drops every node’s cached key at once when one node invalidates', async () => {
    const bus = new InProcessBus(); // one bus, two nodes' resolvers
    const nodeA = new KeyResolver(store.db, { bus });
    const nodeB = new KeyResolver(store.db, { bus });
    const { id, key } = await createApiKey(store.db, { name: 'shared', scopes: ['send'] });
    assert.equal((await nodeA.resolve(key))?.keyId, id);
    assert.equal((await nodeB.resolve(key))?.keyId, id); // cached on B for 30s

    assert.ok(await revokeApiKey(store.db, DEFAULT_WORKSPACE_ID, id, Date.now()));
    nodeA.invalidate();
    assert.equal(await nodeB.resolve(key), undefined);
    assert.equal(await nodeA.resolve(key), undefined);
    nodeA.close();
    nodeB.close();
  });

  it('converges within the TTL on a node that misses the message', async () => {
    const nodeA = new KeyResolver(store.db, { bus: new InProcessBus() });
    let now = Date.now();
    const nodeB = new KeyResolver(store.db, { bus: new InProcessBus(), ttlMs: 1_000, now: () => now }); // not on A's bus
    const { id, key } = await createApiKey(store.db, { name: 'missed', scopes: ['send'] });
    await nodeB.resolve(key);
    await revokeApiKey(store.db, DEFAULT_WORKSPACE_ID, id, Date.now());
    nodeA.invalidate();
    // B never heard it: its entry stands until the TTL (by B's clock)…
    now += 999;
    assert.equal((await nodeB.resolve(key))?.keyId, id);
    // …and not after.
    now += 1;
    assert.equal(await nodeB.resolve(key), undefined);
  });

  it('stops listening once closed', async () => {
    const bus = new InProcessBus();
    const nodeA = new KeyResolver(store.db, { bus });
    const nodeB = new KeyResolver(store.db, { bus });
    const { id, key } = await createApiKey(store.db, { name: 'closed', scopes: ['send'] });
    await nodeB.resolve(key);
    nodeB.close();
    await revokeApiKey(store.db, DEFAULT_WORKSPACE_ID, id, Date.now());
    nodeA.invalidate();
    assert.equal((await nodeB.resolve(key))?.keyId, id, 'a closed resolver no longer hears invalidations');
    await bus.publish(KEYS_INVALIDATE, '');
    assert.equal((await nodeB.resolve(key))?.keyId, id);
  });
});
