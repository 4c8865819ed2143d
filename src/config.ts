// Herald's configuration: one schema, read from the environment once at boot, validated, frozen.
// Every variable is declared here with its default and documentation; docs/configuration.md is
// checked against this table by test/config.test.ts.

import { isAbsolute, resolve } from 'node:path';
import { formatDuration, parseDuration } from './domain/duration.ts';
import { parseCidrList, type Cidr } from './net/address-policy.ts';
import { parseSigningKey } from './auth/signing-key.ts';
import { passwordVerdict } from './auth/passwords.ts';
import { parseOidcProviders, type OidcProviderConfig } from './auth/oauth/config.ts';

export class ConfigError extends Error {
  readonly variable: string;
  constructor(variable: string, message: string) {
    super(`${variable}: ${message}`);
    this.variable = variable;
  }
}

/** Parses one variable's text; `show` formats the parsed value for `herald config`. */
type Parser<T> = ((raw: string) => T) & { show?: (value: T) => string };

interface Setting<T> {
  env: string;
  doc: string;
  default: string | undefined;
  parse: Parser<T>;
  secret?: boolean;
}

function setting<T>(env: string, def: string | undefined, parse: Parser<T>, doc: string, secret = false): Setting<T> {
  return { env, default: def, parse, doc, secret };
}

const str: Parser<string> = (s) => s;
const optionalStr: Parser<string | undefined> = (s) => (s === '' ? undefined : s);

function int(min: number, max: number): Parser<number> {
  return (s) => {
    if (!/^-?\d+$/.test(s.trim())) throw new Error(`expected an integer, got "${s}"`);
    const n = Number(s);
    if (n < min || n > max) throw new Error(`expected an integer from ${min} to ${max}, got ${n}`);
    return n;
  };
}

function duration(minMs: number, maxMs: number): Parser<number> {
  const parse: Parser<number> = (s) => {
    const ms = parseDuration(s);
    if (ms < minMs || ms > maxMs) throw new Error(`expected a duration from ${formatDuration(minMs)} to ${formatDuration(maxMs)}, got "${s}"`);
    return ms;
  };
  parse.show = formatDuration;
  return parse;
}

/** A duration, or empty for none (undefined). */
function optionalDuration(minMs: number, maxMs: number): Parser<number | undefined> {
  const d = duration(minMs, maxMs);
  const parse: Parser<number | undefined> = (s) => (s === '' ? undefined : d(s));
  parse.show = (v) => (v === undefined ? '(unset)' : formatDuration(v));
  return parse;
}

const durationList: Parser<number[]> = (s) => {
  const parts = s.split(',').map((p) => p.trim()).filter(Boolean);
  if (parts.length === 0) throw new Error('expected a comma-separated list of durations, e.g. 5s,5m,30m');
  if (parts.length > 50) throw new Error('at most 50 retries');
  return parts.map((p) => duration(0, 30 * 86_400_000)(p));
};
durationList.show = (v) => v.map(formatDuration).join(',');

function url(protocols: string[]): Parser<URL | undefined> {
  return (s) => {
    if (s === '') return undefined;
    let u: URL;
    try {
      u = new URL(s);
    } catch {
      throw new Error(`not a valid URL: "${s}"`);
    }
    if (!protocols.includes(u.protocol)) throw new Error(`expected a ${protocols.join(' or ')} URL`);
    return u;
  };
}

const bool: Parser<boolean> = (s) => {
  if (/^(1|true|yes|on)$/i.test(s)) return true;
  if (/^(0|false|no|off|)$/i.test(s)) return false;
  throw new Error(`expected true or false, got "${s}"`);
};

const logLevel: Parser<string> = (s) => {
  const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];
  if (!levels.includes(s)) throw new Error(`expected one of ${levels.join(', ')}`);
  return s;
};

const emailAddress: Parser<string> = (s) => {
  if (!/^[^\s@<>]+@[^\s@<>]+$/.test(s) && !/^[^<>]*<[^\s@<>]+@[^\s@<>]+>$/.test(s)) {
    throw new Error(`expected an email address such as "Herald <herald@example.com>", got "${s}"`);
  }
  return s;
};

const CHANNELS = ['webhook', 'email', 'fcm', 'apns', 'webpush', 'pushover', 'sms', 'kakao', 'slack', 'discord'];

/** channel:number pairs, each number from min to max. */
function perChannel(what: string, min: number, max: number, example: string): Parser<Record<string, number>> {
  const parse: Parser<Record<string, number>> = (s) => {
    const out: Record<string, number> = {};
    for (const part of s.split(',').map((p) => p.trim()).filter(Boolean)) {
      const m = /^([a-z_]+)\s*[:=]\s*(\d+(?:\.\d+)?)$/.exec(part);
      if (!m) throw new Error(`expected channel:number pairs such as "${example}", got "${part}"`);
      if (!CHANNELS.includes(m[1]!)) throw new Error(`unknown channel "${m[1]}" (channels: ${CHANNELS.join(', ')})`);
      const n = Number(m[2]);
      if (n < min || n > max) throw new Error(`${what} for ${m[1]} must be from ${min} to ${max}`);
      out[m[1]!] = n;
    }
    return out;
  };
  parse.show = (v) => Object.entries(v).map(([k, n]) => `${k}:${n}`).join(',');
  return parse;
}

/** "<requests>/<window>" (e.g. 100/1s, 5000/1h): a window of whole seconds, 1s to 1d. Empty: none. */
const requestRate: Parser<{ limit: number; periodMs: number } | undefined> = (s) => {
  if (s === '') return undefined;
  const m = /^(\d+)\s*\/\s*(\S+)$/.exec(s);
  if (!m) throw new Error(`expected <requests>/<window> such as 100/1s or 5000/1h, got "${s}"`);
  const limit = Number(m[1]);
  if (limit < 1 || limit > 1_000_000) throw new Error(`expected from 1 to 1000000 requests per window, got ${m[1]}`);
  const periodMs = parseDuration(m[2]!);
  if (periodMs < 1000 || periodMs > 86_400_000 || periodMs % 1000 !== 0) throw new Error(`expected a window of whole seconds from 1s to 1d, got "${m[2]}"`);
  return { limit, periodMs };
};
requestRate.show = (v) => (v === undefined ? '(unset)' : `${v.limit}/${formatDuration(v.periodMs)}`);

/** 1-64 printable ASCII characters without spaces. */
const redisPrefix: Parser<string> = (s) => {
  if (!/^[!-~]{1,64}$/.test(s)) throw new Error(`expected 1 to 64 printable ASCII characters without spaces, got "${s}"`);
  return s;
};

const SIGNUP_MODES = ['invite', 'open', 'closed'] as const;
const signup: Parser<(typeof SIGNUP_MODES)[number]> = (s) => {
  if (!(SIGNUP_MODES as readonly string[]).includes(s)) throw new Error(`expected one of ${SIGNUP_MODES.join(', ')}, got "${s}"`);
  return s as (typeof SIGNUP_MODES)[number];
};

/** A PKCS#8 PEM or private JWK of an EC P-256 or Ed25519 key (checked by parsing it); kept as text. */
const jwtKey: Parser<string | undefined> = (s) => {
  if (s === '') return undefined;
  parseSigningKey(s);
  return s;
};

const optionalEmail: Parser<string | undefined> = (s) => {
  if (s === '') return undefined;
  if (!/^[^\s@]+@[^\s@]+$/.test(s) || s.length > 254) throw new Error(`expected an email address, got "${s}"`);
  return s;
};

/** The schema. Order here is the order `herald config` prints. */
export const settings = {
  host: setting('HOST', '127.0.0.1', str, 'Address the HTTP server binds to. The default is this machine only; 0.0.0.0 (or ::) listens on every interface.'),
  port: setting('PORT', '8080', int(0, 65535), 'HTTP port (0 picks a free port).'),
  dataDir: setting('HERALD_DATA_DIR', './data', str, 'Directory for the SQLite database and the generated secret key.'),
  databaseUrl: setting('DATABASE_URL', '', url(['postgres:', 'postgresql:']), 'PostgreSQL connection URL. Empty: embedded SQLite in the data dir.', true),
  dbPoolSize: setting('HERALD_DB_POOL_SIZE', '10', int(1, 1000), 'PostgreSQL connections each process may open for queries (LISTEN takes one more).'),
  redisUrl: setting('REDIS_URL', '', url(['redis:', 'rediss:']), 'Redis connection URL (redis:// or rediss://): the bus between processes. Empty: in-process only.', true),
  redisPrefix: setting('HERALD_REDIS_PREFIX', 'herald:', redisPrefix, 'Prefix of every Redis key and pub/sub channel Herald uses (bus `<prefix><topic>`, rate limits `<prefix>rl:<key>`). Deployments sharing one Redis need distinct prefixes.'),
  adminKey: setting('HERALD_ADMIN_KEY', '', optionalStr, 'If set, an admin-scoped API key with exactly this value exists (created at start if missing). `serve` warns when it is short or well known.', true),
  adminEmail: setting('HERALD_ADMIN_EMAIL', '', optionalEmail, 'With HERALD_ADMIN_PASSWORD: a user with this email address exists and owns the default organization (created at start if missing; an existing user is made owner, its password left as it is).'),
  adminPassword: setting('HERALD_ADMIN_PASSWORD', '', optionalStr, 'The password of the HERALD_ADMIN_EMAIL user when it is created (at least 10 characters, not a common password).', true),
  signup: setting('HERALD_SIGNUP', 'invite', signup, 'Who may register (POST /v1/auth/register): invite (only with an invitation token), open (anyone; each new user owns a new organization) or closed.'),
  jwtKey: setting('HERALD_JWT_KEY', '', jwtKey, 'Private key that signs access tokens: a PKCS#8 PEM or a private JWK, EC P-256 (ES256) or Ed25519 (EdDSA). Empty: a P-256 key generated on first use and stored in the database, sealed with the secret key.', true),
  secretKey: setting('HERALD_SECRET_KEY', '', optionalStr, 'Key that encrypts secrets at rest (32+ characters). Empty: generated into the data dir on first start.', true),
  allowNetworks: setting<Cidr[]>('HERALD_ALLOW_NETWORKS', '', parseCidrList, 'Comma-separated CIDRs outgoing HTTP may reach in addition to public addresses (e.g. 10.0.0.0/8,127.0.0.1/32).'),
  smtpUrl: setting('HERALD_SMTP_URL', '', url(['smtp:', 'smtps:']), 'SMTP server for the email channel, e.g. smtp://user:pass@host:587 or smtps://host:465. Empty: email disabled.', true),
  emailFrom: setting('HERALD_EMAIL_FROM', 'Herald <herald@localhost>', emailAddress, 'From address of email notifications.'),
  retrySchedule: setting('HERALD_RETRY_SCHEDULE', '5s,5m,30m,2h,5h,10h,10h', durationList, 'Delays between attempts after the first one; its length is the number of retries.'),
  bodyLimit: setting('HERALD_BODY_LIMIT', '262144', int(1024, 64 * 1024 * 1024), 'Largest accepted request body in bytes (larger: 413).'),
  webhookTimeout: setting('HERALD_WEBHOOK_TIMEOUT', '15s', duration(100, 120_000), 'Timeout of one outgoing webhook attempt.'),
  smtpTimeout: setting('HERALD_SMTP_TIMEOUT', '30s', duration(100, 300_000), 'Timeout of one SMTP attempt.'),
  concurrency: setting('HERALD_CONCURRENCY', '', perChannel('concurrency', 1, 4096, 'webhook:64,email:8'), 'Concurrent attempts per channel, as channel:number pairs. Defaults: webhook 128, email 8, fcm/apns/webpush 64, pushover 2, sms 16, kakao 16, slack 8, discord 4, inbox 32.'),
  throughput: setting('HERALD_THROUGHPUT', '', perChannel('throughput', 0.01, 100_000, 'fcm:500,sms:10'), 'Attempts started per second, per channel, as channel:number pairs (a vendor\'s rate limit). Empty: unlimited.'),
  circuitThreshold: setting('HERALD_CIRCUIT_THRESHOLD', '5', int(1, 10_000), 'Consecutive retryable failures of a vendor channel that open its circuit (no claims until the cooldown ends).'),
  circuitCooldown: setting('HERALD_CIRCUIT_COOLDOWN', '30s', duration(10, 3_600_000), 'How long an open circuit waits before a half-open probe; doubles after each failed probe (at most 5m or this).'),
  receiptPollInterval: setting('HERALD_RECEIPT_POLL_INTERVAL', '30s', duration(5_000, 3_600_000), 'How often a vendor receipt (Pushover emergency priority) is checked until it is acknowledged or expires. Pushover allows one check per 5 s per receipt.'),
  chatAnyHost: setting('HERALD_CHAT_ANY_HOST', 'false', bool, "Accept Slack and Discord webhook URLs on any host (Slack-compatible servers such as Mattermost or Rocket.Chat), not only the vendors' own; the SSRF policy still applies."),
  publicUrl: setting('HERALD_PUBLIC_URL', '', url(['http:', 'https:']), 'Base URL vendors call back (status callbacks, receipts), e.g. https://herald.example.com. Empty: Herald asks vendors for no callbacks.'),
  leaseTime: setting('HERALD_LEASE_TIME', '1m', duration(1000, 3_600_000), 'How long a worker owns a claimed delivery before another may take it.'),
  pollInterval: setting('HERALD_POLL_INTERVAL', '1s', duration(10, 60_000), 'How often idle workers look for due deliveries (wake-ups make it faster).'),
  sqliteWriterIdle: setting('HERALD_SQLITE_WRITER_IDLE', '30s', duration(0, 86_400_000), 'SQLite: how long the writer thread may have nothing to write before it stops (about 13 MB of memory); the next write starts it again, which delays that write by the thread\'s start. 0: never stop it.'),
  shutdownGrace: setting('HERALD_SHUTDOWN_GRACE', '10s', duration(0, 600_000), 'On SIGTERM, how long in-flight attempts may finish before their leases are released.'),
  keyRateLimit: setting('HERALD_KEY_RATE_LIMIT', '', requestRate, 'Requests each API key may make, as <requests>/<window> (e.g. 100/1s): a token bucket refilled continuously, shared through Redis when REDIS_URL is set. Excess: 429 with Retry-After. Empty: unlimited.'),
  idempotencyTtl: setting('HERALD_IDEMPOTENCY_TTL', '1d', duration(60_000, 30 * 86_400_000), 'How long Idempotency-Key results are kept.'),
  auditRetention: setting('HERALD_AUDIT_RETENTION', '', optionalDuration(3_600_000, 36_500 * 86_400_000), 'How long audit log entries are kept (e.g. 365d); older ones are purged hourly in the background. Empty: kept forever.'),
  oauthGithubClientId: setting('HERALD_OAUTH_GITHUB_CLIENT_ID', '', optionalStr, 'Client ID of the GitHub OAuth app for "Sign in with GitHub" (with HERALD_OAUTH_GITHUB_CLIENT_SECRET and HERALD_PUBLIC_URL). Empty: GitHub sign-in off.'),
  oauthGithubClientSecret: setting('HERALD_OAUTH_GITHUB_CLIENT_SECRET', '', optionalStr, 'Client secret of the GitHub OAuth app.', true),
  oauthGithubUrl: setting('HERALD_OAUTH_GITHUB_URL', 'https://github.com', url(['http:', 'https:']), 'Base URL of GitHub\'s web sign-in (authorize and token endpoints): GitHub Enterprise Server, or a local server in tests.'),
  oauthGithubApiUrl: setting('HERALD_OAUTH_GITHUB_API_URL', 'https://api.github.com', url(['http:', 'https:']), 'Base URL of the GitHub REST API (/user, /user/emails, /user/orgs).'),
  oauthGoogleClientId: setting('HERALD_OAUTH_GOOGLE_CLIENT_ID', '', optionalStr, 'OAuth client ID for "Sign in with Google" (with HERALD_OAUTH_GOOGLE_CLIENT_SECRET and HERALD_PUBLIC_URL). Empty: Google sign-in off.'),
  oauthGoogleClientSecret: setting('HERALD_OAUTH_GOOGLE_CLIENT_SECRET', '', optionalStr, 'OAuth client secret for Google sign-in.', true),
  oauthGoogleIssuer: setting('HERALD_OAUTH_GOOGLE_ISSUER', 'https://accounts.google.com', url(['http:', 'https:']), 'OpenID Connect issuer of Google sign-in (discovery at {issuer}/.well-known/openid-configuration).'),
  oidcProviders: setting<OidcProviderConfig[]>('HERALD_OIDC_PROVIDERS', '', parseOidcProviders, 'Generic OpenID Connect sign-in providers (Keycloak, Authentik, Okta, Auth0): a JSON list of {id, name, issuer, client_id, client_secret, scopes?}; `id` is the {provider} in /v1/auth/oauth/{provider}.', true),
  realtimeHistorySize: setting('HERALD_REALTIME_HISTORY_SIZE', '100', int(0, 100_000), 'Publications each real-time channel keeps for recovery after a reconnect (docs/realtime.md).'),
  realtimeHistoryAge: setting('HERALD_REALTIME_HISTORY_AGE', '5m', duration(1000, 7 * 86_400_000), 'How long a real-time channel keeps a publication for recovery.'),
  realtimeHeartbeat: setting('HERALD_REALTIME_HEARTBEAT', '25s', duration(100, 600_000), 'Interval of real-time heartbeats (WebSocket pings, SSE comment lines); a WebSocket that did not answer the previous ping is dropped.'),
  realtimePresenceTtl: setting('HERALD_REALTIME_PRESENCE_TTL', '20s', duration(1000, 600_000), 'How long a real-time session counts as online after its node last renewed it (every quarter of this): a node that dies without closing its sessions has them go offline within this.'),
  realtimeSendBuffer: setting('HERALD_REALTIME_SEND_BUFFER', '1048576', int(1024, 256 * 1024 * 1024), 'Bytes a real-time connection may have queued for sending; beyond that the client is a slow consumer and is disconnected (close 4004).'),
  realtimeFrameRate: setting('HERALD_REALTIME_FRAME_RATE', '100/10s', requestRate, 'Client frames one real-time connection may send, as <frames>/<window>; beyond that it is closed (1008). Empty: unlimited.'),
  hookBodyLimit: setting('HERALD_HOOK_BODY_LIMIT', '1048576', int(1024, 64 * 1024 * 1024), 'Largest accepted inbound webhook body (POST /hooks/...) in bytes (larger: 413).'),
  eventRetention: setting('HERALD_EVENT_RETENTION', '30d', duration(60_000, 3650 * 86_400_000), 'How long received webhook events are kept when their source sets no retention of its own; older ones are purged in the background.'),
  logLevel: setting('HERALD_LOG_LEVEL', 'info', logLevel, 'Log level: fatal, error, warn, info, debug, trace or silent.'),
} as const;

type Settings = typeof settings;
export type Config = Readonly<{ [K in keyof Settings]: ReturnType<Settings[K]['parse']> }> & {
  /** Resolved absolute data directory. */
  readonly dataPath: string;
};

/**
 * Reads and validates every setting. Throws ConfigError naming the first bad variable.
 * `overrides` take precedence over `env` (used by tests and the CLI).
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Record<string, string>> = {}): Config {
  const out: Record<string, unknown> = {};
  for (const [key, s] of Object.entries(settings) as [string, Setting<unknown>][]) {
    const raw = overrides[s.env] ?? env[s.env] ?? s.default ?? '';
    try {
      out[key] = s.parse(raw.trim());
    } catch (err) {
      throw new ConfigError(s.env, (err as Error).message);
    }
  }
  // A lease must outlive the longest attempt, or a slow attempt's delivery would be claimed again
  // while still in flight.
  const longestAttempt = Math.max(out.webhookTimeout as number, out.smtpUrl ? (out.smtpTimeout as number) : 0);
  if ((out.leaseTime as number) < longestAttempt * 2) {
    throw new ConfigError('HERALD_LEASE_TIME', `must be at least twice the longest attempt timeout (${longestAttempt}ms: HERALD_WEBHOOK_TIMEOUT / HERALD_SMTP_TIMEOUT)`);
  }
  // Every process of a deployment on PostgreSQL must decrypt the secrets any other one stored; a
  // key generated into one process's data dir would be that process's alone.
  if (out.databaseUrl !== undefined && out.secretKey === undefined) {
    throw new ConfigError('HERALD_SECRET_KEY', 'must be set when DATABASE_URL is set, to the same value on every node (each node decrypts secrets any node stored)');
  }
  if ((out.adminEmail === undefined) !== (out.adminPassword === undefined)) {
    throw new ConfigError(out.adminEmail === undefined ? 'HERALD_ADMIN_EMAIL' : 'HERALD_ADMIN_PASSWORD', 'HERALD_ADMIN_EMAIL and HERALD_ADMIN_PASSWORD are set together');
  }
  if (out.adminPassword !== undefined) {
    const verdict = passwordVerdict(out.adminPassword as string);
    if (!verdict.ok) throw new ConfigError('HERALD_ADMIN_PASSWORD', verdict.message);
  }
  for (const p of ['GITHUB', 'GOOGLE'] as const) {
    const id = out[`oauth${p[0]}${p.slice(1).toLowerCase()}ClientId`];
    const secret = out[`oauth${p[0]}${p.slice(1).toLowerCase()}ClientSecret`];
    if ((id === undefined) !== (secret === undefined)) {
      throw new ConfigError(id === undefined ? `HERALD_OAUTH_${p}_CLIENT_ID` : `HERALD_OAUTH_${p}_CLIENT_SECRET`, `HERALD_OAUTH_${p}_CLIENT_ID and HERALD_OAUTH_${p}_CLIENT_SECRET are set together`);
    }
  }
  // Sign-in redirect URIs are {HERALD_PUBLIC_URL}/v1/auth/oauth/{provider}/callback.
  if ((out.oauthGithubClientId !== undefined || out.oauthGoogleClientId !== undefined || (out.oidcProviders as unknown[]).length > 0) && out.publicUrl === undefined) {
    throw new ConfigError('HERALD_PUBLIC_URL', 'must be set when a sign-in provider is configured (HERALD_OAUTH_GITHUB_*, HERALD_OAUTH_GOOGLE_*, HERALD_OIDC_PROVIDERS): redirect URIs are {HERALD_PUBLIC_URL}/v1/auth/oauth/{provider}/callback');
  }
  const dataDir = out.dataDir as string;
  out.dataPath = isAbsolute(dataDir) ? dataDir : resolve(process.cwd(), dataDir);
  return deepFreeze(out) as Config;
}

/** The resolved configuration for display: environment names, secrets masked. */
export function describeConfig(config: Config): { variable: string; value: string; doc: string }[] {
  return (Object.entries(settings) as [keyof Settings, Setting<unknown>][]).map(([key, s]) => {
    const value = config[key];
    const shown = s.secret ? maskSecret(value) : value !== undefined && s.parse.show ? s.parse.show(value) : display(value);
    return { variable: s.env, value: shown, doc: s.doc };
  });
}

function maskSecret(value: unknown): string {
  if (value === undefined || value === '') return '(unset)';
  if (value instanceof URL) {
    const u = new URL(value.href);
    if (u.password) u.password = '****';
    return u.href;
  }
  return '****';
}

function display(value: unknown): string {
  if (value === undefined) return '(unset)';
  if (Array.isArray(value)) return value.map(display).join(',');
  if (value instanceof URL) return value.href;
  if (typeof value === 'object' && value !== null) {
    if ('text' in value) return String((value as { text: string }).text);
    return Object.entries(value).map(([k, v]) => `${k}:${display(v)}`).join(',');
  }
  return String(value);
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object' && !(o instanceof URL)) {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}
