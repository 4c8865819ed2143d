import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { ConfigError, describeConfig, loadConfig, settings } from '../src/config.ts';

describe('configuration', () => {
  it('has working defaults', () => {
    const c = loadConfig({});
    assert.equal(c.port, 8080);
    assert.equal(c.host, '127.0.0.1', 'this machine only unless HOST says otherwise');
    assert.deepEqual(c.retrySchedule, [5_000, 300_000, 1_800_000, 7_200_000, 18_000_000, 36_000_000, 36_000_000]);
    assert.equal(c.bodyLimit, 256 * 1024);
    assert.equal(c.smtpUrl, undefined);
    assert.equal(c.databaseUrl, undefined);
    assert.equal(c.redisUrl, undefined);
    assert.equal(c.dbPoolSize, 10);
    assert.ok(c.dataPath.endsWith('/data'));
  });

  it('requires HERALD_SECRET_KEY with DATABASE_URL: every node must decrypt the same secrets', () => {
    assert.throws(
      () => loadConfig({ DATABASE_URL: 'postgres://herald@db:5432/herald' }),
      (err: unknown) => err instanceof ConfigError && err.variable === 'HERALD_SECRET_KEY' && /DATABASE_URL/.test(err.message),
    );
    assert.throws(
      () => loadConfig({ DATABASE_URL: 'postgres://herald@db:5432/herald', HERALD_SECRET_KEY: '  ' }),
      (err: unknown) => err instanceof ConfigError && err.variable === 'HERALD_SECRET_KEY',
    );
    const c = loadConfig({ DATABASE_URL: 'postgres://herald@db:5432/herald', HERALD_SECRET_KEY: 'k'.repeat(40) });
    assert.equal(c.databaseUrl?.host, 'db:5432');
    // SQLite alone may still generate its key into the data dir.
    assert.equal(loadConfig({}).secretKey, undefined);
  });

  it('reads REDIS_URL (redis:// or rediss://) and HERALD_DB_POOL_SIZE', () => {
    const c = loadConfig({ REDIS_URL: 'rediss://:s3cret@cache.example.com:6380/0', HERALD_DB_POOL_SIZE: '25' });
    assert.equal(c.redisUrl?.protocol, 'rediss:');
    assert.equal(c.redisUrl?.host, 'cache.example.com:6380');
    assert.equal(c.dbPoolSize, 25);
    assert.equal(loadConfig({ REDIS_URL: 'redis://127.0.0.1:6379' }).redisUrl?.port, '6379');
  });

  it('is frozen', () => {
    const c = loadConfig({});
    assert.throws(() => {
      (c as { port: number }).port = 1;
    }, TypeError);
    assert.throws(() => {
      (c.retrySchedule as number[]).push(1);
    }, TypeError);
  });

  for (const [variable, value] of [
    ['PORT', 'abc'],
    ['PORT', '70000'],
    ['HERALD_RETRY_SCHEDULE', 'soon'],
    ['HERALD_RETRY_SCHEDULE', ','],
    ['HERALD_ALLOW_NETWORKS', '10.0.0.0/8,bogus'],
    ['HERALD_SMTP_URL', 'http://mail.example.com'],
    ['DATABASE_URL', 'mysql://x'],
    ['HERALD_LOG_LEVEL', 'loud'],
    ['HERALD_CONCURRENCY', 'webhook=lots'],
    ['HERALD_EMAIL_FROM', 'not an address'],
    ['HERALD_LEASE_TIME', '5s'],
    ['REDIS_URL', 'http://cache:6379'],
    ['REDIS_URL', 'not a url'],
    ['HERALD_DB_POOL_SIZE', '0'],
    ['HERALD_DB_POOL_SIZE', 'many'],
  ] as const) {
    it(`rejects ${variable}=${value} with a message naming the variable`, () => {
      assert.throws(
        () => loadConfig({ [variable]: value }),
        (err: unknown) => err instanceof ConfigError && err.variable === variable && err.message.startsWith(`${variable}: `),
      );
    });
  }

  it('checks the lease against the attempt timeouts of the channels that are on', () => {
    assert.doesNotThrow(() => loadConfig({ HERALD_LEASE_TIME: '4s', HERALD_WEBHOOK_TIMEOUT: '2s' }), 'email off: its timeout does not count');
    assert.throws(() => loadConfig({ HERALD_LEASE_TIME: '4s', HERALD_WEBHOOK_TIMEOUT: '2s', HERALD_SMTP_URL: 'smtp://mail.example.com' }), /HERALD_LEASE_TIME/);
  });

  it('parses lists and durations', () => {
    const c = loadConfig({ HERALD_RETRY_SCHEDULE: '100ms, 1.5s,2m', HERALD_CONCURRENCY: 'webhook:4,email:2', HERALD_ALLOW_NETWORKS: '10.0.0.0/8, ::1' });
    assert.deepEqual(c.retrySchedule, [100, 1500, 120_000]);
    assert.deepEqual({ ...c.concurrency }, { webhook: 4, email: 2 });
    assert.deepEqual(c.allowNetworks.map((n) => n.text), ['10.0.0.0/8', '::1']);
  });

  it('masks secrets when described', () => {
    const c = loadConfig({
      HERALD_ADMIN_KEY: 'hk_supersecret',
      HERALD_SECRET_KEY: 'x'.repeat(40),
      HERALD_SMTP_URL: 'smtp://user:hunter2@mail.example.com:587',
      DATABASE_URL: 'postgres://herald:pgpass@db:5432/herald',
      REDIS_URL: 'redis://default:redispass@cache:6379',
    });
    const text = describeConfig(c).map((r) => `${r.variable}=${r.value}`).join('\n');
    for (const secret of ['hk_supersecret', 'xxxxxxxxxx', 'hunter2', 'pgpass', 'redispass']) assert.ok(!text.includes(secret), `${secret} leaked:\n${text}`);
    assert.match(text, /HERALD_SMTP_URL=smtp:\/\/user:\*\*\*\*@mail\.example\.com:587/);
    assert.match(text, /HERALD_ADMIN_KEY=\*\*\*\*/);
    assert.match(text, /REDIS_URL=redis:\/\/default:\*\*\*\*@cache:6379/);
    assert.match(text, /HERALD_DB_POOL_SIZE=10\n/);
    assert.match(text, /HERALD_RETRY_SCHEDULE=5s,5m,30m,2h,5h,10h,10h\n/);
    assert.match(text, /HERALD_LEASE_TIME=1m\n/);
  });

  it('shows each default as docs/configuration.md writes it: durations in their one canonical form', () => {
    const doc = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    const shown = new Map(describeConfig(loadConfig({}, { HERALD_DATA_DIR: '/tmp/herald-config-test' })).map((r) => [r.variable, r.value]));
    let durations = 0;
    for (const s of Object.values(settings)) {
      const show = (s.parse as { show?: (v: unknown) => string }).show;
      if (s.default === undefined || s.default === '' || !show || !/\d(ms|s|m|h|d)\b/.test(s.default)) continue;
      durations++;
      assert.equal(show(s.parse(s.default)), s.default, `${s.env}: the default is written canonically`);
      assert.equal(shown.get(s.env), s.default, `${s.env}: herald config shows the default as written`);
      assert.ok(doc.includes(`| \`${s.env}\` | \`${s.default}\` |`), `${s.env}: docs/configuration.md shows the default ${s.default}`);
    }
    assert.ok(durations >= 8, `every duration setting was checked (${durations})`);
  });

  it('documents every variable in docs/configuration.md', () => {
    const doc = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
    for (const s of Object.values(settings)) assert.ok(doc.includes(`| \`${s.env}\` |`), `${s.env} is not documented`);
  });
});
