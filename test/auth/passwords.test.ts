// Passwords (scrypt hashes, the policy and its common list), the sign-in throttle's delays, roles,
// cookies and CSRF: the pure parts of accounts, without a server.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { commonPasswords, hashPassword, needsRehash, passwordVerdict, SCRYPT, verifyPassword } from '../../src/auth/passwords.ts';
import { checkPassword } from '../../src/domain/password-policy.ts';
import { ACCOUNT_THROTTLE, ADDRESS_THROTTLE, failureDelayMs } from '../../src/domain/login-throttle.ts';
import { roleAllows, ROLES } from '../../src/domain/roles.ts';
import { checkCsrf, parseCookies } from '../../src/auth/cookies.ts';
import { authorize } from '../../src/auth/service.ts';
import type { UserPrincipal } from '../../src/auth/principal.ts';

describe('password hashing', () => {
  it('stores scrypt$N$r$p$salt$key with the documented parameters and verifies only the right password', async () => {
    const stored = await hashPassword('a long enough passphrase');
    const [name, N, r, p, salt, key] = stored.split('$');
    assert.deepEqual([name, Number(N), Number(r), Number(p)], ['scrypt', 2 ** 15, 8, 1]);
    assert.equal(Buffer.from(salt!, 'base64url').length, SCRYPT.saltBytes);
    assert.equal(Buffer.from(key!, 'base64url').length, SCRYPT.keyBytes);
    assert.equal(await verifyPassword('a long enough passphrase', stored), true);
    assert.equal(await verifyPassword('a long enough passphrasE', stored), false);
    assert.notEqual(await hashPassword('a long enough passphrase'), stored, 'a fresh salt each time');
    assert.equal(needsRehash(stored), false);
  });

  it('verifies a hash made with other parameters by its own, and says it needs a rehash', async () => {
    const { scryptSync, randomBytes } = await import('node:crypto');
    const salt = randomBytes(16);
    const key = scryptSync('old parameters here', salt, 32, { N: 2 ** 12, r: 8, p: 1 });
    const stored = `scrypt$4096$8$1$${salt.toString('base64url')}$${key.toString('base64url')}`;
    assert.equal(await verifyPassword('old parameters here', stored), true);
    assert.equal(needsRehash(stored), true);
  });

  it('refuses malformed or unsafe stored hashes without running them', async () => {
    for (const bad of ['', 'plain', 'scrypt$1000$8$1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA', `scrypt$${2 ** 24}$8$1$AAAAAAAAAAA$AAAAAAAAAAAAAAAAAAAAAA`, 'bcrypt$2b$10$abc']) {
      assert.equal(await verifyPassword('anything at all', bad), false, bad);
    }
  });
});

describe('password policy', () => {
  it('needs at least 10 characters (code points), no composition rules', () => {
    assert.equal(checkPassword('abcdefghi', () => false).ok, false);
    assert.equal(checkPassword('abcdefghij', () => false).ok, true);
    assert.equal(checkPassword('🔑'.repeat(10), () => false).ok, true, '10 code points, 40 bytes');
    assert.equal(checkPassword('🔑'.repeat(9), () => false).ok, false);
  });

  it('refuses the bundled common passwords, case-insensitively', () => {
    const list = commonPasswords();
    assert.ok(list.size > 1500, `a real list (${list.size} entries)`);
    for (const p of ['password123', 'PASSWORD123', 'qwertyuiop', '1234567890']) {
      const v = passwordVerdict(p);
      assert.equal(v.ok, false, p);
      assert.equal(!v.ok && v.reason, 'common');
    }
    assert.equal(passwordVerdict('correct horse battery staple').ok, true);
  });
});

describe('sign-in throttle delays', () => {
  it('answers the first failures at once, then doubles up to a cap', () => {
    assert.deepEqual([1, 2, 3, 4, 5].map((f) => failureDelayMs(ACCOUNT_THROTTLE, f)), [0, 100, 200, 400, 800]);
    assert.equal(failureDelayMs(ADDRESS_THROTTLE, 20), 0);
    assert.equal(failureDelayMs(ADDRESS_THROTTLE, 21), 100);
    assert.equal(failureDelayMs(ADDRESS_THROTTLE, 50), 1000);
    assert.equal(failureDelayMs(ADDRESS_THROTTLE, 10_000), 1000);
  });
});

describe('roles', () => {
  it('viewer reads, member reads and sends, admin and owner do everything', () => {
    const table = Object.fromEntries(ROLES.map((r) => [r, ['read', 'send', 'admin'].filter((a) => roleAllows(r, a))]));
    assert.deepEqual(table, { viewer: ['read'], member: ['read', 'send'], admin: ['read', 'send', 'admin'], owner: ['read', 'send', 'admin'] });
  });

  it('authorize: a user of another organization gets 404, a role short of the action 403', () => {
    const viewer: UserPrincipal = { kind: 'user', userId: 'usr_v', workspaceId: 'ws_a', role: 'viewer', sessionId: 'ses_1' };
    assert.equal(authorize(viewer, 'read'), undefined);
    assert.equal(authorize(viewer, 'send')?.status, 403);
    assert.equal(authorize(viewer, 'read', { workspaceId: 'ws_b' })?.status, 404);
  });
});

describe('CSRF rule for cookie-authenticated requests', () => {
  const cookies = parseCookies('herald_access=a.b.c; herald_csrf=tok123');
  const req = (method: string, headers: Record<string, string>) => ({ method, protocol: 'http', headers: { host: 'herald.local:8080', ...headers } });
  it('lets safe methods through and needs Origin + a matching X-CSRF-Token on the others', () => {
    assert.equal(checkCsrf(req('GET', {}), cookies, undefined), undefined);
    assert.equal(checkCsrf(req('POST', { origin: 'http://herald.local:8080', 'x-csrf-token': 'tok123' }), cookies, undefined), undefined);
    assert.equal(checkCsrf(req('POST', { 'x-csrf-token': 'tok123' }), cookies, undefined)?.code, 'csrf_failed');
    assert.equal(checkCsrf(req('DELETE', { origin: 'http://elsewhere', 'x-csrf-token': 'tok123' }), cookies, undefined)?.code, 'csrf_failed');
    assert.equal(checkCsrf(req('POST', { origin: 'http://herald.local:8080', 'x-csrf-token': 'tok124' }), cookies, undefined)?.code, 'csrf_failed');
  });
  it('with HERALD_PUBLIC_URL, only its origin counts', () => {
    const pub = new URL('https://herald.example.com/base');
    assert.equal(checkCsrf(req('POST', { origin: 'https://herald.example.com', 'x-csrf-token': 'tok123' }), cookies, pub), undefined);
    assert.equal(checkCsrf(req('POST', { origin: 'http://herald.local:8080', 'x-csrf-token': 'tok123' }), cookies, pub)?.code, 'csrf_failed');
  });
});
