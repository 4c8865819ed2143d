// Kinds, preferences, templates, topics and workspace settings through the real HTTP API, on each store:
// what each route stores and answers, and every refusal a 4xx problem naming the field.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { describeOnStores, request, startHeraldOn, type ApiResponse, type TestHerald } from '../helpers/herald.ts';

describeOnStores('policy CRUD', (store) => {
  let h: TestHerald;
  let readKey: string;
  let sendKey: string;

  const asKey = (key: string) => (method: string, path: string, body?: unknown) => request(h.url, key, method, path, body);

  function assertProblem(r: ApiResponse, status: number, code: string, paths: string[] = []): void {
    assert.equal(r.status, status, r.text);
    assert.match(r.headers.get('content-type') ?? '', /application\/problem\+json/);
    assert.equal(r.body.code, code, r.text);
    const got = (r.body.errors ?? []).map((e: { path: string }) => e.path);
    for (const p of paths) assert.ok(got.includes(p), `expected an error at ${p}; got ${JSON.stringify(got)}`);
  }

  before(async () => {
    h = await startHeraldOn(store);
    const mk = async (scopes: string[]) => (await h.api('POST', '/v1/keys', { name: scopes.join('+'), scopes })).body.key as string;
    readKey = await mk(['read']);
    sendKey = await mk(['send']);
    for (const [id, timezone] of [['alice', 'Asia/Seoul'], ['bob', null], ['carol', null], ['dave', null]] as const) {
      const r = await h.api('PUT', `/v1/recipients/${id}`, { name: id, email: `${id}@example.com`, timezone });
      assert.equal(r.status, 201, r.text);
    }
  });
  after(() => h?.stop());

  describe('kinds', () => {
    it('lists the default kinds with their policies', async () => {
      const r = await asKey(readKey)('GET', '/v1/kinds');
      assert.equal(r.status, 200, r.text);
      const byName = Object.fromEntries(r.body.data.map((k: { kind: string }) => [k.kind, k]));
      assert.deepEqual(Object.keys(byName).sort(), ['marketing', 'security', 'transactional']);
      const strip = ({ created_at, updated_at, ...k }: Record<string, unknown>) => (assert.ok(created_at && updated_at), k);
      assert.deepEqual(strip(byName.security), {
        kind: 'security', mandatory: true, channels: null, quiet_hours: 'ignore', routing: 'all', rate_limits: null, throttle: 'defer', digest: null, blackout: 'fallback', default: true,
      });
      assert.deepEqual(strip(byName.transactional), {
        kind: 'transactional', mandatory: false, channels: null, quiet_hours: 'ignore', routing: 'all', rate_limits: null, throttle: 'defer', digest: null, blackout: 'fallback', default: true,
      });
      assert.deepEqual(strip(byName.marketing), {
        kind: 'marketing', mandatory: false, channels: null, quiet_hours: 'defer', routing: 'all', rate_limits: { '*': { limit: 3, per: '1d' } }, throttle: 'drop', digest: null, blackout: 'defer', default: true,
      });
      assert.equal(r.body.next_cursor, null);
    });

    it('PUT creates (201) and replaces (200) a kind; durations are parsed and shown canonically', async () => {
      const body = {
        mandatory: false,
        channels: ['email', 'webhook'],
        quiet_hours: 'drop',
        routing: 'first',
        rate_limits: { email: { limit: 5, per: '60s' }, '*': { limit: 10, per: '1h' } },
        throttle: 'drop',
        digest: { window: '90m', key: 'thread' },
        blackout: 'fallback',
      };
      const created = await h.api('PUT', '/v1/kinds/order.shipped', body);
      assert.equal(created.status, 201, created.text);
      assert.equal(created.body.default, false);
      assert.deepEqual(created.body.rate_limits, { email: { limit: 5, per: '1m' }, '*': { limit: 10, per: '1h' } });
      assert.deepEqual(created.body.digest, { window: '1h30m', key: 'thread' });
      assert.deepEqual(created.body.channels, ['email', 'webhook']);

      const replaced = await h.api('PUT', '/v1/kinds/order.shipped', { mandatory: true, channels: null, routing: 'all', rate_limits: null });
      assert.equal(replaced.status, 200, replaced.text);
      assert.equal(replaced.body.quiet_hours, 'ignore', 'a mandatory kind defaults to ignoring quiet hours');
      assert.equal(replaced.body.throttle, 'defer');
      assert.equal(replaced.body.digest, null);
      assert.equal(replaced.body.created_at, created.body.created_at);
      const read = await asKey(readKey)('GET', '/v1/kinds/order.shipped');
      assert.deepEqual(read.body, replaced.body);

      const plain = await h.api('PUT', '/v1/kinds/news', { mandatory: false, channels: null, routing: 'all', rate_limits: null });
      assert.equal(plain.body.quiet_hours, 'defer', 'a kind that is not mandatory defaults to deferring');
      assert.equal((await h.api('PUT', '/v1/kinds/marketing', { mandatory: false, channels: ['email'], quiet_hours: 'defer', routing: 'all', rate_limits: null })).status, 200);
    });

    it('pages through kinds by name', async () => {
      const names: string[] = [];
      let cursor: string | null = null;
      do {
        const r: ApiResponse = await h.api('GET', `/v1/kinds?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
        assert.equal(r.status, 200, r.text);
        assert.ok(r.body.data.length <= 2);
        names.push(...r.body.data.map((k: { kind: string }) => k.kind));
        cursor = r.body.next_cursor;
      } while (cursor);
      assert.deepEqual(names, [...names].sort());
      assert.ok(['marketing', 'news', 'order.shipped', 'security', 'transactional'].every((n) => names.includes(n)), names.join());
      assertProblem(await h.api('GET', '/v1/kinds?cursor=bm90LWEtY3Vyc29y'), 400, 'invalid_cursor');
    });

    it('refuses what breaks the rules, naming the field', async () => {
      const base = { mandatory: false, channels: null, quiet_hours: 'defer', routing: 'all', rate_limits: null };
      assertProblem(await h.api('PUT', '/v1/kinds/security', { ...base, quiet_hours: 'ignore' }), 422, 'validation_failed', ['body.mandatory']);
      assert.equal((await h.api('GET', '/v1/kinds/security')).body.mandatory, true, 'security is still mandatory');
      assertProblem(await h.api('PUT', '/v1/kinds/alerts', { ...base, mandatory: true, quiet_hours: 'defer' }), 422, 'validation_failed', ['body.quiet_hours']);
      assertProblem(await h.api('PUT', '/v1/kinds/alerts', { ...base, channels: ['email', 'pigeon'] }), 422, 'validation_failed', ['body.channels.1']);
      assertProblem(await h.api('PUT', '/v1/kinds/alerts', { ...base, channels: ['email', 'email'] }), 422, 'validation_failed', ['body.channels']);
      assertProblem(await h.api('PUT', '/v1/kinds/alerts', { ...base, rate_limits: { pigeon: { limit: 1, per: '1m' } } }), 422, 'validation_failed', ['body.rate_limits.pigeon']);
      assertProblem(await h.api('PUT', '/v1/kinds/alerts', { ...base, rate_limits: { sms: { limit: 1, per: 'soon' } } }), 422, 'validation_failed', ['body.rate_limits.sms.per']);
      assertProblem(await h.api('PUT', '/v1/kinds/alerts', { ...base, rate_limits: { sms: { limit: 1, per: '100ms' } } }), 422, 'validation_failed', ['body.rate_limits.sms.per']);
      assertProblem(await h.api('PUT', '/v1/kinds/alerts', { ...base, rate_limits: { sms: { limit: 0, per: '1m' } } }), 422, 'validation_failed', ['body.rate_limits.sms.limit']);
      assertProblem(await h.api('PUT', '/v1/kinds/alerts', { ...base, digest: { window: '30d' } }), 422, 'validation_failed', ['body.digest.window']);
      assertProblem(await h.api('PUT', '/v1/kinds/alerts', { ...base, routing: 'some' }), 422, 'validation_failed', ['body.routing']);
      assertProblem(await h.api('PUT', '/v1/kinds/alerts', { ...base, surprise: 1 }), 422, 'validation_failed', ['body.surprise']);
      assertProblem(await h.api('PUT', '/v1/kinds/alerts', { channels: null }), 422, 'validation_failed', ['body.mandatory', 'body.routing']);
      assertProblem(await h.api('PUT', '/v1/kinds/Not-A-Kind', base), 422, 'validation_failed', ['params.kind']);
      assertProblem(await h.api('GET', '/v1/kinds/alerts'), 404, 'not_found');
      assertProblem(await asKey(sendKey)('PUT', '/v1/kinds/alerts', base), 403, 'forbidden');
    });
  });

  describe('preferences', () => {
    it('the defaults until set; PUT replaces; quiet hours are in the recipient\'s time zone, else UTC', async () => {
      const fresh = await asKey(readKey)('GET', '/v1/recipients/alice/preferences');
      assert.deepEqual(fresh.body, { recipient: 'alice', kinds: {}, quiet_hours: null, timezone: 'Asia/Seoul', updated_at: null });

      const body = { kinds: { marketing: { allowed: false }, security: { channels: ['sms', 'email'] } }, quiet_hours: { start: '22:00', end: '08:00' } };
      const put = await asKey(sendKey)('PUT', '/v1/recipients/alice/preferences', body);
      assert.equal(put.status, 200, put.text);
      assert.deepEqual({ ...put.body, updated_at: typeof put.body.updated_at }, { recipient: 'alice', ...body, timezone: 'Asia/Seoul', updated_at: 'string' });
      assert.deepEqual((await asKey(readKey)('GET', '/v1/recipients/alice/preferences')).body, put.body);

      const bob = await h.api('PUT', '/v1/recipients/bob/preferences', { kinds: { transactional: { allowed: true } }, quiet_hours: { start: '23:30', end: '06:15' } });
      assert.equal(bob.body.timezone, 'UTC');

      const cleared = await h.api('PUT', '/v1/recipients/alice/preferences', { kinds: {}, quiet_hours: null });
      assert.deepEqual([cleared.body.kinds, cleared.body.quiet_hours], [{}, null]);
    });

    it('refuses opting out of a mandatory kind, unknown kinds and bad times, naming the field; 404 for an unknown recipient', async () => {
      const put = (body: unknown, id = 'carol') => h.api('PUT', `/v1/recipients/${id}/preferences`, body);
      assertProblem(await put({ kinds: { security: { allowed: false } }, quiet_hours: null }), 422, 'validation_failed', ['body.kinds.security.allowed']);
      assertProblem(await put({ kinds: { 'order.shipped': { allowed: false } }, quiet_hours: null }), 422, 'validation_failed', ['body.kinds.order.shipped.allowed']);
      assertProblem(await put({ kinds: { nope: { allowed: true } }, quiet_hours: null }), 422, 'validation_failed', ['body.kinds.nope']);
      assertProblem(await put({ kinds: { 'Bad Kind': {} }, quiet_hours: null }), 422, 'validation_failed', ['body.kinds.Bad Kind']);
      assertProblem(await put({ kinds: { marketing: { channels: ['pigeon'] } }, quiet_hours: null }), 422, 'validation_failed', ['body.kinds.marketing.channels.0']);
      assertProblem(await put({ kinds: { marketing: { channels: [] } }, quiet_hours: null }), 422, 'validation_failed', ['body.kinds.marketing.channels']);
      assertProblem(await put({ kinds: {}, quiet_hours: { start: '24:00', end: '08:00' } }), 422, 'validation_failed', ['body.quiet_hours.start']);
      assertProblem(await put({ kinds: {}, quiet_hours: { start: '22:00', end: '8:00' } }), 422, 'validation_failed', ['body.quiet_hours.end']);
      assertProblem(await put({ kinds: {}, quiet_hours: { start: '22:00', end: '22:00' } }), 422, 'validation_failed', ['body.quiet_hours.end']);
      assertProblem(await put({ kinds: {} }), 422, 'validation_failed', ['body.quiet_hours']);
      assert.equal((await h.api('GET', '/v1/recipients/carol/preferences')).body.updated_at, null, 'nothing was stored');
      assertProblem(await put({ kinds: {}, quiet_hours: null }, 'nobody'), 404, 'not_found');
      assertProblem(await h.api('GET', '/v1/recipients/nobody/preferences'), 404, 'not_found');
      assertProblem(await asKey(readKey)('PUT', '/v1/recipients/carol/preferences', { kinds: {}, quiet_hours: null }), 403, 'forbidden');
    });
  });

  describe('templates', () => {
    const variants = [
      { locale: 'en', title: 'Order {{order.id}} shipped', body: 'Hi {{name}}, it is on its way.' },
      { locale: 'ko-kr', title: '주문 {{order.id}} 발송', body: '{{name}}님, 발송되었습니다.' },
      { locale: 'ko-KR', channel: 'sms', title: '', body: '[발송] {{order.id}}' },
      { locale: 'en', channel: 'email', title: 'Shipped', body: 'Hi {{name}}', subject: 'Your order {{order.id}}', html: '<p>Hi {{name}}</p>' },
    ];

    it('each PUT is a new version (201); locales are stored canonical; GET latest or ?version; list; delete', async () => {
      const v1 = await h.api('PUT', '/v1/templates/order.shipped', { variants });
      assert.equal(v1.status, 201, v1.text);
      assert.equal(v1.body.version, 1);
      assert.deepEqual(v1.body.variants.map((v: { locale: string; channel: string | null }) => [v.locale, v.channel]), [['en', null], ['ko-KR', null], ['ko-KR', 'sms'], ['en', 'email']]);
      const v2 = await h.api('PUT', '/v1/templates/order.shipped', { variants: variants.slice(0, 2) });
      assert.equal(v2.body.version, 2);
      await h.api('PUT', '/v1/templates/another', { variants: [{ locale: 'en', title: 'x', body: 'y' }] });

      const latest = await asKey(readKey)('GET', '/v1/templates/order.shipped');
      assert.deepEqual(latest.body, v2.body);
      assert.deepEqual((await h.api('GET', '/v1/templates/order.shipped?version=1')).body, v1.body);
      assertProblem(await h.api('GET', '/v1/templates/order.shipped?version=3'), 404, 'not_found');
      assertProblem(await h.api('GET', '/v1/templates/order.shipped?version=zero'), 422, 'validation_failed', ['querystring.version']);

      const list = await h.api('GET', '/v1/templates?limit=1');
      assert.deepEqual(list.body.data.map((t: { key: string; latest_version: number }) => [t.key, t.latest_version]), [['another', 1]]);
      const next = await h.api('GET', `/v1/templates?limit=1&cursor=${list.body.next_cursor}`);
      assert.deepEqual(next.body.data.map((t: { key: string; latest_version: number }) => [t.key, t.latest_version]), [['order.shipped', 2]]);

      assert.equal((await h.api('DELETE', '/v1/templates/another')).status, 204);
      assertProblem(await h.api('GET', '/v1/templates/another'), 404, 'not_found');
      assertProblem(await h.api('DELETE', '/v1/templates/another'), 404, 'not_found');
      assertProblem(await asKey(sendKey)('PUT', '/v1/templates/x', { variants }), 403, 'forbidden');
    });

    it('refuses bad locales and channels, duplicate (locale, channel) pairs and templates that do not parse or use partials', async () => {
      const put = (vs: unknown[]) => h.api('PUT', '/v1/templates/bad', { variants: vs });
      assertProblem(await put([{ locale: 'en', title: 'a', body: 'b' }, { locale: 'EN', title: 'a', body: 'b' }]), 422, 'validation_failed', ['body.variants.1']);
      assertProblem(await put([{ locale: 'ko-KR', channel: 'sms', title: 'a', body: 'b' }, { locale: 'ko-kr', channel: 'sms', title: 'a', body: 'b' }]), 422, 'validation_failed', ['body.variants.1']);
      assertProblem(await put([{ locale: 'not a locale!', title: 'a', body: 'b' }]), 422, 'validation_failed', ['body.variants.0.locale']);
      assertProblem(await put([{ locale: 'en', channel: 'pigeon', title: 'a', body: 'b' }]), 422, 'validation_failed', ['body.variants.0.channel']);
      assertProblem(await put([{ locale: 'en', title: 'a', body: 'Hi {{name' }]), 422, 'validation_failed', ['body.variants.0.body']);
      assertProblem(await put([{ locale: 'en', title: '{{#list}}x', body: 'b' }]), 422, 'validation_failed', ['body.variants.0.title']);
      assertProblem(await put([{ locale: 'en', title: 'a', body: 'b', html: '{{> header}}' }]), 422, 'validation_failed', ['body.variants.0.html']);
      assertProblem(await put([{ locale: 'en', title: 'a' }]), 422, 'validation_failed', ['body.variants.0.body']);
      assertProblem(await put([]), 422, 'validation_failed', ['body.variants']);
      assertProblem(await h.api('GET', '/v1/templates/bad'), 404, 'not_found', []);
    });

    it('render previews the variant a send would use, with locale and channel fallback; missing variables are 422 listing them', async () => {
      await h.api('PUT', '/v1/templates/preview', { variants });
      const render = (body: unknown) => asKey(readKey)('POST', '/v1/templates/preview/render', body);
      const data = { name: 'Mina', order: { id: 'A-1' } };

      const sms = await render({ locale: 'ko-KR', channel: 'sms', data });
      assert.equal(sms.status, 200, sms.text);
      assert.deepEqual(sms.body, { key: 'preview', version: 1, variant: { locale: 'ko-KR', channel: 'sms' }, title: '', body: '[발송] A-1' });

      const push = await render({ locale: 'ko-KR', channel: 'fcm', data });
      assert.deepEqual([push.body.variant, push.body.title], [{ locale: 'ko-KR', channel: null }, '주문 A-1 발송']);

      const fr = await render({ locale: 'fr-CA', channel: 'email', data: { name: '<b>Zoé</b>', order: { id: 7 } } });
      assert.deepEqual(fr.body.variant, { locale: 'en', channel: 'email' }, 'fr-CA has no variant: the workspace default (en)');
      assert.equal(fr.body.subject, 'Your order 7');
      assert.equal(fr.body.html, '<p>Hi &lt;b&gt;Zoé&lt;&#x2F;b&gt;</p>');
      assert.equal(fr.body.body, 'Hi <b>Zoé</b>');

      const missing = await render({ locale: 'en', data: { name: 'x' } });
      assertProblem(missing, 422, 'missing_variables');
      assert.deepEqual(missing.body.missing, ['order.id']);

      assertProblem(await render({ locale: '??', data }), 422, 'validation_failed', ['body.locale']);
      assertProblem(await render({ data, version: 9 }), 404, 'not_found');
      assertProblem(await asKey(readKey)('POST', '/v1/templates/nothing/render', { data }), 404, 'not_found');

      await h.api('PUT', '/v1/templates/korean.only', { variants: [{ locale: 'ko', title: '제목', body: '{{x}}' }] });
      assertProblem(await asKey(readKey)('POST', '/v1/templates/korean.only/render', { locale: 'de', data: { x: 1 } }), 422, 'validation_failed', ['body.locale']);
      // The workspace default locale is the last step of the chain.
      assert.equal((await h.api('PUT', '/v1/settings', { default_locale: 'ko' })).status, 200);
      const ko = await asKey(readKey)('POST', '/v1/templates/korean.only/render', { locale: 'de', data: { x: 1 } });
      assert.deepEqual([ko.status, ko.body.body, ko.body.variant.locale], [200, '1', 'ko']);
      assert.equal((await h.api('PUT', '/v1/settings', {})).body.default_locale, 'en');
    });
  });

  describe('topics', () => {
    it('PUT creates (201) and renames (200); members are added and removed; GET shows the count; members page by recipient id; DELETE', async () => {
      const send = asKey(sendKey);
      const created = await send('PUT', '/v1/topics/ops', { name: 'Ops' });
      assert.equal(created.status, 201, created.text);
      assert.deepEqual([created.body.key, created.body.name, created.body.member_count], ['ops', 'Ops', 0]);
      const renamed = await send('PUT', '/v1/topics/ops', { name: 'Operations' });
      assert.deepEqual([renamed.status, renamed.body.name, renamed.body.created_at], [200, 'Operations', created.body.created_at]);
      assert.equal((await send('PUT', '/v1/topics/team:dev', {})).status, 201);

      const add = await send('POST', '/v1/topics/ops/members', { add: ['dave', 'alice', 'carol', 'alice'] });
      assert.deepEqual(add.body, { added: 3, removed: 0, member_count: 3 });
      const again = await send('POST', '/v1/topics/ops/members', { add: ['bob', 'carol'], remove: ['dave', 'nobody'] });
      assert.deepEqual(again.body, { added: 1, removed: 1, member_count: 3 });
      const one = await asKey(readKey)('GET', '/v1/topics/ops');
      assert.deepEqual([one.body.name, one.body.member_count], ['Operations', 3]);

      const page1 = await asKey(readKey)('GET', '/v1/topics/ops/members?limit=2');
      assert.deepEqual(page1.body.data.map((m: { recipient: string }) => m.recipient), ['alice', 'bob']);
      const page2 = await asKey(readKey)('GET', `/v1/topics/ops/members?limit=2&cursor=${page1.body.next_cursor}`);
      assert.deepEqual([page2.body.data.map((m: { recipient: string }) => m.recipient), page2.body.next_cursor], [['carol'], null]);
      assert.ok(!Number.isNaN(Date.parse(page2.body.data[0].added_at)));

      const list = await asKey(readKey)('GET', '/v1/topics');
      assert.deepEqual(list.body.data.map((t: { key: string }) => t.key), ['ops', 'team:dev']);

      assert.equal((await send('DELETE', '/v1/topics/ops')).status, 204);
      assertProblem(await h.api('GET', '/v1/topics/ops'), 404, 'not_found');
      assertProblem(await send('DELETE', '/v1/topics/ops'), 404, 'not_found');
      assert.equal((await send('PUT', '/v1/topics/ops', {})).body.member_count, 0, 're-created empty');
    });

    it('refuses unknown recipients (listing them, changing nothing), an id both added and removed, and over 1000 ids', async () => {
      const send = asKey(sendKey);
      await send('PUT', '/v1/topics/audit', {});
      const unknown = await send('POST', '/v1/topics/audit/members', { add: ['alice', 'ghost', 'phantom'] });
      assertProblem(unknown, 422, 'unknown_recipients');
      assert.deepEqual(unknown.body.recipients, ['ghost', 'phantom']);
      assert.equal((await h.api('GET', '/v1/topics/audit')).body.member_count, 0);
      assertProblem(await send('POST', '/v1/topics/audit/members', { add: ['alice'], remove: ['bob', 'alice'] }), 422, 'validation_failed', ['body.remove.1']);
      const many = Array.from({ length: 1001 }, (_, i) => `r${i}`);
      assertProblem(await send('POST', '/v1/topics/audit/members', { add: many }), 422, 'validation_failed', ['body.add']);
      assertProblem(await send('POST', '/v1/topics/audit/members', { add: ['bad id!'] }), 422, 'validation_failed', ['body.add.0']);
      assertProblem(await send('POST', '/v1/topics/missing/members', { add: ['alice'] }), 404, 'not_found');
      assertProblem(await h.api('GET', '/v1/topics/missing/members'), 404, 'not_found');
      assertProblem(await h.api('GET', '/v1/topics/audit/members?cursor=%21%21'), 400, 'invalid_cursor');
      assertProblem(await send('PUT', '/v1/topics/-bad', {}), 422, 'validation_failed', ['params.key']);
      assertProblem(await asKey(readKey)('PUT', '/v1/topics/audit', {}), 403, 'forbidden');
    });
  });

  describe('settings', () => {
    it('the defaults until set; PUT replaces with canonical locale and time zones', async () => {
      const fresh = await asKey(readKey)('GET', '/v1/settings');
      assert.deepEqual(fresh.body, { default_locale: 'en', channel_blackouts: null, operator_webhook: null, updated_at: fresh.body.updated_at });
      const put = await h.api('PUT', '/v1/settings', { default_locale: 'ko-kr', channel_blackouts: { kakao: { start: '21:00', end: '08:00', timezone: 'asia/seoul' } } });
      assert.equal(put.status, 200, put.text);
      assert.deepEqual([put.body.default_locale, put.body.channel_blackouts], ['ko-KR', { kakao: { start: '21:00', end: '08:00', timezone: 'Asia/Seoul' } }]);
      assert.deepEqual((await asKey(readKey)('GET', '/v1/settings')).body, put.body);
    });

    it('refuses bad locales, channels, times and time zones; needs admin', async () => {
      const put = (body: unknown) => h.api('PUT', '/v1/settings', body);
      assertProblem(await put({ default_locale: 'not a locale!' }), 422, 'validation_failed', ['body.default_locale']);
      assertProblem(await put({ channel_blackouts: { pigeon: { start: '21:00', end: '08:00', timezone: 'UTC' } } }), 422, 'validation_failed', ['body.channel_blackouts.pigeon']);
      assertProblem(await put({ channel_blackouts: { sms: { start: '21:00', end: '08:00', timezone: 'Mars/Olympus' } } }), 422, 'validation_failed', ['body.channel_blackouts.sms.timezone']);
      assertProblem(await put({ channel_blackouts: { sms: { start: '21:00', end: '21:00', timezone: 'UTC' } } }), 422, 'validation_failed', ['body.channel_blackouts.sms.end']);
      assertProblem(await put({ channel_blackouts: { sms: { start: '9pm', end: '08:00', timezone: 'UTC' } } }), 422, 'validation_failed', ['body.channel_blackouts.sms.start']);
      assertProblem(await asKey(sendKey)('PUT', '/v1/settings', {}), 403, 'forbidden');
      assert.equal((await h.api('GET', '/v1/settings')).body.default_locale, 'ko-KR', 'nothing refused was stored');
    });
  });

  describe('hostile input', () => {
    it('whatever is PUT or POSTed to these routes, the answer is a 2xx or a 4xx problem, never a server fault', async () => {
      const channel = fc.constantFrom('email', 'sms', 'pigeon', '*', '__proto__', 'constructor', '');
      const word = fc.oneof(fc.constantFrom('security', 'marketing', 'constructor', 'toString', 'en', 'ko-KR', '22:00', '1h', '0', '{{x}}', '{{> p}}', '{{#a}}'), fc.string({ maxLength: 12 }));
      const value = fc.oneof(word, fc.anything({ maxDepth: 2 }));
      const bodies = {
        kind: fc.record(
          {
            mandatory: fc.oneof(fc.boolean(), value),
            channels: fc.oneof(fc.constant(null), fc.array(channel, { maxLength: 3 }), value),
            quiet_hours: fc.oneof(fc.constantFrom('defer', 'drop', 'ignore'), value),
            routing: fc.oneof(fc.constantFrom('all', 'first'), value),
            rate_limits: fc.oneof(fc.constant(null), fc.dictionary(channel, fc.record({ limit: fc.oneof(fc.integer(), value), per: fc.oneof(word, value) })), value),
            digest: fc.oneof(fc.constant(null), fc.record({ window: word, key: fc.option(word, { nil: undefined }) }), value),
          },
          { requiredKeys: [] },
        ),
        preferences: fc.record(
          {
            kinds: fc.oneof(fc.dictionary(word, fc.record({ allowed: fc.oneof(fc.boolean(), value), channels: fc.oneof(fc.array(channel, { maxLength: 3 }), value) }, { requiredKeys: [] })), value),
            quiet_hours: fc.oneof(fc.constant(null), fc.record({ start: word, end: word }), value),
          },
          { requiredKeys: [] },
        ),
        template: fc.record({ variants: fc.oneof(fc.array(fc.record({ locale: word, channel: fc.oneof(channel, value), title: word, body: word, html: word }, { requiredKeys: [] }), { maxLength: 3 }), value) }, { requiredKeys: [] }),
        render: fc.record({ locale: fc.oneof(word, value), channel: fc.oneof(channel, value), version: fc.oneof(fc.integer(), value), data: value }, { requiredKeys: [] }),
        members: fc.record({ add: fc.oneof(fc.array(word, { maxLength: 4 }), value), remove: fc.oneof(fc.array(word, { maxLength: 4 }), value) }, { requiredKeys: [] }),
        settings: fc.record(
          { default_locale: fc.oneof(word, value), channel_blackouts: fc.oneof(fc.constant(null), fc.dictionary(channel, fc.record({ start: word, end: word, timezone: fc.oneof(word, fc.constantFrom('UTC', 'Asia/Seoul')) })), value) },
          { requiredKeys: [] },
        ),
      };
      await h.api('PUT', '/v1/templates/fuzz', { variants: [{ locale: 'en', title: '{{a}}', body: '{{#b}}{{c}}{{/b}}' }] });
      await h.api('PUT', '/v1/topics/fuzz', {});
      const targets: [string, string, fc.Arbitrary<unknown>][] = [
        ['PUT', '/v1/kinds/fuzz', bodies.kind],
        ['PUT', '/v1/recipients/dave/preferences', bodies.preferences],
        ['PUT', '/v1/templates/fuzz2', bodies.template],
        ['POST', '/v1/templates/fuzz/render', bodies.render],
        ['POST', '/v1/topics/fuzz/members', bodies.members],
        ['PUT', '/v1/settings', bodies.settings],
      ];
      for (const [method, path, body] of targets) {
        await fc.assert(
          fc.asyncProperty(body, async (b) => {
            const r = await h.api(method, path, b);
            if (r.status >= 300) {
              assert.ok(r.status >= 400 && r.status < 500, `${method} ${path} ${JSON.stringify(b)} -> ${r.status} ${r.text}`);
              assert.equal(typeof r.body.code, 'string');
            }
          }),
          { numRuns: 100 },
        );
      }
      assert.equal((await h.api('GET', '/v1/kinds/security')).body.mandatory, true);
    });
  });
});
