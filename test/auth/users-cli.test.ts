// `herald users create`: a user of the default organization from the command line (SQLite data dir;
// the CLI opens the store directly, as `keys create` does), who can then sign in; and the
// HERALD_ADMIN_PASSWORD policy check at configuration time.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { request, startHerald, tempDir } from '../helpers/herald.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

function herald(args: string[], env: Record<string, string>, input?: string) {
  const r = spawnSync(process.execPath, ['bin/herald.js', ...args], {
    cwd: root,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HERALD_LOG_LEVEL: 'silent', ...env },
    encoding: 'utf8',
    timeout: 60_000,
    input,
  });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('herald users create', () => {
  it('creates an owner with --password-stdin who can sign in; refuses weak passwords and bad arguments', async () => {
    const dataDir = tempDir();
    const env = { HERALD_DATA_DIR: dataDir };
    try {
      const weak = herald(['users', 'create', '--email', 'ops@example.com', '--owner', '--password-stdin'], env, 'password123\n');
      assert.equal(weak.code, 1, weak.stderr);
      assert.match(weak.stderr, /commonly used/);
      const noRole = herald(['users', 'create', '--email', 'ops@example.com', '--password-stdin'], env, 'x');
      assert.equal(noRole.code, 2);
      assert.match(noRole.stderr, /--owner or --role/);
      const noTty = herald(['users', 'create', '--email', 'ops@example.com', '--owner'], env, '');
      assert.equal(noTty.code, 2);
      assert.match(noTty.stderr, /--password-stdin/);

      const made = herald(['users', 'create', '--email', 'Ops@Example.com', '--owner', '--name', 'Ops', '--password-stdin'], env, 'a sturdy passphrase\n');
      assert.equal(made.code, 0, made.stderr);
      assert.match(made.stdout, /created user usr_\S+ <Ops@Example.com>: owner of the default organization/);
      // Again with another role: the existing user's role changes, its password does not.
      const again = herald(['users', 'create', '--email', 'ops@example.com', '--role', 'viewer'], env);
      assert.equal(again.code, 0, again.stderr);
      assert.match(again.stdout, /updated user .*viewer.*password unchanged/);

      const h = await startHerald({}, { dataDir });
      try {
        const login = await request(h.url, undefined, 'POST', '/v1/auth/login', { email: 'ops@example.com', password: 'a sturdy passphrase' });
        assert.equal(login.status, 200, login.text);
        const me = await request(h.url, login.body.access_token, 'GET', '/v1/auth/me');
        assert.deepEqual(me.body.organization, { id: 'ws_default', role: 'viewer' });
      } finally {
        await h.stop({ keepData: true });
      }
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('HERALD_ADMIN_PASSWORD must meet the password policy; HERALD_ADMIN_EMAIL comes with it', () => {
    assert.throws(() => loadConfig({ HERALD_ADMIN_EMAIL: 'a@example.com', HERALD_ADMIN_PASSWORD: 'short' }), (e: unknown) => e instanceof ConfigError && e.variable === 'HERALD_ADMIN_PASSWORD' && /at least 10/.test(e.message));
    assert.throws(() => loadConfig({ HERALD_ADMIN_EMAIL: 'a@example.com', HERALD_ADMIN_PASSWORD: 'password1234' }), (e: unknown) => e instanceof ConfigError && e.variable === 'HERALD_ADMIN_PASSWORD');
    assert.throws(() => loadConfig({ HERALD_ADMIN_EMAIL: 'a@example.com' }), (e: unknown) => e instanceof ConfigError && e.variable === 'HERALD_ADMIN_PASSWORD');
    assert.throws(() => loadConfig({ HERALD_JWT_KEY: 'not a key' }), (e: unknown) => e instanceof ConfigError && e.variable === 'HERALD_JWT_KEY');
    assert.throws(() => loadConfig({ HERALD_SIGNUP: 'sometimes' }), (e: unknown) => e instanceof ConfigError && e.variable === 'HERALD_SIGNUP');
    assert.equal(loadConfig({}).signup, 'invite');
  });
});
