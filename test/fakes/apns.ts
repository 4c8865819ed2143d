// A fake APNs provider API: an HTTP/2 TLS server on 127.0.0.1 (ephemeral port) that checks requests
// the way Apple does and answers with Apple's status codes and {reason} bodies.
//
// Checked, in Apple's order of concern:
//   :method POST (405 MethodNotAllowed), :path /3/device/<hex token> (404 BadPath, 400
//   MissingDeviceToken, 400 BadDeviceToken), authorization "bearer <JWT>" (403 MissingProviderToken),
//   the JWT: ES256 signature by the team's key, kid = key id, iss = team id, iat present and not in
//   the future (403 InvalidProviderToken), iat at most one hour old (403 ExpiredProviderToken), a new
//   token for the key sooner than `minTokenUpdateIntervalSec` after the last (429
//   TooManyProviderTokenUpdates; off unless set), apns-topic (400 MissingTopic, 400 TopicDisallowed,
//   400 DeviceTokenNotForTopic for devices registered to another topic), apns-push-type (400
//   InvalidPushType), apns-priority 1/5/10 and 5 for background (400 BadPriority), apns-expiration
//   (400 BadExpirationDate), apns-collapse-id <= 64 bytes (400 BadCollapseId), apns-id a canonical
//   UUID (400 BadMessageId), the body: not empty (400 PayloadEmpty), <= 4096 bytes (413
//   PayloadTooLarge), a JSON object with an `aps` object (400 BadPayload: Apple documents no reason
//   for this case, so the fake's own name makes a test notice it).
// Then a scripted answer for the device token if any (failures, Retry-After, hanging), else 200 with
// the request's apns-id (or a new UUID) and an empty body.

import { execFileSync } from 'node:child_process';
import { generateKeyPairSync, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeProtectedHeader, importSPKI, jwtVerify } from 'jose';

export interface ApnsKeyPair {
  /** PKCS#8 PEM, as in the .p8 file Apple hands out. */
  privateKeyPem: string;
  publicKeyPem: string;
}

export function generateApnsKey(): ApnsKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  return {
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

export interface TlsMaterial {
  cert: string;
  key: string;
}

/** A self-signed certificate for localhost and 127.0.0.1 (openssl CLI). */
export function generateTlsCert(): TlsMaterial {
  const dir = mkdtempSync(join(tmpdir(), 'herald-apns-tls-'));
  try {
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=localhost',
        '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1', '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem')],
      { stdio: 'pipe' },
    );
    return { cert: readFileSync(join(dir, 'cert.pem'), 'utf8'), key: readFileSync(join(dir, 'key.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export interface FakeApnsOptions {
  teamId: string;
  keyId: string;
  publicKeyPem: string;
  /** Topics the team may push to. */
  topics: string[];
  tls: TlsMaterial;
  /** The fake's clock (ms), for token age. */
  now?: () => number;
  minTokenUpdateIntervalSec?: number;
}

export interface ScriptedAnswer {
  status: number;
  reason?: string;
  /** 410 only: when APNs learnt the token was invalid (ms since the epoch). */
  timestamp?: number;
  retryAfter?: string;
  /** How many requests get this answer (default: all). */
  times?: number;
  /** Never answer (the stream stays open). */
  hang?: boolean;
}

export interface ReceivedPush {
  method: string;
  path: string;
  deviceToken: string;
  headers: Record<string, string>;
  body: string;
  /** The parsed body, when it was JSON. */
  payload: unknown;
  jwt: string | undefined;
  status: number;
  reason: string | undefined;
}

const PUSH_TYPES = new Set(['alert', 'background', 'location', 'voip', 'complication', 'fileprovider', 'mdm', 'liveactivity', 'pushtotalk', 'controls', 'widgets']);
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

export class FakeApns {
  readonly received: ReceivedPush[] = [];
  /** Distinct provider tokens that passed verification. */
  readonly providerTokens = new Set<string>();
  /** HTTP/2 connections accepted so far. */
  sessionsOpened = 0;
  readonly #opts: FakeApnsOptions;
  readonly #server: http2.Http2SecureServer;
  readonly #sessions = new Set<http2.ServerHttp2Session>();
  readonly #scripts = new Map<string, ScriptedAnswer>();
  readonly #deviceTopics = new Map<string, string>();
  readonly #hanging = new Set<http2.ServerHttp2Stream>();
  #lastNewTokenAt: number | undefined;
  #key: Awaited<ReturnType<typeof importSPKI>> | undefined;
  url = '';

  constructor(opts: FakeApnsOptions) {
    this.#opts = opts;
    this.#server = http2.createSecureServer({ cert: opts.tls.cert, key: opts.tls.key, allowHTTP1: false });
    this.#server.on('session', (s) => {
      this.sessionsOpened++;
      this.#sessions.add(s);
      s.on('close', () => this.#sessions.delete(s));
      s.on('error', () => {});
    });
    this.#server.on('stream', (stream, headers) => {
      stream.on('error', () => {});
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        void this.#handle(stream, headers, Buffer.concat(chunks).toString('utf8'));
      });
    });
  }

  get openSessions(): number {
    return this.#sessions.size;
  }

  async start(): Promise<this> {
    this.#key = await importSPKI(this.#opts.publicKeyPem, 'ES256');
    await new Promise<void>((resolve) => this.#server.listen(0, '127.0.0.1', resolve));
    this.url = `https://localhost:${(this.#server.address() as AddressInfo).port}`;
    return this;
  }

  get port(): number {
    return (this.#server.address() as AddressInfo).port;
  }

  /** Answers requests for `deviceToken` this way (replacing any earlier script for it). */
  script(deviceToken: string, answer: ScriptedAnswer): void {
    this.#scripts.set(deviceToken, { ...answer });
  }

  /** The device belongs to `topic`: other topics get 400 DeviceTokenNotForTopic. */
  registerDevice(deviceToken: string, topic: string): void {
    this.#deviceTopics.set(deviceToken, topic);
  }

  /**
   * Sends GOAWAY on every open connection (no new streams); with `close`, also closes each once its
   * streams are done, else leaves the connection open as a server that is draining would.
   */
  async goawayAll(close = true): Promise<void> {
    await Promise.all(
      [...this.#sessions].map(
        (s) =>
          new Promise<void>((resolve) => {
            s.goaway(http2.constants.NGHTTP2_NO_ERROR);
            if (close) s.close(() => resolve());
            else resolve();
          }),
      ),
    );
  }

  async close(): Promise<void> {
    for (const s of this.#hanging) s.close(http2.constants.NGHTTP2_CANCEL);
    for (const s of this.#sessions) s.destroy();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #now(): number {
    return (this.#opts.now ?? Date.now)();
  }

  async #handle(stream: http2.ServerHttp2Stream, h: http2.IncomingHttpHeaders, body: string): Promise<void> {
    const method = String(h[':method']);
    const path = String(h[':path']);
    const headers: Record<string, string> = {};
    for (const [k, v] of Object.entries(h)) if (!k.startsWith(':') && v !== undefined) headers[k] = Array.isArray(v) ? v.join(', ') : String(v);
    const m = /^\/3\/device\/([^/?]*)$/.exec(path);
    const deviceToken = m?.[1] ?? '';
    const auth = headers.authorization;
    const jwt = auth && /^bearer /i.test(auth) ? auth.slice(7) : undefined;
    let payload: unknown;
    try {
      payload = JSON.parse(body);
    } catch {
      payload = undefined;
    }
    const rec: ReceivedPush = { method, path, deviceToken, headers, body, payload, jwt, status: 0, reason: undefined };
    this.received.push(rec);

    const verdict = await this.#check(rec);
    if (verdict) return this.#answer(stream, rec, verdict);
    const scripted = this.#scripts.get(deviceToken);
    if (scripted) {
      if (scripted.times !== undefined && --scripted.times <= 0) this.#scripts.delete(deviceToken);
      if (scripted.hang) {
        this.#hanging.add(stream);
        stream.on('close', () => this.#hanging.delete(stream));
        return;
      }
      return this.#answer(stream, rec, scripted);
    }
    this.#answer(stream, rec, { status: 200 });
  }

  async #check(rec: ReceivedPush): Promise<ScriptedAnswer | undefined> {
    const bad = (status: number, reason: string): ScriptedAnswer => ({ status, reason });
    const h = rec.headers;
    if (rec.method !== 'POST') return bad(405, 'MethodNotAllowed');
    if (!/^\/3\/device\//.test(rec.path)) return bad(404, 'BadPath');
    if (rec.deviceToken === '') return bad(400, 'MissingDeviceToken');
    if (!/^[0-9a-fA-F]{64}$/.test(rec.deviceToken)) return bad(400, 'BadDeviceToken');

    if (rec.jwt === undefined) return bad(403, 'MissingProviderToken');
    const tokenVerdict = await this.#checkToken(rec.jwt);
    if (tokenVerdict) return tokenVerdict;

    const topic = h['apns-topic'];
    if (!topic) return bad(400, 'MissingTopic');
    if (!this.#opts.topics.includes(topic)) return bad(400, 'TopicDisallowed');
    const registered = this.#deviceTopics.get(rec.deviceToken);
    if (registered !== undefined && registered !== topic) return bad(400, 'DeviceTokenNotForTopic');
    const pushType = h['apns-push-type'];
    if (pushType !== undefined && !PUSH_TYPES.has(pushType)) return bad(400, 'InvalidPushType');
    const priority = h['apns-priority'];
    if (priority !== undefined && !['1', '5', '10'].includes(priority)) return bad(400, 'BadPriority');
    if (pushType === 'background' && priority !== '5') return bad(400, 'BadPriority');
    const expiration = h['apns-expiration'];
    if (expiration !== undefined && !/^\d{1,10}$/.test(expiration)) return bad(400, 'BadExpirationDate');
    const collapse = h['apns-collapse-id'];
    if (collapse !== undefined && Buffer.byteLength(collapse) > 64) return bad(400, 'BadCollapseId');
    const id = h['apns-id'];
    if (id !== undefined && !UUID.test(id)) return bad(400, 'BadMessageId');

    if (rec.body === '') return bad(400, 'PayloadEmpty');
    if (Buffer.byteLength(rec.body) > 4096) return bad(413, 'PayloadTooLarge');
    const p = rec.payload as { aps?: unknown } | undefined;
    if (!p || typeof p !== 'object' || Array.isArray(p) || !p.aps || typeof p.aps !== 'object' || Array.isArray(p.aps)) return bad(400, 'BadPayload');
    return undefined;
  }

  async #checkToken(jwt: string): Promise<ScriptedAnswer | undefined> {
    const invalid: ScriptedAnswer = { status: 403, reason: 'InvalidProviderToken' };
    let iat: number;
    try {
      const header = decodeProtectedHeader(jwt);
      if (header.alg !== 'ES256' || header.kid !== this.#opts.keyId) return invalid;
      const { payload } = await jwtVerify(jwt, this.#key!, { algorithms: ['ES256'], issuer: this.#opts.teamId, currentDate: new Date(this.#now()) });
      if (typeof payload.iat !== 'number' || !Number.isInteger(payload.iat)) return invalid;
      iat = payload.iat;
    } catch {
      return invalid;
    }
    const nowSec = Math.floor(this.#now() / 1000);
    if (iat > nowSec + 60) return invalid;
    if (nowSec - iat > 3600) return { status: 403, reason: 'ExpiredProviderToken' };
    if (!this.providerTokens.has(jwt)) {
      const min = this.#opts.minTokenUpdateIntervalSec ?? 0;
      if (min > 0 && this.#lastNewTokenAt !== undefined && nowSec - this.#lastNewTokenAt < min) return { status: 429, reason: 'TooManyProviderTokenUpdates' };
      this.#lastNewTokenAt = nowSec;
      this.providerTokens.add(jwt);
    }
    return undefined;
  }

  #answer(stream: http2.ServerHttp2Stream, rec: ReceivedPush, a: ScriptedAnswer): void {
    rec.status = a.status;
    rec.reason = a.reason;
    if (stream.destroyed || stream.closed) return;
    const headers: http2.OutgoingHttpHeaders = { ':status': a.status, 'apns-id': rec.headers['apns-id'] ?? randomUUID() };
    if (a.retryAfter !== undefined) headers['retry-after'] = a.retryAfter;
    if (a.status === 200) {
      stream.respond(headers, { endStream: true });
      return;
    }
    headers['content-type'] = 'application/json';
    const body: Record<string, unknown> = { reason: a.reason };
    if (a.status === 410) body.timestamp = a.timestamp ?? this.#now();
    stream.respond(headers);
    stream.end(JSON.stringify(body));
  }
}

export async function startFakeApns(opts: FakeApnsOptions): Promise<FakeApns> {
  return new FakeApns(opts).start();
}
