import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { addressChannels, chainStep } from '../../src/domain/routing.ts';

const none = { email: null, phone: null, webhook_url: null, webhook_disabled_at: null, pushover_user_key: null, slack_webhook_url: null, discord_webhook_url: null, kakao_phone: null, address_disabled: null };

describe('addressChannels', () => {
  it('maps each address to its channel', () => {
    assert.deepEqual([...addressChannels({ ...none, email: 'a@b.c', phone: '+1', webhook_url: 'https://x', pushover_user_key: 'u', slack_webhook_url: 's', discord_webhook_url: 'd', kakao_phone: '+82' })].sort(), [
      'discord', 'email', 'inbox', 'kakao', 'pushover', 'slack', 'sms', 'webhook',
    ]);
    assert.deepEqual([...addressChannels(none)], ['inbox'], 'every recipient has an in-app inbox');
  });

  it('leaves out a webhook answered 410 and addresses a vendor reported gone', () => {
    const r = { ...none, webhook_url: 'https://x', webhook_disabled_at: 1, slack_webhook_url: 's', phone: '+1', address_disabled: 'slack sms' };
    assert.deepEqual([...addressChannels(r)], ['inbox']);
  });
});

describe('chainStep (routing "first")', () => {
  it('succeeded once any delivery of the step succeeded, even with others failed or under way', () => {
    for (const ok of ['sent', 'delivered', 'read', 'acknowledged'] as const) assert.equal(chainStep(['exhausted', ok, 'sending']), 'succeeded');
  });

  it('failed only when every delivery of the step failed', () => {
    assert.equal(chainStep(['exhausted', 'discarded', 'undelivered', 'skipped', 'deduplicated']), 'failed');
    assert.equal(chainStep(['exhausted', 'failed']), 'under_way', 'a failed attempt with retries left is not a failed step');
    for (const waiting of ['pending', 'sending', 'scheduled', 'standby'] as const) assert.equal(chainStep(['exhausted', waiting]), 'under_way');
  });
});
