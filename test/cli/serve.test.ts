// `herald serve` as a real process: what it tells the person who started it, and what it refuses.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { request, tempDir } from '../helpers/herald.ts';
import { spawnHerald } from '../helpers/process.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** The CLI as a user runs it, with only `env` from Herald's variables. */
function herald(args: string[], env: Record<string, string>) {
  const r = spawnSync(process.execPath, ['bin/herald.js', ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HERALD_LOG_LEVEL: 'silent', ...env },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('herald serve', () => {
  it('warns loudly about a well-known admin key, and not about a generated one', async () => {
    const dataDir = tempDir();
    try {
      const weak = await spawnHerald({ dataDir, key: 'hk_walkthrough_admin_key' });
      weak.kill('SIGTERM');
      await weak.exited();
      assert.match(weak.output(), /^herald: WARNING: HERALD_ADMIN_KEY is a well-known or placeholder value\.$/m);
      assert.ok(weak.logs().some((l) => l.level === 40 && l.variable === 'HERALD_ADMIN_KEY'), 'and a warning in the log');

      const strong = await spawnHerald({ dataDir });
      strong.kill('SIGTERM');
      await strong.exited();
      assert.doesNotMatch(strong.output(), /WARNING/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('refuses a second server on the same data directory, naming the PID that holds it', async () => {
    const dataDir = tempDir();
    try {
      const first = await spawnHerald({ dataDir });
      try {
        assert.equal(readFileSync(join(dataDir, 'herald.pid'), 'utf8').trim(), String(first.child.pid));
        await assert.rejects(spawnHerald({ dataDir, readyTimeoutMs: 20_000 }), (err: Error) => {
          assert.match(err.message, /exited before it was ready/);
          assert.match(err.message, new RegExp(`herald: the data directory ${dataDir} is in use by another Herald server \\(PID ${first.child.pid}\\)`));
          return true;
        });
        assert.equal((await first.api('GET', '/v1/recipients')).status, 200, 'the first server is untouched');
      } finally {
        first.kill('SIGTERM');
        await first.exited();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('starts after a server on the same data directory was killed with SIGKILL', async () => {
    const dataDir = tempDir();
    try {
      const first = await spawnHerald({ dataDir });
      first.kill('SIGKILL');
      assert.equal((await first.exited()).signal, 'SIGKILL');
      assert.equal(readFileSync(join(dataDir, 'herald.pid'), 'utf8').trim(), String(first.child.pid), 'the dead holder left its PID file behind');
      const second = await spawnHerald({ dataDir, key: first.key });
      try {
        assert.equal(readFileSync(join(dataDir, 'herald.pid'), 'utf8').trim(), String(second.child.pid));
        assert.equal((await second.api('GET', '/v1/recipients')).status, 200);
      } finally {
        second.kill('SIGTERM');
        await second.exited();
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('lets CLI commands that write cooperate with a running server, and refuses restore beneath it', async () => {
    const dataDir = tempDir();
    const backupDir = join(tempDir(), 'backup');
    const env = { HERALD_DATA_DIR: dataDir, HERALD_SECRET_KEY: 'test-secret-key-test-secret-key-0123456789' };
    try {
      const h = await spawnHerald({ dataDir });
      try {
        const created = herald(['keys', 'create', '--scope', 'read', '--name', 'while-running'], env);
        assert.equal(created.code, 0, created.stderr);
        const key = created.stdout.trim();
        assert.equal((await request(h.url, key, 'GET', '/v1/recipients')).status, 200, 'the running server accepts the key at once');
        const migrated = herald(['migrate'], env);
        assert.equal(migrated.code, 0, migrated.stderr);
        assert.match(migrated.stdout, /^already migrated \(sqlite\)/);
        assert.equal(herald(['backup', '--to', backupDir], env).code, 0);

        const restored = herald(['restore', '--from', backupDir], env);
        assert.equal(restored.code, 1);
        assert.equal(restored.stderr.trim(), `herald: a running Herald server (PID ${h.child.pid}) uses ${dataDir}; stop it before restoring (restore replaces the database it has open)`);
        assert.equal((await h.api('GET', '/v1/recipients')).status, 200);
      } finally {
        h.kill('SIGTERM');
        await h.exited();
      }
      const restored = herald(['restore', '--from', backupDir], env);
      assert.equal(restored.code, 0, restored.stderr);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
      rmSync(join(backupDir, '..'), { recursive: true, force: true });
    }
  });

  it('on a first run prints where things are and an admin key, once, stored only as a hash', async () => {
    const dataDir = tempDir();
    try {
      const first = await spawnHerald({ dataDir, key: null, env: { HERALD_SECRET_KEY: '' } });
      first.kill('SIGTERM');
      await first.exited();
      const out = first.output();
      assert.match(out, new RegExp(`^  API reference  ${first.url}/docs   \\(OpenAPI: ${first.url}/openapi.json\\)$`, 'm'));
      assert.match(out, new RegExp(`^  Data           ${dataDir} \\(herald.db, secret.key: back both up\\)$`, 'm'));
      assert.match(out, /^  Reachable from this machine only \(HOST=127\.0\.0\.1\)/m);
      const key = /^ {4}(hk_\S+)$/m.exec(out)?.[1];
      assert.ok(key, `a first-run key in:\n${out}`);
      for (const f of ['herald.db', 'herald.db-wal']) {
        const p = join(dataDir, f);
        if (existsSync(p)) assert.ok(!readFileSync(p).includes(key), `${f} does not hold the key itself`);
      }

      const again = await spawnHerald({ dataDir, key: null, env: { HERALD_SECRET_KEY: '' } });
      try {
        assert.equal((await request(again.url, key, 'GET', '/v1/recipients')).status, 200, 'the printed key is an admin key');
        assert.equal((await request(again.url, key, 'GET', '/v1/keys')).status, 200);
      } finally {
        again.kill('SIGTERM');
        await again.exited();
      }
      assert.doesNotMatch(again.output(), /First run|^ {4}hk_/m, 'a key exists now: none is printed again');
      assert.match(again.output(), /^  API keys       npx herald keys create --scope admin --name me/m);
      const listed = herald(['keys', 'list'], { HERALD_DATA_DIR: dataDir });
      assert.match(listed.stdout, /\tadmin\tfirst-run admin\tactive$/m);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('creates no first-run key when HERALD_ADMIN_KEY is set', async () => {
    const dataDir = tempDir();
    try {
      const h = await spawnHerald({ dataDir });
      h.kill('SIGTERM');
      await h.exited();
      assert.doesNotMatch(h.output(), /First run/);
      const listed = herald(['keys', 'list'], { HERALD_DATA_DIR: dataDir });
      assert.deepEqual(listed.stdout.trim().split('\n').map((l) => l.split('\t')[3]), ['HERALD_ADMIN_KEY']);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
