// Every policy decision through the real HTTP API: kinds, preferences, quiet hours in the
// recipient's time zone, channel blackout windows, per recipient x channel rate limits (and the
// 429), templates per locale and channel, and cancellation of what a policy held back. Each is
// checked in the 202 answer, in GET /v1/notifications/{id}, and in what the receivers got.
// Scheduling, cancellation of send_at and deduplication are in schedule.test.ts; routing "first"
// step by step in routing.test.ts; per API key limits in rate-limit.test.ts. On each store (with
// PostgreSQL, the rate limits live in Redis), and across two nodes sharing one Redis.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { DateTime } from 'luxon';
import { describeOnStores, startHeraldOn, waitFor, type ApiResponse, type TestHerald } from '../helpers/herald.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';
import { startSmtp, type SmtpSink } from '../helpers/smtp.ts';
import { mailContent } from '../helpers/mime.ts';

const MINUTE = 60_000;
const HOUR = 3_600_000;
// Zones without DST, so a local "HH:MM" is a fixed instant; Kathmandu's +05:45 also proves that
// the zone's own offset (not whole hours, not the server's zone) decides.
const KATHMANDU = 'Asia/Kathmandu';
const SEOUL = 'Asia/Seoul';
const HONOLULU = 'Pacific/Honolulu';

const hhmm = (at: number, zone: string) => DateTime.fromMillis(at, { zone }).toFormat('HH:mm');
const iso = (at: number) => new Date(at).toISOString();
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/**
 * A daily window in `zone` from an hour before now to an hour after (crossing midnight when now is
 * near it), and the instant it ends: the local "HH:MM" end, i.e. now + 1 h cut to the minute.
 */
function aroundNow(zone: string): { start: string; end: string; endsAt: number } {
  const now = Date.now();
  return { start: hhmm(now - HOUR, zone), end: hhmm(now + HOUR, zone), endsAt: Math.floor((now + HOUR) / MINUTE) * MINUTE };
}

const window = ({ start, end }: { start: string; end: string }) => ({ start, end });

/** The problem+json answer with this status and code. */
function assertProblem(r: ApiResponse, status: number, code: string): void {
  assert.equal(r.status, status, r.text);
  assert.match(r.headers.get('content-type') ?? '', /application\/problem\+json/);
  assert.equal(r.body.code, code, r.text);
}

describeOnStores('policy decisions through the API', (store) => {
  let h: TestHerald;
  let rx: Receiver;
  let smtp: SmtpSink;

  before(async () => {
    rx = await startReceiver();
    smtp = await startSmtp();
    h = await startHeraldOn(store, { HERALD_SMTP_URL: smtp.url, HERALD_EMAIL_FROM: 'Herald <herald@example.test>' });
  });
  after(async () => {
    await h?.stop();
    await rx?.close();
    await smtp?.close();
  });

  /** A recipient with a webhook at <receiver>/<id> and, unless `email: null`, <id>@example.test. */
  async function recipient(id: string, extra: Record<string, unknown> = {}): Promise<void> {
    const r = await h.api('PUT', `/v1/recipients/${id}`, { webhook: { url: `${rx.url}/${id}` }, email: `${id}@example.test`, ...extra });
    assert.equal(r.status, 201, r.text);
  }
  async function kind(name: string, policy: Record<string, unknown>): Promise<void> {
    const r = await h.api('PUT', `/v1/kinds/${name}`, { mandatory: false, channels: null, routing: 'all', rate_limits: null, ...policy });
    assert.ok(r.status === 201 || r.status === 200, r.text);
  }
  async function preferences(id: string, prefs: Record<string, unknown>): Promise<void> {
    const r = await h.api('PUT', `/v1/recipients/${id}/preferences`, { kinds: {}, quiet_hours: null, ...prefs });
    assert.equal(r.status, 200, r.text);
  }
  async function settings(body: Record<string, unknown>): Promise<void> {
    const r = await h.api('PUT', '/v1/settings', body);
    assert.equal(r.status, 200, r.text);
  }
  async function send(body: Record<string, unknown>): Promise<{ id: string; deliveries: any[] }> {
    const r = await h.api('POST', '/v1/notifications', body);
    assert.equal(r.status, 202, r.text);
    return r.body;
  }
  const view = async (id: string) => {
    const r = await h.api('GET', `/v1/notifications/${id}`);
    assert.equal(r.status, 200, r.text);
    return r.body;
  };
  const byChannel = (deliveries: any[]): Record<string, any> => Object.fromEntries(deliveries.map((d) => [d.channel, d]));
  /** [channel, status, reason] of each delivery, in order. */
  const decisions = (deliveries: any[]) => deliveries.map((d) => [d.channel, d.status, d.reason ?? null]);
  const hooks = (id: string) => rx.received.filter((r) => r.path === `/${id}`);
  const hookFor = (deliveryId: string) => rx.received.filter((r) => r.headers['webhook-id'] === deliveryId);
  const mails = (id: string) => smtp.messages.filter((m) => m.to.includes(`${id}@example.test`));
  const finished = async (id: string, status = 'sent') => waitFor(async () => ((await view(id)).status === status ? view(id) : undefined), 10_000, `notification ${id} ${status}`);
  const listed = async (recipientId: string) => (await h.api('GET', `/v1/notifications?recipient=${recipientId}&limit=100`)).body.data.length as number;

  // Started first, checked last: a quiet-hours deferral that ends at the next minute boundary (at
  // least 10 s away), so the rest of the file runs while it waits.
  let firing: { notification: string; delivery: string; endsAt: number } | undefined;

  describe('quiet hours: the deferred delivery goes at the window end', () => {
    it('is scheduled for the minute its window ends', async () => {
      const now = Date.now();
      let endsAt = Math.ceil((now + 1) / MINUTE) * MINUTE;
      if (endsAt - now < 10_000) endsAt += MINUTE;
      await recipient('fern', { email: null, timezone: KATHMANDU });
      await preferences('fern', { quiet_hours: { start: hhmm(endsAt - 2 * HOUR, KATHMANDU), end: hhmm(endsAt, KATHMANDU) } });
      const sent = await send({ to: 'fern', kind: 'marketing', title: 'Deferred' });
      assert.equal(Date.now() < endsAt, true, 'accepted inside the window');
      assert.deepEqual(decisions(sent.deliveries), [['webhook', 'scheduled', 'quiet_hours']]);
      assert.equal(sent.deliveries[0].scheduled_for, iso(endsAt));
      firing = { notification: sent.id, delivery: sent.deliveries[0].id, endsAt };
    });
  });

  describe('kinds', () => {
    it('the seeded kinds exist', async () => {
      const r = await h.api('GET', '/v1/kinds');
      assert.equal(r.status, 200, r.text);
      const byName = Object.fromEntries(r.body.data.map((k: any) => [k.kind, k]));
      for (const name of ['security', 'transactional', 'marketing']) assert.equal(byName[name]?.default, true, `${name} is seeded`);
      assert.equal(byName.security.mandatory, true);
      assert.equal(byName.transactional.mandatory, false);
      assert.equal(byName.marketing.quiet_hours, 'defer');
    });

    it("a kind's channels are its priority order, and its routing applies", async () => {
      await recipient('kara');
      const put = await h.api('PUT', '/v1/kinds/alert', { mandatory: false, channels: ['email', 'webhook'], routing: 'first', rate_limits: null });
      assert.equal(put.status, 201, put.text);
      const first = await send({ to: 'kara', kind: 'alert', title: 'Alert', body: 'first' });
      assert.deepEqual(decisions(first.deliveries), [['email', 'pending', null], ['webhook', 'standby', 'routing_first']]);
      const done = await finished(first.id);
      assert.deepEqual(decisions(done.deliveries), [['email', 'sent', null], ['webhook', 'skipped', 'earlier_channel_sent']]);
      assert.equal(mails('kara').length, 1);
      assert.equal(hooks('kara').length, 0, 'the lower-priority channel is not used when the first one works');

      const replaced = await h.api('PUT', '/v1/kinds/alert', { mandatory: false, channels: ['webhook'], routing: 'all', rate_limits: null });
      assert.equal(replaced.status, 200, replaced.text);
      const second = await send({ to: 'kara', kind: 'alert', title: 'Alert', body: 'second' });
      assert.deepEqual(decisions(second.deliveries), [['webhook', 'pending', null]], 'only the kind\'s channels are candidates');
      await finished(second.id);
      const [hook] = hooks('kara');
      assert.ok(hook);
      const payload = JSON.parse(hook.body);
      assert.equal(payload.kind, 'alert');
      assert.equal(payload.body, 'second');
      assert.equal(mails('kara').length, 1);
    });

    it('security (mandatory) reaches a recipient who opted out of everything and is in quiet hours', async () => {
      await recipient('sam', { timezone: KATHMANDU });
      await preferences('sam', {
        kinds: { transactional: { allowed: false }, marketing: { allowed: false }, alert: { allowed: false } },
        quiet_hours: window(aroundNow(KATHMANDU)),
      });
      const refused = await h.api('PUT', '/v1/recipients/sam/preferences', { kinds: { security: { allowed: false } }, quiet_hours: null });
      assertProblem(refused, 422, 'validation_failed');
      assert.deepEqual(refused.body.errors.map((e: any) => e.path), ['body.kinds.security.allowed']);

      const other = await send({ to: 'sam', kind: 'transactional', title: 'Receipt' });
      assert.deepEqual(decisions(other.deliveries), [['webhook', 'skipped', 'opted_out'], ['email', 'skipped', 'opted_out']]);

      const urgent = await send({ to: 'sam', kind: 'security', title: 'New sign-in', body: 'From a new device' });
      assert.deepEqual(decisions(urgent.deliveries), [['webhook', 'pending', null], ['email', 'pending', null]]);
      const done = await finished(urgent.id);
      assert.deepEqual(decisions(done.deliveries), [['webhook', 'sent', null], ['email', 'sent', null]]);
      assert.equal(hooks('sam').length, 1);
      assert.equal(JSON.parse(hooks('sam')[0]!.body).title, 'New sign-in');
      assert.equal(mails('sam').length, 1);
      assert.equal((await view(other.id)).status, 'skipped');
    });
  });

  describe('preferences', () => {
    it('opted out of a kind: every delivery skipped (opted_out), the notification skipped, nothing received', async () => {
      await recipient('olive');
      await preferences('olive', { kinds: { marketing: { allowed: false }, transactional: { channels: ['email'] } } });
      const sent = await send({ to: 'olive', kind: 'marketing', title: 'Sale' });
      assert.deepEqual(decisions(sent.deliveries), [['webhook', 'skipped', 'opted_out'], ['email', 'skipped', 'opted_out']]);
      const v = await view(sent.id);
      assert.equal(v.status, 'skipped');
      assert.deepEqual(decisions(v.deliveries), [['webhook', 'skipped', 'opted_out'], ['email', 'skipped', 'opted_out']]);
      assert.ok(v.deliveries.every((d: any) => d.completed_at !== null && d.next_attempt_at === null && d.attempts === 0));

      // A channel preference restricts the kind's channels; the other channel is opted_out.
      const receipt = await send({ to: 'olive', kind: 'transactional', title: 'Receipt', body: 'Thanks' });
      assert.deepEqual(decisions(receipt.deliveries), [['webhook', 'skipped', 'opted_out'], ['email', 'pending', null]]);
      const done = await finished(receipt.id);
      assert.deepEqual(decisions(done.deliveries), [['webhook', 'skipped', 'opted_out'], ['email', 'sent', null]]);
      assert.equal(mails('olive').length, 1, 'only the receipt, by email');
      assert.equal(mailContent(mails('olive')[0]!.raw).subject, 'Receipt');
      assert.equal(hooks('olive').length, 0);

      // Asking for the opted-out channel explicitly does not get around it.
      const asked = await send({ to: 'olive', kind: 'transactional', title: 'Receipt', channels: ['webhook'] });
      assert.deepEqual(decisions(asked.deliveries), [['webhook', 'skipped', 'opted_out']]);
      await sleep(300);
      assert.equal(hooks('olive').length, 0);
    });

    it('opting out of a mandatory kind is 422 and changes nothing', async () => {
      await recipient('otto');
      await preferences('otto', { kinds: { marketing: { allowed: false } } });
      const r = await h.api('PUT', '/v1/recipients/otto/preferences', { kinds: { security: { allowed: false }, marketing: { allowed: true } }, quiet_hours: null });
      assertProblem(r, 422, 'validation_failed');
      assert.deepEqual(r.body.errors.map((e: any) => e.path), ['body.kinds.security.allowed']);
      assert.deepEqual((await h.api('GET', '/v1/recipients/otto/preferences')).body.kinds, { marketing: { allowed: false } });
    });

    it('a requested channel the recipient has no address on is skipped (no_address); one not configured, channel_not_configured', async () => {
      await recipient('nora', { email: null });
      const sent = await send({ to: 'nora', title: 'Hi', channels: ['webhook', 'email', 'sms'] });
      assert.deepEqual(decisions(sent.deliveries), [['webhook', 'pending', null], ['email', 'skipped', 'no_address'], ['sms', 'skipped', 'channel_not_configured']]);
      const done = await finished(sent.id);
      assert.deepEqual(decisions(done.deliveries), [['webhook', 'sent', null], ['email', 'skipped', 'no_address'], ['sms', 'skipped', 'channel_not_configured']]);
    });
  });

  describe("quiet hours in the recipient's time zone", () => {
    it('defer: scheduled (quiet_hours) until the window ends, shown in the answer and in GET; not sent before', async () => {
      await kind('qh.defer', { quiet_hours: 'defer' });
      await recipient('quinn', { timezone: KATHMANDU });
      const w = aroundNow(KATHMANDU);
      await preferences('quinn', { quiet_hours: { start: w.start, end: w.end } });
      const prefs = (await h.api('GET', '/v1/recipients/quinn/preferences')).body;
      assert.equal(prefs.timezone, KATHMANDU);

      const sent = await send({ to: 'quinn', kind: 'qh.defer', title: 'Digest' });
      assert.deepEqual(decisions(sent.deliveries), [['webhook', 'scheduled', 'quiet_hours'], ['email', 'scheduled', 'quiet_hours']]);
      for (const d of sent.deliveries) assert.equal(d.scheduled_for, iso(w.endsAt));
      const v = await view(sent.id);
      assert.equal(v.status, 'accepted');
      for (const d of v.deliveries) assert.deepEqual([d.status, d.reason, d.next_attempt_at], ['scheduled', 'quiet_hours', iso(w.endsAt)]);

      // The seeded marketing kind defers too.
      const promo = await send({ to: 'quinn', kind: 'marketing', title: 'Promo' });
      assert.deepEqual(decisions(promo.deliveries), [['webhook', 'scheduled', 'quiet_hours'], ['email', 'scheduled', 'quiet_hours']]);

      // ignore (transactional's default): sent now, through the quiet hours; used as the barrier.
      const now = await send({ to: 'quinn', kind: 'transactional', title: 'Receipt' });
      assert.deepEqual(decisions(now.deliveries), [['webhook', 'pending', null], ['email', 'pending', null]]);
      await finished(now.id);
      await sleep(300);
      assert.deepEqual(hooks('quinn').map((r) => JSON.parse(r.body).title), ['Receipt']);
      assert.deepEqual(mails('quinn').map((m) => mailContent(m.raw).subject), ['Receipt']);
      assert.equal((await view(sent.id)).status, 'accepted');

      // What a policy held back can be cancelled like anything else not sent.
      const cancelled = await h.api('DELETE', `/v1/notifications/${promo.id}`);
      assert.equal(cancelled.status, 200, cancelled.text);
      assert.equal(cancelled.body.status, 'cancelled');
      assert.deepEqual(cancelled.body.deliveries.map((d: any) => d.status), ['cancelled', 'cancelled']);
    });

    it("the window is the recipient's local time: the same hours elsewhere do not hold a send back", async () => {
      const w = aroundNow(KATHMANDU);
      await recipient('hana', { email: null, timezone: HONOLULU });
      await preferences('hana', { quiet_hours: { start: w.start, end: w.end } });
      const sent = await send({ to: 'hana', kind: 'qh.defer', title: 'x' });
      assert.deepEqual(decisions(sent.deliveries), [['webhook', 'pending', null]]);
      await recipient('utc', { email: null });
      await preferences('utc', { quiet_hours: { start: w.start, end: w.end } });
      assert.equal((await h.api('GET', '/v1/recipients/utc/preferences')).body.timezone, 'UTC');
      assert.deepEqual(decisions((await send({ to: 'utc', kind: 'qh.defer', title: 'x' })).deliveries), [['webhook', 'pending', null]]);
      const u = aroundNow('UTC');
      await preferences('utc', { quiet_hours: { start: u.start, end: u.end } });
      const held = await send({ to: 'utc', kind: 'qh.defer', title: 'x' });
      assert.deepEqual(decisions(held.deliveries), [['webhook', 'scheduled', 'quiet_hours']]);
      assert.equal(held.deliveries[0].scheduled_for, iso(u.endsAt));
    });

    it('drop: skipped (quiet_hours), nothing received', async () => {
      await kind('qh.drop', { quiet_hours: 'drop' });
      await recipient('drew', { timezone: SEOUL });
      await preferences('drew', { quiet_hours: window(aroundNow(SEOUL)) });
      const sent = await send({ to: 'drew', kind: 'qh.drop', title: 'Dropped' });
      assert.deepEqual(decisions(sent.deliveries), [['webhook', 'skipped', 'quiet_hours'], ['email', 'skipped', 'quiet_hours']]);
      assert.ok(sent.deliveries.every((d: any) => d.scheduled_for === undefined));
      const v = await view(sent.id);
      assert.equal(v.status, 'skipped');
      assert.deepEqual(decisions(v.deliveries), [['webhook', 'skipped', 'quiet_hours'], ['email', 'skipped', 'quiet_hours']]);
      await kind('qh.ignore', { quiet_hours: 'ignore' });
      const through = await send({ to: 'drew', kind: 'qh.ignore', title: 'Through' });
      assert.deepEqual(decisions(through.deliveries), [['webhook', 'pending', null], ['email', 'pending', null]]);
      await finished(through.id);
      assert.deepEqual(hooks('drew').map((r) => JSON.parse(r.body).title), ['Through']);
      assert.deepEqual(mails('drew').map((m) => mailContent(m.raw).subject), ['Through']);
    });
  });

  describe('channel blackout windows', () => {
    const w = aroundNow(SEOUL);
    before(async () => {
      await kind('bo.defer', { blackout: 'defer' });
      await kind('bo.fallback', { blackout: 'fallback' });
      await recipient('bea');
      await recipient('wes', { email: null });
      await settings({ channel_blackouts: { webhook: { start: w.start, end: w.end, timezone: SEOUL } } });
    });
    after(() => settings({}));

    it('defer: the channel waits for the window end (scheduled, blackout); the others go now', async () => {
      const sent = await send({ to: 'bea', kind: 'bo.defer', title: 'Night' });
      assert.deepEqual(decisions(sent.deliveries), [['webhook', 'scheduled', 'blackout'], ['email', 'pending', null]]);
      assert.equal(byChannel(sent.deliveries).webhook.scheduled_for, iso(w.endsAt));
      await waitFor(() => mails('bea').length === 1, 10_000, 'the email');
      const v = byChannel((await view(sent.id)).deliveries);
      assert.deepEqual([v.webhook.status, v.webhook.reason, v.webhook.next_attempt_at], ['scheduled', 'blackout', iso(w.endsAt)]);
      await waitFor(async () => byChannel((await view(sent.id)).deliveries).email.status === 'sent', 10_000, 'email sent');
      assert.equal((await view(sent.id)).status, 'in_progress');
      assert.equal(hooks('bea').length, 0);
    });

    it('fallback: the blacked-out channel is skipped (blackout) while another goes', async () => {
      const sent = await send({ to: 'bea', kind: 'bo.fallback', title: 'Night 2' });
      assert.deepEqual(decisions(sent.deliveries), [['webhook', 'skipped', 'blackout'], ['email', 'pending', null]]);
      const done = await finished(sent.id);
      assert.deepEqual(decisions(done.deliveries), [['webhook', 'skipped', 'blackout'], ['email', 'sent', null]]);
      assert.deepEqual(mails('bea').map((m) => mailContent(m.raw).subject), ['Night', 'Night 2']);
      assert.equal(hooks('bea').length, 0);
      // The seeded transactional kind falls back too.
      const receipt = await send({ to: 'bea', title: 'Receipt' });
      assert.deepEqual(decisions(receipt.deliveries), [['webhook', 'skipped', 'blackout'], ['email', 'pending', null]]);
    });

    it('fallback with no other channel waits instead of losing the notification', async () => {
      const sent = await send({ to: 'wes', kind: 'bo.fallback', title: 'Only hook' });
      assert.deepEqual(decisions(sent.deliveries), [['webhook', 'scheduled', 'blackout']]);
      assert.equal(sent.deliveries[0].scheduled_for, iso(w.endsAt));
    });

    it('outside the window (settings cleared) the channel goes now', async () => {
      await settings({});
      const sent = await send({ to: 'wes', kind: 'bo.defer', title: 'Day' });
      assert.deepEqual(decisions(sent.deliveries), [['webhook', 'pending', null]]);
      await finished(sent.id);
      assert.deepEqual(hooks('wes').map((r) => JSON.parse(r.body).title), ['Day']);
    });
  });

  describe('rate limits per recipient and channel', () => {
    it('throttle defer: beyond the limit the channel is throttled until a token is back; other channels go', async () => {
      await kind('rl.defer', { rate_limits: { webhook: { limit: 2, per: '1m' } }, throttle: 'defer' });
      await recipient('rita');
      const t0 = Date.now();
      const first = await send({ to: 'rita', kind: 'rl.defer', title: '1' });
      const second = await send({ to: 'rita', kind: 'rl.defer', title: '2' });
      const third = await send({ to: 'rita', kind: 'rl.defer', title: '3' });
      const t3 = Date.now();
      for (const n of [first, second]) assert.deepEqual(decisions(n.deliveries), [['webhook', 'pending', null], ['email', 'pending', null]]);
      assert.deepEqual(decisions(third.deliveries), [['webhook', 'throttled', 'rate_limit'], ['email', 'pending', null]]);
      // 2 per minute: a token is back 30 s after the first was taken.
      const at = Date.parse(byChannel(third.deliveries).webhook.scheduled_for);
      assert.ok(at >= t0 + 29_000 && at <= t3 + 30_000, `scheduled_for ${iso(at)} is 30 s after the first send (${iso(t0)}..${iso(t3)})`);
      const v = byChannel((await view(third.id)).deliveries);
      assert.deepEqual([v.webhook.status, v.webhook.reason, v.webhook.next_attempt_at], ['throttled', 'rate_limit', iso(at)]);

      // Another recipient has buckets of their own.
      await recipient('rudi');
      assert.deepEqual(decisions((await send({ to: 'rudi', kind: 'rl.defer', title: 'own bucket', channels: ['webhook'] })).deliveries), [['webhook', 'pending', null]]);

      await waitFor(() => mails('rita').length === 3 && hooks('rita').length === 2, 10_000, 'two webhooks and three emails');
      await sleep(300);
      assert.deepEqual(hooks('rita').map((r) => JSON.parse(r.body).title).sort(), ['1', '2']);
      assert.equal(hookFor(v.webhook.id).length, 0);

      const cancelled = await h.api('DELETE', `/v1/notifications/${third.id}`);
      assert.equal(cancelled.status, 200, cancelled.text);
      assert.deepEqual([byChannel(cancelled.body.deliveries).webhook.status, byChannel(cancelled.body.deliveries).webhook.reason], ['cancelled', 'cancelled']);
    });

    it('a throttled delivery goes when its token is back, not before', async () => {
      await kind('rl.fast', { rate_limits: { webhook: { limit: 1, per: '2s' } }, throttle: 'defer' });
      await recipient('tess', { email: null });
      await recipient('theo', { email: null });
      const first = await send({ to: ['tess', 'theo'], kind: 'rl.fast', title: 'first' });
      assert.deepEqual(first.deliveries.map((d: any) => d.status), ['pending', 'pending']);
      const second = await send({ to: ['tess', 'theo'], kind: 'rl.fast', title: 'second' });
      assert.deepEqual(second.deliveries.map((d: any) => [d.status, d.reason]), [['throttled', 'rate_limit'], ['throttled', 'rate_limit']]);
      const d = second.deliveries.find((x: any) => x.recipient === 'tess');
      const at = Date.parse(d.scheduled_for);
      assert.ok(at > Date.now() + 1000, 'a token is back 2 s after the first send');
      await waitFor(() => hookFor(d.id).length > 0, 15_000, 'the throttled webhook');
      assert.ok(hookFor(d.id)[0]!.at >= at, `received ${iso(hookFor(d.id)[0]!.at)}, due ${d.scheduled_for}`);
      assert.deepEqual(hooks('tess').map((r) => JSON.parse(r.body).title), ['first', 'second']);
      await finished(second.id);
    });

    it('throttle drop: beyond the limit the channel is skipped (throttled)', async () => {
      await kind('rl.drop', { rate_limits: { webhook: { limit: 1, per: '1h' } }, throttle: 'drop' });
      await recipient('rex');
      const first = await send({ to: 'rex', kind: 'rl.drop', title: 'kept' });
      assert.deepEqual(decisions(first.deliveries), [['webhook', 'pending', null], ['email', 'pending', null]]);
      const second = await send({ to: 'rex', kind: 'rl.drop', title: 'dropped' });
      assert.deepEqual(decisions(second.deliveries), [['webhook', 'skipped', 'throttled'], ['email', 'pending', null]]);
      assert.equal(second.deliveries[0].scheduled_for, undefined);
      const done = await finished(second.id);
      assert.deepEqual(decisions(done.deliveries), [['webhook', 'skipped', 'throttled'], ['email', 'sent', null]]);
      await finished(first.id);
      assert.deepEqual(hooks('rex').map((r) => JSON.parse(r.body).title), ['kept']);
    });

    it('a single-recipient send throttled on every channel is 429 rate_limited with Retry-After, and nothing is stored', async () => {
      await kind('rl.one', { rate_limits: { '*': { limit: 1, per: '1h' } } });
      await recipient('rae');
      const first = await send({ to: 'rae', kind: 'rl.one', title: 'one' });
      assert.deepEqual(decisions(first.deliveries), [['webhook', 'pending', null], ['email', 'pending', null]]);
      const before = await listed('rae');
      const r = await h.api('POST', '/v1/notifications', { to: 'rae', kind: 'rl.one', title: 'two' });
      assertProblem(r, 429, 'rate_limited');
      const retryAfter = Number(r.headers.get('retry-after'));
      assert.ok(Number.isInteger(retryAfter) && retryAfter > 3500 && retryAfter <= 3600, `Retry-After ${r.headers.get('retry-after')}`);
      assert.equal(await listed('rae'), before, 'nothing stored');
      // Throttle drop too: the whole send would be lost, so it is refused instead.
      const dropped = await h.api('POST', '/v1/notifications', { to: 'rex', kind: 'rl.drop', title: 'x', channels: ['webhook'] });
      assertProblem(dropped, 429, 'rate_limited');
      assert.ok(Number(dropped.headers.get('retry-after')) > 3500);
    });

    it('a deduplicated delivery takes no token: duplicates are deduplicated, not 429, and leave the budget alone', async () => {
      await kind('rl.dedupe', { rate_limits: { '*': { limit: 2, per: '1h' } } });
      await recipient('dina', { email: null });
      const first = await send({ to: 'dina', kind: 'rl.dedupe', title: 'disk full', dedupe_key: 'disk-1' });
      assert.deepEqual(decisions(first.deliveries), [['webhook', 'pending', null]]);
      for (let i = 0; i < 3; i++) {
        const again = await h.api('POST', '/v1/notifications', { to: 'dina', kind: 'rl.dedupe', title: 'disk full', dedupe_key: 'disk-1' });
        assert.equal(again.status, 202, again.text);
        assert.deepEqual(decisions(again.body.deliveries), [['webhook', 'deduplicated', `duplicate_of:${first.id}`]]);
      }
      const other = await send({ to: 'dina', kind: 'rl.dedupe', title: 'something else' });
      assert.deepEqual(decisions(other.deliveries), [['webhook', 'pending', null]], 'the second token is still there');
      const third = await h.api('POST', '/v1/notifications', { to: 'dina', kind: 'rl.dedupe', title: 'one too many' });
      assertProblem(third, 429, 'rate_limited');
    });

    it('a multi-recipient send is never 429: the throttled recipients are throttled, the others go', async () => {
      await recipient('ray');
      const sent = await send({ to: ['rae', 'ray'], kind: 'rl.one', title: 'both' });
      const rows = sent.deliveries.map((d: any) => [d.recipient, d.channel, d.status, d.reason ?? null]).sort((x: string[], y: string[]) => (x[0]! + x[1]!).localeCompare(y[0]! + y[1]!));
      assert.deepEqual(rows, [
        ['rae', 'email', 'throttled', 'rate_limit'],
        ['rae', 'webhook', 'throttled', 'rate_limit'],
        ['ray', 'email', 'pending', null],
        ['ray', 'webhook', 'pending', null],
      ]);
      for (const d of sent.deliveries.filter((d: any) => d.recipient === 'rae')) assert.ok(Date.parse(d.scheduled_for) > Date.now() + 50 * MINUTE);
      const all = await h.api('POST', '/v1/notifications', { to: ['rae', 'ray'], kind: 'rl.one', title: 'both again' });
      assert.equal(all.status, 202, all.text);
      assert.deepEqual(all.body.deliveries.map((d: any) => d.status), ['throttled', 'throttled', 'throttled', 'throttled']);
      assert.equal((await view(all.body.id)).status, 'accepted');
    });
  });

  describe('templates', () => {
    const NAME = '<Kim & "Lee">';
    const ESCAPED = '&lt;Kim &amp; &quot;Lee&quot;&gt;';
    const data = { name: NAME, code: 42 };
    before(async () => {
      const put = await h.api('PUT', '/v1/templates/welcome', {
        variants: [
          { locale: 'en', title: 'Hello {{name}}', body: 'Your code is {{code}}' },
          { locale: 'en', channel: 'webhook', title: '[hook] Hello {{name}}', body: 'code={{code}}' },
          { locale: 'ko', title: '안녕하세요 {{name}}님', body: '코드: {{code}}' },
          { locale: 'ko', channel: 'email', title: '안녕하세요 {{name}}님', body: '메일 코드: {{code}}', subject: '[메일] {{name}}님', html: '<p>{{name}}님, 코드 <b>{{code}}</b></p>' },
        ],
      });
      assert.equal(put.status, 201, put.text);
      assert.equal(put.body.version, 1);
      await recipient('kim', { locale: 'ko-KR' });
      await recipient('park', { locale: 'ko', email: null });
      await recipient('dupont', { locale: 'fr' });
      await settings({ default_locale: 'en' });
    });
    after(() => settings({}));

    it('each delivery gets its locale and channel variant; data is HTML-escaped in email HTML only', async () => {
      const sent = await send({ to: ['kim', 'park', 'dupont'], template: 'welcome', data });
      await finished(sent.id);
      const hook = (id: string) => {
        assert.equal(hooks(id).length, 1, `one webhook for ${id}`);
        const p = JSON.parse(hooks(id)[0]!.body);
        return [p.title, p.body];
      };
      // ko-KR -> ko: the Korean default variant (the language wins over the English webhook variant).
      assert.deepEqual(hook('kim'), [`안녕하세요 ${NAME}님`, '코드: 42']);
      assert.deepEqual(hook('park'), [`안녕하세요 ${NAME}님`, '코드: 42']);
      // fr -> the workspace default en, and its webhook variant.
      assert.deepEqual(hook('dupont'), [`[hook] Hello ${NAME}`, 'code=42']);

      const kimMail = mailContent(mails('kim')[0]!.raw);
      assert.equal(kimMail.subject, `[메일] ${NAME}님`);
      assert.equal(kimMail.text.trim(), '메일 코드: 42');
      assert.equal(kimMail.html.trim(), `<p>${ESCAPED}님, 코드 <b>42</b></p>`);
      // The en default variant on email: no html of its own, so Herald's escaped HTML of the text.
      const dupontMail = mailContent(mails('dupont')[0]!.raw);
      assert.equal(dupontMail.subject, `Hello ${NAME}`);
      assert.equal(dupontMail.text.trim(), 'Your code is 42');
      assert.ok(dupontMail.html.includes(`Hello ${ESCAPED}`) && !dupontMail.html.includes(NAME), dupontMail.html);
    });

    it('the workspace default locale is the last fallback', async () => {
      await settings({ default_locale: 'ko' });
      const sent = await send({ to: 'dupont', template: 'welcome', data });
      await finished(sent.id);
      assert.deepEqual(JSON.parse(hooks('dupont')[1]!.body).title, `안녕하세요 ${NAME}님`);
      assert.equal(mailContent(mails('dupont')[1]!.raw).subject, `[메일] ${NAME}님`);
      await settings({ default_locale: 'en' });
    });

    it('missing variables: 422 missing_variables listing them, nothing stored', async () => {
      const before = await listed('kim');
      const r = await h.api('POST', '/v1/notifications', { to: ['kim', 'dupont'], template: 'welcome', data: { name: 'x' } });
      assertProblem(r, 422, 'missing_variables');
      assert.deepEqual(r.body.missing, ['code']);
      const none = await h.api('POST', '/v1/notifications', { to: 'kim', template: 'welcome' });
      assertProblem(none, 422, 'missing_variables');
      assert.deepEqual(none.body.missing, ['code', 'name']);
      assert.equal(await listed('kim'), before);
      const unknown = await h.api('POST', '/v1/notifications', { to: 'kim', template: 'nope', data });
      assertProblem(unknown, 422, 'validation_failed');
      assert.equal(unknown.body.errors[0].path, 'body.template');
    });

    it('render previews the variant a send would use', async () => {
      const ko = await h.api('POST', '/v1/templates/welcome/render', { locale: 'ko-KR', channel: 'email', data });
      assert.equal(ko.status, 200, ko.text);
      assert.deepEqual(ko.body, {
        key: 'welcome',
        version: 1,
        variant: { locale: 'ko', channel: 'email' },
        title: `안녕하세요 ${NAME}님`,
        body: '메일 코드: 42',
        subject: `[메일] ${NAME}님`,
        html: `<p>${ESCAPED}님, 코드 <b>42</b></p>`,
      });
      const fr = await h.api('POST', '/v1/templates/welcome/render', { locale: 'fr', channel: 'webhook', data });
      assert.deepEqual([fr.body.variant, fr.body.title], [{ locale: 'en', channel: 'webhook' }, `[hook] Hello ${NAME}`]);
      const missing = await h.api('POST', '/v1/templates/welcome/render', { locale: 'ko', data: { code: 1 } });
      assertProblem(missing, 422, 'missing_variables');
      assert.deepEqual(missing.body.missing, ['name']);
    });
  });

  describe('quiet hours: the deferred delivery goes at the window end (checked last)', () => {
    it('went when the window ended, not before', async () => {
      assert.ok(firing, 'the deferred send was made');
      if (Date.now() < firing.endsAt - 1000) assert.equal(hookFor(firing.delivery).length, 0, 'not before the window ends');
      await waitFor(() => hookFor(firing!.delivery).length > 0, firing.endsAt - Date.now() + 20_000, 'the deferred webhook');
      const [got] = hookFor(firing.delivery);
      assert.ok(got!.at >= firing.endsAt, `received at ${iso(got!.at)}, the window ends ${iso(firing.endsAt)}`);
      assert.equal(JSON.parse(got!.body).title, 'Deferred');
      const v = await finished(firing.notification);
      assert.equal(v.deliveries[0].status, 'sent');
    });
  });
});

describe('rate limits hold across nodes (PostgreSQL + Redis)', () => {
  let a: TestHerald;
  let b: TestHerald;
  let rx: Receiver;
  // Buckets live in Redis under this deployment's prefix; the recipient names are unique anyway.
  const who = `rl-${randomBytes(6).toString('hex')}`;

  before(async () => {
    rx = await startReceiver();
    // HERALD_KEY_RATE_LIMIT only to see when each node's limiter has reached Redis (its headers).
    const env = { HERALD_KEY_RATE_LIMIT: '100000/1s' };
    a = await startHeraldOn('postgres', env);
    b = await startHeraldOn('postgres', env, { join: a });
    for (const h of [a, b]) await waitFor(async () => (await h.api('GET', '/v1/kinds')).headers.get('ratelimit') !== null, 10_000, 'the limiter to reach Redis');
  });
  after(async () => {
    await b?.stop();
    await a?.stop();
    await rx?.close();
  });

  it('two nodes share one bucket per recipient and channel: the third send is throttled, then 429', async () => {
    const put = await a.api('PUT', '/v1/kinds/rl.shared', { mandatory: false, channels: null, routing: 'all', rate_limits: { webhook: { limit: 2, per: '1h' } }, throttle: 'defer' });
    assert.equal(put.status, 201, put.text);
    for (const id of [who, `${who}-2`]) assert.equal((await a.api('PUT', `/v1/recipients/${id}`, { webhook: { url: `${rx.url}/${id}` } })).status, 201);
    const statuses: string[] = [];
    for (const h of [a, b]) {
      const r = await h.api('POST', '/v1/notifications', { to: who, kind: 'rl.shared', title: 'x' });
      assert.equal(r.status, 202, r.text);
      statuses.push(r.body.deliveries[0].status);
    }
    assert.deepEqual(statuses, ['pending', 'pending']);
    const refused = await a.api('POST', '/v1/notifications', { to: who, kind: 'rl.shared', title: 'x' });
    assertProblem(refused, 429, 'rate_limited');
    const alsoRefused = await b.api('POST', '/v1/notifications', { to: who, kind: 'rl.shared', title: 'x' });
    assertProblem(alsoRefused, 429, 'rate_limited');
    assert.ok(Number(alsoRefused.headers.get('retry-after')) > 1700, 'a token is back 30 min after the first send');
    const multi = await b.api('POST', '/v1/notifications', { to: [who, `${who}-2`], kind: 'rl.shared', title: 'x' });
    assert.equal(multi.status, 202, multi.text);
    assert.deepEqual(multi.body.deliveries.map((d: any) => [d.recipient, d.status]).sort(), [[who, 'throttled'], [`${who}-2`, 'pending']]);
  });
});
