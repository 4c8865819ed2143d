// The gateway when the store cannot be read while a token is checked: the connection is closed
// with 1011 (a server fault the client retries), the process goes on, and once the store is back
// the same token is welcomed. PostgreSQL only: reaching it through a TCP proxy the test cuts is how
// a store becomes unreadable without stopping a shared server (SQLite has no connection to lose).
// Before the fix, the rejection of a token check begun by `?token=` went unhandled and ended the
// process (seen under connection load in the real-time benchmark).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { request, startHerald, waitFor, type TestHerald } from '../helpers/herald.ts';
import { freshSchema, TEST_DATABASE_URL, type TestSchema } from '../helpers/postgres.ts';
import { startTcpProxy, type TcpProxy } from '../helpers/tcp-proxy.ts';
import { connect } from './ws-client.ts';

const OWNER = { email: 'owner-outage@example.com', password: 'a long enough passphrase' };

describe('real-time gateway: the store unreadable during a token check (postgres)', () => {
  let db: TestSchema;
  let proxy: TcpProxy;
  let h: TestHerald;

  before(async () => {
    db = await freshSchema();
    const target = new URL(TEST_DATABASE_URL);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    const url = new URL(db.url);
    url.hostname = '127.0.0.1';
    url.port = String(proxy.port);
    h = await startHerald({ DATABASE_URL: url.href, HERALD_ADMIN_EMAIL: OWNER.email, HERALD_ADMIN_PASSWORD: OWNER.password });
  });

  after(async () => {
    await proxy?.restore();
    await h?.stop();
    await proxy?.close();
    await db?.drop();
  });

  it('closes the connection with 1011 and keeps serving; the same token is welcomed once the store is back', async () => {
    const login = await request(h.url, undefined, 'POST', '/v1/auth/login', OWNER);
    assert.equal(login.status, 200, login.text);
    const token = login.body.access_token as string;

    await proxy.cut();
    const during = await connect(h.url, token);
    const closed = await during.closed;
    assert.equal(closed.code, 1011, `closed with ${closed.code} ${closed.reason}`);
    assert.match(closed.reason, /^unavailable/);
    assert.equal((await request(h.url, undefined, 'GET', '/healthz/live')).status, 200);

    await proxy.restore();
    const welcomed = await waitFor(async () => {
      const c = await connect(h.url, token);
      const first = await Promise.race([c.next((f) => f.type === 'welcome', 5000).catch(() => undefined), c.closed.then(() => undefined)]);
      c.close();
      return first;
    }, 30_000, 'a welcome after the store came back');
    assert.equal(welcomed.type, 'welcome');
  });
});
