// The herald command line: config, migrate, keys, send against a running server (on each store),
// backup and restore (SQLite; PostgreSQL is backed up with its own tools, which the CLI says).

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { promisify } from 'node:util';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { postgresRedisEnv, startHerald, storeName, STORES, tempDir, request, waitFor } from '../helpers/herald.ts';
import { startReceiver } from '../helpers/receiver.ts';
import { LATEST_MIGRATION } from '../../src/store/migrations/index.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const node = process.execPath;

/** Async, so an in-process server can answer the CLI meanwhile. */
async function heraldAsync(args: string[], env?: Record<string, string>): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await promisify(execFile)(node, ['bin/herald.js', ...args], { cwd: root, encoding: 'utf8', timeout: 30_000, ...(env && { env: { PATH: process.env.PATH ?? '', ...env } }) });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

function herald(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(node, ['bin/herald.js', ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HERALD_LOG_LEVEL: 'silent', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('herald CLI', () => {
  it('prints the resolved configuration with secrets masked', () => {
    const r = herald(['config'], { HERALD_ADMIN_KEY: 'hk_do_not_print_me', HERALD_SMTP_URL: 'smtp://u:topsecret@mail.example.com:25', PORT: '9999' });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^PORT\s+9999$/m);
    assert.match(r.stdout, /^HERALD_ADMIN_KEY\s+\*\*\*\*$/m);
    assert.match(r.stdout, /smtp:\/\/u:\*\*\*\*@mail\.example\.com:25/);
    assert.ok(!r.stdout.includes('hk_do_not_print_me') && !r.stdout.includes('topsecret'));
  });

  it('refuses a bad configuration naming the variable, exit code 2', () => {
    const r = herald(['config'], { HERALD_RETRY_SCHEDULE: 'sometimes' });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /configuration error: HERALD_RETRY_SCHEDULE: /);
  });

  it('rejects unknown commands and flags with usage', () => {
    assert.equal(herald(['frobnicate']).code, 2);
    const r = herald(['keys', 'create', '--scope', 'root', '--name', 'x'], { HERALD_DATA_DIR: tempDir() });
    assert.equal(r.code, 2);
    assert.match(r.stderr, /unknown scope "root"/);
  });

  for (const store of STORES) it(`migrates, creates a key that the server accepts, and sends through a running server (${storeName(store)})`, async () => {
    const dataDir = tempDir();
    const pg = store === 'postgres' ? await postgresRedisEnv() : undefined;
    try {
      const env = { HERALD_DATA_DIR: dataDir, HERALD_SECRET_KEY: 'cli-test-secret-key-cli-test-secret-key', ...pg?.env };
      const m = herald(['migrate'], env);
      assert.equal(m.code, 0, m.stderr);
      assert.ok(m.stdout.includes(`migrated (${store}) to ${LATEST_MIGRATION}`), m.stdout);

      const k = herald(['keys', 'create', '--scope', 'send', '--scope', 'read', '--name', 'cli'], env);
      assert.equal(k.code, 0, k.stderr);
      const key = k.stdout.trim();
      assert.match(key, /^hk_[A-Za-z0-9_-]{32}$/);
      assert.match(k.stderr, /shown only once/);
      const listed = herald(['keys', 'list'], env);
      assert.ok(listed.stdout.includes(key.slice(0, 10)) && !listed.stdout.includes(key), 'list shows the prefix, never the key');

      const rx = await startReceiver();
      const h = await startHerald({ HERALD_SECRET_KEY: env.HERALD_SECRET_KEY, ...pg?.env }, { dataDir });
      try {
        const put = await request(h.url, key, 'PUT', '/v1/recipients/bob', { webhook: { url: `${rx.url}/bob` } });
        assert.equal(put.status, 201);
        const s = await heraldAsync(['send', '--to', 'bob', '--title', 'From the CLI', '--body', 'hi', '--url', h.url, '--key', key]);
        assert.equal(s.code, 0, s.stderr);
        const out = JSON.parse(s.stdout);
        assert.equal(out.status, 'accepted');
        await waitFor(() => rx.received.some((r) => r.headers['webhook-id'] === out.deliveries[0].id), 5000, 'CLI-sent delivery');
        const bad = await heraldAsync(['send', '--to', 'nobody', '--title', 'x', '--url', h.url, '--key', key]);
        assert.equal(bad.code, 1);
        assert.match(bad.stdout, /unknown_recipients/);
      } finally {
        await h.stop({ keepData: true });
        await rx.close();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      await pg?.db.drop();
    }
  });

  it('backup on PostgreSQL is refused, naming its own tools', async () => {
    const pg = await postgresRedisEnv();
    try {
      const r = herald(['backup', '--to', `${tempDir()}/backup`], { ...pg.env, HERALD_SECRET_KEY: 'cli-test-secret-key-cli-test-secret-key' });
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, /pg_dump/);
    } finally {
      await pg.db.drop();
    }
  });
});

describe('herald backup and restore', () => {
  it('copies a live database and its generated secret key, and a restored copy serves the same data', async () => {
    const dataDir = tempDir();
    const backupDir = `${tempDir()}/backup`;
    const restoredDir = tempDir();
    const env = { HERALD_SECRET_KEY: '' }; // use the generated key file, which the backup must carry
    try {
      const h = await startHerald(env, { dataDir });
      let id: string;
      try {
        const put = await h.api('PUT', '/v1/recipients/carol', { webhook: { url: 'http://127.0.0.1:9/carol' } });
        assert.equal(put.status, 201);
        const sent = await h.api('POST', '/v1/notifications', { to: 'carol', title: 'before backup' });
        assert.equal(sent.status, 202);
        id = sent.body.id;
        const b = await heraldAsync(['backup', '--to', backupDir], { HERALD_DATA_DIR: dataDir, HERALD_LOG_LEVEL: 'silent' });
        assert.equal(b.code, 0, b.stderr);
      } finally {
        await h.stop({ keepData: true });
      }
      const again = herald(['backup', '--to', backupDir], { HERALD_DATA_DIR: dataDir });
      assert.equal(again.code, 2, 'refuses to overwrite a backup');

      const r = herald(['restore', '--from', backupDir], { HERALD_DATA_DIR: restoredDir });
      assert.equal(r.code, 0, r.stderr);
      const h2 = await startHerald(env, { dataDir: restoredDir });
      try {
        const n = await h2.api('GET', `/v1/notifications/${id}`);
        assert.equal(n.status, 200);
        assert.equal(n.body.title, 'before backup');
        const rec = await h2.api('GET', '/v1/recipients/carol');
        assert.equal(rec.status, 200);
        assert.match(rec.body.webhook.secret, /^whsec_/, 'the secret decrypts with the restored key');
      } finally {
        await h2.stop();
      }
    } finally {
      for (const d of [dataDir, backupDir, restoredDir]) rmSync(d, { recursive: true, force: true });
    }
  });
});

