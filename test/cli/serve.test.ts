// `herald serve` as a real process: what it tells the person who started it, and what it refuses.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync, rmSync } from 'node:fs';
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
});
