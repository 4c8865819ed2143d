// Apple Push Notification service (token-based provider API over HTTP/2). One request per device:
//   POST {base}/3/device/{hex device token}
//   headers authorization: bearer <ES256 JWT {alg, kid: key_id} {iss: team_id, iat}>, apns-topic
//           (options.topic, else the device's app, else config.topic), apns-push-type (alert, or
//           background when content_available is set without title/body), apns-priority (10 alert,
//           5 background), apns-id (a UUID derived from the delivery id: stable across retries),
//           apns-expiration and apns-collapse-id when given
//   body    {aps: {alert: {title, body}, sound, badge, thread-id, category, mutable-content,
//           content-available}, ...notification.data}; at most 4096 bytes, the alert body truncated
//           with "…" to fit, else PermanentError payload_too_large
// The JWT is signed once per workspace credentials version and reused for 50 minutes (Apple refuses
// tokens older than an hour and throttles refreshes more often than every 20 minutes). One HTTP/2
// session per (workspace, origin, credentials version), dropped on GOAWAY, error, 503 or idleness.
// Destinations are resolved here and refused unless address-policy allows them.
// Outcome (Apple's status and JSON {reason}):
//   200                                          success; providerMessageId = the apns-id answered
//   410 Unregistered / ExpiredToken              permanent, address gone
//   400 BadDeviceToken, DeviceTokenNotForTopic   permanent, address gone
//   400 IdleTimeout                              retryable (the session is dropped)
//   400 other reasons                            permanent, errorClass = the reason in snake_case
//   403 ExpiredProviderToken / InvalidProviderToken  the cached JWT is dropped; retryable
//   403 other reasons                            permanent 'auth'
//   413 PayloadTooLarge                          permanent 'payload_too_large'
//   429 (TooManyRequests, TooManyProviderTokenUpdates)  rate limited, Retry-After honoured
//   5xx                                          retryable, Retry-After honoured (503 drops the session)
//   other 4xx                                    permanent http_<status>
// Network failures: refused destination permanent 'destination_refused'; timeout 'timeout'; the
// caller's abort 'aborted'; anything else 'network' (all retryable except the refusal).

import { createHash } from 'node:crypto';
import http2 from 'node:http2';
import { isIP } from 'node:net';
import tls from 'node:tls';
import { Type, type Static } from 'typebox';
import { parseRetryAfter } from '../domain/retry.ts';
import { checkAddress, type Cidr } from '../net/address-policy.ts';
import { BlockedDestinationError, guardedLookup } from '../net/safe-http.ts';
import {
  PermanentError,
  RateLimitedError,
  RetryableError,
  type AttemptDetail,
  type Channel,
  type DeliveryJob,
  type DeliveryResult,
} from './channel.ts';

export const APNS_PRODUCTION_URL = 'https://api.push.apple.com';
export const APNS_SANDBOX_URL = 'https://api.sandbox.push.apple.com';
export const APNS_MAX_PAYLOAD_BYTES = 4096;
export const APNS_MAX_COLLAPSE_ID_BYTES = 64;
/** A signed provider token is reused this long, then signed again. */
export const APNS_TOKEN_REFRESH_MS = 50 * 60_000;

export const ApnsProviderConfig = Type.Object(
  {
    team_id: Type.String({ pattern: '^[A-Z0-9]{10}$', description: 'The 10-character Team ID of the Apple developer account' }),
    key_id: Type.String({ pattern: '^[A-Z0-9]{10}$', description: 'The 10-character Key ID of the APNs authentication key' }),
    private_key: Type.String({ minLength: 1, maxLength: 8192, description: 'The APNs authentication key (.p8 file contents, PKCS#8 PEM)' }),
    topic: Type.String({ minLength: 1, maxLength: 255, description: 'Default apns-topic: the app bundle id' }),
    environment: Type.Optional(Type.Union([Type.Literal('production'), Type.Literal('sandbox')], { description: 'Default production' })),
    ca: Type.Optional(Type.String({ maxLength: 65536, description: 'Extra CA certificate(s) to trust, PEM (private proxies, tests)' })),
  },
  { additionalProperties: false },
);
export type ApnsProviderConfig = Static<typeof ApnsProviderConfig>;

export const APNS_SECRET_FIELDS: readonly string[] = ['private_key'];

export const ApnsOptions = Type.Object(
  {
    push_type: Type.Optional(Type.Union([Type.Literal('alert'), Type.Literal('background')], { description: 'Default alert; background when content_available is set and the notification has no title or body' })),
    priority: Type.Optional(Type.Union([Type.Literal(10), Type.Literal(5), Type.Literal(1)], { description: 'Default 10 for alert, 5 for background (which allows no other)' })),
    expiration: Type.Optional(Type.Integer({ minimum: 0, maximum: 4294967295, description: 'Unix seconds after which APNs stops trying; 0 = deliver now or never' })),
    collapse_id: Type.Optional(Type.String({ minLength: 1, maxLength: APNS_MAX_COLLAPSE_ID_BYTES, description: 'At most 64 bytes (UTF-8)' })),
    sound: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    badge: Type.Optional(Type.Integer({ minimum: 0, maximum: 2147483647 })),
    thread_id: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    category: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    mutable_content: Type.Optional(Type.Boolean()),
    content_available: Type.Optional(Type.Boolean()),
    topic: Type.Optional(Type.String({ minLength: 1, maxLength: 255, description: 'Overrides the device app and the provider topic' })),
  },
  { additionalProperties: false },
);
export type ApnsOptions = Static<typeof ApnsOptions>;

export interface ApnsChannelOptions {
  /** Networks allowed beyond the global unicast default (HERALD_ALLOW_NETWORKS). */
  allow: readonly Cidr[];
  /** The limit for one delivery: connecting, sending and the answer. */
  timeoutMs: number;
  /** An HTTP/2 session unused this long is closed. Default 5 minutes. */
  idleTimeoutMs?: number;
  /** Clock for the provider token's iat and age (tests). */
  now?: () => number;
}

const DEVICE_TOKEN = /^[0-9a-fA-F]{64,200}$/;
const EXCERPT_BYTES = 4096;

interface SignedToken {
  version: string;
  issuedAt: number;
  jwt: Promise<string>;
  signed?: string;
}

interface SessionEntry {
  version: string;
  session: http2.ClientHttp2Session;
  connected: Promise<void>;
}

interface Answer {
  status: number;
  headers: http2.IncomingHttpHeaders;
  excerpt: string;
}

class StreamRefusedError extends Error {
  override name = 'StreamRefusedError';
}


export class ApnsChannel implements Channel {
  readonly name = 'apns' as const;
  readonly #allow: readonly Cidr[];
  readonly #timeoutMs: number;
  readonly #idleTimeoutMs: number;
  readonly #now: () => number;
  /** Per workspace: the JWT signed from its current credentials. */
  readonly #tokens = new Map<string, SignedToken>();
  /** Per workspace and origin: the HTTP/2 session for its current credentials. */
  readonly #sessions = new Map<string, SessionEntry>();
  #closed = false;

  constructor(opts: ApnsChannelOptions) {
    this.#allow = opts.allow;
    this.#timeoutMs = opts.timeoutMs;
    this.#idleTimeoutMs = opts.idleTimeoutMs ?? 5 * 60_000;
    this.#now = opts.now ?? Date.now;
  }

  async deliver(job: DeliveryJob, signal: AbortSignal): Promise<DeliveryResult> {
    if (this.#closed) throw new RetryableError('closed', 'the APNs channel is closed');
    const device = job.device;
    if (!device) throw new PermanentError('no_address', 'delivery has no device');
    if (!DEVICE_TOKEN.test(device.token)) throw new PermanentError('bad_device_token', 'device token is not a hex APNs device token', {}, { addressGone: true });
    const provider = job.provider;
    if (!provider) throw new PermanentError('not_configured', 'the workspace has no APNs provider configured');
    const config = readConfig(provider.config);
    const options = job.notification.options as ApnsOptions;

    const topic = options.topic ?? device.app ?? config.topic;
    const hasAlert = job.notification.title !== '' || job.notification.body !== '';
    const pushType = options.push_type ?? (options.content_available && !hasAlert ? 'background' : 'alert');
    const priority = options.priority ?? (pushType === 'background' ? 5 : 10);
    if (pushType === 'background' && priority !== 5) throw new PermanentError('invalid_options', 'APNs background notifications must have priority 5');
    if (options.collapse_id !== undefined && Buffer.byteLength(options.collapse_id) > APNS_MAX_COLLAPSE_ID_BYTES) {
      throw new PermanentError('invalid_options', `collapse_id is over ${APNS_MAX_COLLAPSE_ID_BYTES} bytes`);
    }
    const payload = buildPayload(job, options, pushType);

    const base = new URL(apnsBaseUrl(provider.baseUrl, config.environment));
    if (base.protocol !== 'https:') throw new PermanentError('invalid_config', `APNs base URL must be https: ${base.origin}`);
    const path = `${base.pathname.replace(/\/+$/, '')}/3/device/${device.token}`;

    const jwt = await this.#providerToken(job.workspaceId, provider.version, config);
    const headers: http2.OutgoingHttpHeaders = {
      ':method': 'POST',
      ':path': path,
      authorization: `bearer ${jwt}`,
      'apns-topic': topic,
      'apns-push-type': pushType,
      'apns-priority': String(priority),
      'apns-id': apnsId(job.deliveryId),
      'content-type': 'application/json',
    };
    if (options.expiration !== undefined) headers['apns-expiration'] = String(options.expiration);
    if (options.collapse_id !== undefined) headers['apns-collapse-id'] = options.collapse_id;

    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const abort = AbortSignal.any([signal, timeout]);
    const sessionKey = `${job.workspaceId}\n${base.origin}`;
    let answer: Answer;
    try {
      answer = await this.#exchange(sessionKey, base, provider.version, config.ca, headers, payload, abort);
    } catch (err) {
      if (err instanceof BlockedDestinationError) throw new PermanentError('destination_refused', err.message);
      if (timeout.aborted) throw new RetryableError('timeout', `APNs did not answer within ${this.#timeoutMs}ms`);
      if (signal.aborted) throw new RetryableError('aborted', 'delivery aborted');
      const e = err as { name?: string; code?: string; message: string };
      throw new RetryableError('network', `${e.code ?? e.name ?? 'error'}: ${e.message}`);
    }
    return this.#classify(answer, job.workspaceId, jwt, sessionKey);
  }

  #classify(res: Answer, workspaceId: string, jwt: string, sessionKey: string): DeliveryResult {
    const detail: AttemptDetail = { httpStatus: res.status, response: res.excerpt };
    const apnsIdAnswered = header(res.headers['apns-id']);
    if (res.status === 200) return apnsIdAnswered ? { ...detail, providerMessageId: apnsIdAnswered } : detail;
    const reason = readReason(res.excerpt);
    const said = reason ? `APNs answered ${res.status} ${reason}` : `APNs answered ${res.status}`;
    const retryAfter = parseRetryAfter(header(res.headers['retry-after']), this.#now());
    switch (res.status) {
      case 400:
        if (reason === 'BadDeviceToken' || reason === 'DeviceTokenNotForTopic') {
          throw new PermanentError(snake(reason), said, detail, { addressGone: true });
        }
        if (reason === 'IdleTimeout') {
          this.#dropSession(sessionKey);
          throw new RetryableError('idle_timeout', said, detail);
        }
        throw new PermanentError(reason ? snake(reason) : 'http_400', said, detail);
      case 403:
        if (reason === 'ExpiredProviderToken' || reason === 'InvalidProviderToken') {
          if (this.#tokens.get(workspaceId)?.signed === jwt) this.#tokens.delete(workspaceId);
          throw new RetryableError(snake(reason), `${said}: a new provider token will be signed`, detail);
        }
        throw new PermanentError('auth', said, detail);
      case 410:
        throw new PermanentError(reason === 'ExpiredToken' ? 'expired_token' : 'unregistered', said, detail, { addressGone: true });
      case 413:
        throw new PermanentError('payload_too_large', said, detail);
      case 429:
        throw new RateLimitedError(said, retryAfter, detail);
    }
    if (res.status >= 500) {
      if (res.status === 503) this.#dropSession(sessionKey);
      throw new RetryableError(`http_${res.status}`, said, detail, retryAfter);
    }
    throw new PermanentError(`http_${res.status}`, said, detail);
  }

  #providerToken(workspaceId: string, version: string, config: ConfigRead): Promise<string> {
    const now = this.#now();
    const cached = this.#tokens.get(workspaceId);
    if (cached && cached.version === version && now - cached.issuedAt < APNS_TOKEN_REFRESH_MS && now >= cached.issuedAt) return cached.jwt;
    const entry: SignedToken = { version, issuedAt: now, jwt: signProviderToken(config, now) };
    this.#tokens.set(workspaceId, entry);
    entry.jwt.then(
      (jwt) => {
        entry.signed = jwt;
      },
      () => {
        if (this.#tokens.get(workspaceId) === entry) this.#tokens.delete(workspaceId);
      },
    );
    return entry.jwt;
  }

  async #exchange(key: string, base: URL, version: string, ca: string | undefined, headers: http2.OutgoingHttpHeaders, body: string, abort: AbortSignal): Promise<Answer> {
    const host = base.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0) {
      const verdict = checkAddress(host, this.#allow);
      if (!verdict.allowed) throw new BlockedDestinationError(`destination ${host} refused: ${verdict.reason}`);
    }
    for (let attempt = 0; ; attempt++) {
      const entry = this.#session(key, base, version, ca);
      await untilAborted(entry.connected, abort).catch((err) => {
        if (abort.aborted && this.#sessions.get(key) === entry) this.#dropSession(key, true);
        throw err;
      });
      try {
        return await request(entry.session, headers, body, abort);
      } catch (err) {
        // A stream refused before APNs processed it (GOAWAY, closing session) is safe to send again, once.
        if (err instanceof StreamRefusedError && attempt === 0 && !abort.aborted) {
          if (this.#sessions.get(key) === entry) this.#dropSession(key);
          continue;
        }
        throw err;
      }
    }
  }

  #session(key: string, base: URL, version: string, ca: string | undefined): SessionEntry {
    const existing = this.#sessions.get(key);
    if (existing && existing.version === version && !existing.session.closed && !existing.session.destroyed) return existing;
    if (existing) this.#dropSession(key);

    const host = base.hostname.replace(/^\[|\]$/g, '');
    const port = base.port ? Number(base.port) : 443;
    const allow = this.#allow;
    const session = http2.connect(base.origin, {
      createConnection: () => {
        return tls.connect({
          host,
          port,
          servername: isIP(host) === 0 ? host : undefined,
          ALPNProtocols: ['h2'],
          minVersion: 'TLSv1.2',
          ca: ca ? [...tls.rootCertificates, ca] : undefined,
          lookup: guardedLookup(allow) as never,
        });
      },
    });
    const connected = new Promise<void>((resolve, reject) => {
      session.once('connect', () => resolve());
      session.once('error', reject);
      session.once('close', () => reject(new Error('session closed before connecting')));
    });
    connected.catch(() => {});
    const entry: SessionEntry = { version, session, connected };
    session.on('error', () => this.#forget(key, entry));
    session.on('close', () => this.#forget(key, entry));
    session.on('goaway', () => {
      this.#forget(key, entry);
      if (!session.closed) session.close();
    });
    session.setTimeout(this.#idleTimeoutMs, () => {
      this.#forget(key, entry);
      session.close();
    });
    this.#sessions.set(key, entry);
    return entry;
  }

  #forget(key: string, entry: SessionEntry): void {
    if (this.#sessions.get(key) === entry) this.#sessions.delete(key);
  }

  /** Stops new streams on the session; streams in flight finish unless `now`. */
  #dropSession(key: string, now = false): void {
    const entry = this.#sessions.get(key);
    if (!entry) return;
    this.#sessions.delete(key);
    if (now) entry.session.destroy();
    else if (!entry.session.closed) entry.session.close();
  }

  async close(): Promise<void> {
    this.#closed = true;
    const sessions = [...this.#sessions.values()].map((e) => e.session);
    this.#sessions.clear();
    this.#tokens.clear();
    await Promise.all(
      sessions.map(
        (s) =>
          new Promise<void>((resolve) => {
            if (s.destroyed) return resolve();
            const t = setTimeout(() => s.destroy(), this.#timeoutMs);
            s.close(() => {
              clearTimeout(t);
              resolve();
            });
          }),
      ),
    );
  }
}

interface ConfigRead {
  teamId: string;
  keyId: string;
  privateKey: string;
  topic: string;
  environment: 'production' | 'sandbox';
  ca: string | undefined;
}

function readConfig(c: Record<string, unknown>): ConfigRead {
  const str = (k: string) => {
    const v = c[k];
    if (typeof v !== 'string' || v === '') throw new PermanentError('invalid_config', `APNs provider config has no ${k}`);
    return v;
  };
  return {
    teamId: str('team_id'),
    keyId: str('key_id'),
    privateKey: str('private_key'),
    topic: str('topic'),
    environment: c.environment === 'sandbox' ? 'sandbox' : 'production',
    ca: typeof c.ca === 'string' && c.ca !== '' ? c.ca : undefined,
  };
}

async function signProviderToken(config: ConfigRead, nowMs: number): Promise<string> {
  // jose is loaded with the first token: a process that sends no APNs (nor FCM) never loads it.
  const { importPKCS8, SignJWT } = await import('jose');
  let key;
  try {
    key = await importPKCS8(config.privateKey, 'ES256');
  } catch (err) {
    throw new PermanentError('invalid_config', `APNs private_key is not a PKCS#8 P-256 key: ${(err as Error).message}`);
  }
  return new SignJWT({})
    .setProtectedHeader({ alg: 'ES256', kid: config.keyId })
    .setIssuer(config.teamId)
    .setIssuedAt(Math.floor(nowMs / 1000))
    .sign(key);
}

/** The provider's base_url, else Apple's endpoint for the environment. */
export function apnsBaseUrl(baseUrl: string | null, environment: unknown): string {
  return baseUrl ?? (environment === 'sandbox' ? APNS_SANDBOX_URL : APNS_PRODUCTION_URL);
}

/** The aps dictionary and custom data as JSON, within APNs' size limit (the alert body truncated). */
export function buildPayload(job: DeliveryJob, options: ApnsOptions, pushType: 'alert' | 'background'): string {
  const { title, body, data } = job.notification;
  const custom: Record<string, unknown> = {};
  if (data !== null && data !== undefined) {
    if (typeof data === 'object' && !Array.isArray(data)) {
      for (const [k, v] of Object.entries(data)) if (k !== 'aps') custom[k] = v;
    } else {
      custom.data = data;
    }
  }
  const render = (alertBody: string): string => {
    const aps: Record<string, unknown> = {};
    if (pushType === 'alert') {
      const alert: Record<string, string> = {};
      if (title !== '') alert.title = title;
      if (alertBody !== '') alert.body = alertBody;
      if (Object.keys(alert).length > 0) aps.alert = alert;
      if (options.sound !== undefined) aps.sound = options.sound;
      if (options.badge !== undefined) aps.badge = options.badge;
    }
    if (options.thread_id !== undefined) aps['thread-id'] = options.thread_id;
    if (options.category !== undefined) aps.category = options.category;
    if (options.mutable_content) aps['mutable-content'] = 1;
    if (options.content_available || pushType === 'background') aps['content-available'] = 1;
    return JSON.stringify({ aps, ...custom });
  };
  const fits = (s: string) => Buffer.byteLength(s) <= APNS_MAX_PAYLOAD_BYTES;

  const full = render(body);
  if (fits(full)) return full;
  const tooLarge = (why: string) =>
    new PermanentError('payload_too_large', `APNs payload is ${Buffer.byteLength(full)} bytes, over the ${APNS_MAX_PAYLOAD_BYTES}-byte limit${why}`);
  if (pushType !== 'alert' || body === '') throw tooLarge(' (the title, options and data alone are too large)');
  const chars = Array.from(body);
  const cut = (n: number) => `${chars.slice(0, n).join('').trimEnd()}…`;
  if (!fits(render(cut(0)))) throw tooLarge(' even with the alert body truncated (the title, options and data alone are too large)');
  let lo = 0;
  let hi = chars.length - 1;
  while (lo < hi) {
    const mid = Math.ceil((lo + hi) / 2);
    if (fits(render(cut(mid)))) lo = mid;
    else hi = mid - 1;
  }
  return render(cut(lo));
}

/** A canonical lowercase UUID derived from the delivery id (RFC 9562 version 8). */
export function apnsId(deliveryId: string): string {
  const b = createHash('sha256').update(`herald-apns:${deliveryId}`).digest();
  b[6] = (b[6]! & 0x0f) | 0x80;
  b[8] = (b[8]! & 0x3f) | 0x80;
  const h = b.subarray(0, 16).toString('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function untilAborted<T>(p: Promise<T>, abort: AbortSignal): Promise<T> {
  if (abort.aborted) return Promise.reject(abort.reason);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(abort.reason);
    abort.addEventListener('abort', onAbort, { once: true });
    p.then(
      (v) => {
        abort.removeEventListener('abort', onAbort);
        resolve(v);
      },
      (e) => {
        abort.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}

function request(session: http2.ClientHttp2Session, headers: http2.OutgoingHttpHeaders, body: string, abort: AbortSignal): Promise<Answer> {
  return new Promise<Answer>((resolve, reject) => {
    let stream: http2.ClientHttp2Stream;
    try {
      stream = session.request(headers, { endStream: false });
    } catch (err) {
      const code = (err as { code?: string }).code;
      if (code === 'ERR_HTTP2_GOAWAY_SESSION' || code === 'ERR_HTTP2_INVALID_SESSION') return reject(new StreamRefusedError((err as Error).message));
      return reject(err);
    }
    let status = 0;
    let resHeaders: http2.IncomingHttpHeaders = {};
    let size = 0;
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (fn: () => void) => {
      if (settled) return;
      settled = true;
      abort.removeEventListener('abort', onAbort);
      fn();
    };
    const onAbort = () => {
      finish(() => reject(abort.reason));
      stream.close(http2.constants.NGHTTP2_CANCEL);
    };
    abort.addEventListener('abort', onAbort, { once: true });
    stream.on('response', (h) => {
      status = Number(h[':status']);
      resHeaders = h;
    });
    stream.on('data', (chunk: Buffer) => {
      if (size < EXCERPT_BYTES) chunks.push(chunk.subarray(0, EXCERPT_BYTES - size));
      size += chunk.length;
    });
    stream.on('end', () => finish(() => resolve({ status, headers: resHeaders, excerpt: Buffer.concat(chunks).toString('utf8') })));
    const refused = () => stream.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM;
    stream.on('error', (err) => finish(() => reject(refused() ? new StreamRefusedError('APNs refused the stream') : err)));
    stream.on('close', () => {
      finish(() => reject(refused() ? new StreamRefusedError('APNs refused the stream') : new Error(`stream closed (code ${stream.rstCode}) before an answer`)));
    });
    stream.end(body);
  });
}

function readReason(excerpt: string): string | undefined {
  try {
    const parsed = JSON.parse(excerpt) as { reason?: unknown };
    return typeof parsed?.reason === 'string' && /^[A-Za-z]{1,64}$/.test(parsed.reason) ? parsed.reason : undefined;
  } catch {
    return undefined;
  }
}

/** "DeviceTokenNotForTopic" -> "device_token_not_for_topic". */
function snake(reason: string): string {
  return reason.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();
}

function header(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}
