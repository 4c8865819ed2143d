// One authentication and one authorization: credentials become principals in auth/principal.ts,
// and auth/service.ts alone decides what a principal may do.

import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { actorOf, authenticate, fromAuthorization, type KeyLookup, type KeyPrincipal } from '../../src/auth/principal.ts';
import { authorize, may } from '../../src/auth/service.ts';
import { Problem } from '../../src/errors.ts';

const reader: KeyPrincipal = { kind: 'key', workspaceId: 'ws_a', keyId: 'key_r', scopes: ['read'] };
const admin: KeyPrincipal = { kind: 'key', workspaceId: 'ws_a', keyId: 'key_a', scopes: ['admin'] };

/** A KeyLookup over a fixed table: `hot` keys are cached, `cold` ones need resolve(). */
function lookup(hot: Record<string, KeyPrincipal>, cold: Record<string, KeyPrincipal>): KeyLookup & { resolved: string[] } {
  const resolved: string[] = [];
  return {
    resolved,
    cached: (k) => hot[k],
    resolve: async (k) => (resolved.push(k), hot[k] ?? cold[k]),
  };
}

describe('authenticate', () => {
  it('answers a cached key synchronously and an uncached one through resolve', async () => {
    const keys = lookup({ hk_hot: reader }, { hk_cold: admin });
    assert.equal(authenticate(fromAuthorization('Bearer hk_hot'), keys), reader);
    const cold = authenticate(fromAuthorization('bearer   hk_cold '), keys);
    assert.ok(cold instanceof Promise);
    assert.equal(await cold, admin);
    assert.deepEqual(keys.resolved, ['hk_cold']);
  });

  it('refuses absent, malformed, overlong and unknown credentials with 401 and WWW-Authenticate', async () => {
    const keys = lookup({}, {});
    for (const header of [undefined, '', 'Basic abc', 'Bearer', 'Bearer a b', `Bearer ${'k'.repeat(201)}`, 'Bearer hk_unknown']) {
      const r = await authenticate(fromAuthorization(header), keys);
      assert.ok(r instanceof Problem, `${header}`);
      assert.equal(r.status, 401);
      assert.equal(r.headers['www-authenticate'], 'Bearer');
    }
    assert.deepEqual(keys.resolved, ['hk_unknown'], 'only a well-formed key of sane length is looked up');
  });

  it('lets a store failure reject (never a 401)', async () => {
    const keys: KeyLookup = { cached: () => undefined, resolve: () => Promise.reject(new Error('store down')) };
    await assert.rejects(Promise.resolve(authenticate(fromAuthorization('Bearer hk_x'), keys)), /store down/);
  });

  it('names key principals key:<id>', () => assert.equal(actorOf(reader), 'key:key_r'));
});

describe('authorize', () => {
  it('grants an action by scope, admin implying every action', () => {
    assert.equal(authorize(reader, 'read'), undefined);
    assert.equal(authorize(reader, undefined), undefined);
    for (const a of ['read', 'send', 'admin'] as const) assert.equal(authorize(admin, a), undefined);
    const refused = authorize(reader, 'send');
    assert.ok(refused instanceof Problem);
    assert.equal(refused.status, 403);
    assert.match(refused.message, /"send" scope/);
    assert.equal(may(reader, 'admin'), false);
  });

  it("answers 404 for another workspace's resource, whatever the scopes", () => {
    assert.equal(authorize(admin, 'read', { workspaceId: 'ws_a' }), undefined);
    assert.equal(authorize(admin, 'read', { workspaceId: 'ws_b' })?.status, 404);
    assert.equal(authorize(reader, 'admin', { workspaceId: 'ws_b' })?.status, 404);
  });
});
