import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { generateKey } from '../../src/auth/api-keys.ts';
import { adminKeyWeakness } from '../../src/cli/admin-key.ts';

describe('admin key strength', () => {
  it('calls published, placeholder, short and monotonous keys weak', () => {
    for (const key of ['hk_walkthrough_admin_key', 'changeme', 'hk_change_me', 'HK-CHANGE-ME-PLEASE-0000000000', 'password', 'admin', 'hk_example_key_0123456789abcdef']) {
      assert.match(adminKeyWeakness(key) ?? '', /well-known or placeholder/, key);
    }
    assert.match(adminKeyWeakness('hk_Zq81xT0p') ?? '', /only 11 characters long/);
    assert.match(adminKeyWeakness('hk_' + 'ab'.repeat(20)) ?? '', /only 5 distinct characters/);
  });

  it('accepts generated keys', () => {
    for (let i = 0; i < 50; i++) {
      const key = generateKey();
      assert.equal(adminKeyWeakness(key), undefined, key);
    }
    assert.equal(adminKeyWeakness('hk_test_0123456789abcdef01234567'), undefined);
  });
});
