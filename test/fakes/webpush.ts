// A Web Push service (RFC 8030) on 127.0.0.1 for tests, answering as Mozilla autopush does
// (autoendpoint: 201 Created with Location and TTL; errors as JSON {code, errno, error, message,
// more_info}), and the browser behind it: it keeps each subscription's private key and decrypts every
// accepted message with its own RFC 8291 / RFC 8188 implementation (node:crypto only, independent of
// web-push and http_ece).
//
// Checks, in order: POST to /wpush/v2/<token> (unknown token 404 errno 102; unsubscribed 410 errno
// 106); Authorization "vapid t=<JWT>, k=<key>" with an ES256 signature by k, k equal to the key the
// browser subscribed with (when it gave one), aud = this origin, exp in the future and at most 24 h
// away, sub a mailto: or https: URL (else 401 errno 109); TTL present, a non-negative integer (400
// errno 111); Urgency and Topic syntax (400); Content-Encoding aes128gcm (400 errno 110); body at most
// 4096 bytes (413 errno 104). Then a scripted answer for the subscription, if any, else 201.

import { createDecipheriv, createECDH, createPublicKey, hkdfSync, randomBytes, randomUUID, verify } from 'node:crypto';
import { createServer, type IncomingHttpHeaders, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const MAX_BODY = 4096;
const MORE_INFO = 'http://autopush.readthedocs.io/en/latest/http.html#error-codes';
const REASONS: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  410: 'Gone',
  413: 'Payload Too Large',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
};

export interface BrowserSubscription {
  endpoint: string;
  keys: { p256dh: string; auth: string };
}

/** One scripted answer: a status (with an autopush-style body unless given), or never answering. */
export type ScriptedAnswer = { status: number; retryAfter?: string; body?: string; contentType?: string } | 'hang';

export interface ReceivedPush {
  token: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
  /** What the fake answered. */
  status: number;
  /** Why the fake refused the request (its own checks, not scripted answers). */
  refused?: string;
  vapid?: { header: Record<string, unknown>; claims: { aud?: unknown; exp?: unknown; sub?: unknown }; k: string; token: string };
  /** The decrypted payload of an accepted message. */
  plaintext?: string;
  decryptError?: string;
}

interface Sub {
  token: string;
  privateKey: Buffer;
  publicKey: Buffer;
  auth: Buffer;
  applicationServerKey: Buffer | null;
  gone: boolean;
  script: ScriptedAnswer[];
}

class Refusal extends Error {
  readonly status: number;
  readonly errno: number | null;
  constructor(status: number, errno: number | null, message: string) {
    super(message);
    this.status = status;
    this.errno = errno;
  }
}

export class FakePushService {
  readonly origin: string;
  readonly received: ReceivedPush[] = [];
  readonly #server: Server;
  readonly #subs = new Map<string, Sub>();
  readonly #hanging = new Set<ServerResponse>();

  private constructor(server: Server) {
    this.#server = server;
    this.origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  }

  static async start(): Promise<FakePushService> {
    let self: FakePushService | undefined;
    const server = createServer((req, res) => void self!.#handle(req, res));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    self = new FakePushService(server);
    return self;
  }

  /** What pushManager.subscribe() does: a P-256 key pair and 16 random auth bytes, kept by the "browser". */
  subscribe(opts: { applicationServerKey?: string } = {}): BrowserSubscription {
    const ecdh = createECDH('prime256v1');
    ecdh.generateKeys();
    const token = randomBytes(24).toString('base64url');
    const sub: Sub = {
      token,
      privateKey: ecdh.getPrivateKey(),
      publicKey: ecdh.getPublicKey(),
      auth: randomBytes(16),
      applicationServerKey: opts.applicationServerKey ? Buffer.from(opts.applicationServerKey, 'base64url') : null,
      gone: false,
      script: [],
    };
    this.#subs.set(token, sub);
    return { endpoint: `${this.origin}/wpush/v2/${token}`, keys: { p256dh: sub.publicKey.toString('base64url'), auth: sub.auth.toString('base64url') } };
  }

  /** The user revoked permission: the push service answers 410 from now on. */
  unsubscribe(s: BrowserSubscription): void {
    this.#sub(s).gone = true;
  }

  /** Answers for this subscription's next requests (after the fake's own checks), in order. */
  script(s: BrowserSubscription, ...answers: ScriptedAnswer[]): void {
    this.#sub(s).script.push(...answers);
  }

  /** Requests for this subscription. */
  requestsFor(s: BrowserSubscription): ReceivedPush[] {
    const token = this.#sub(s).token;
    return this.received.filter((r) => r.token === token);
  }

  /** Decrypted JSON payloads of the messages accepted for this subscription. */
  payloadsFor(s: BrowserSubscription): unknown[] {
    return this.requestsFor(s)
      .filter((r) => r.status === 201)
      .map((r) => {
        if (r.plaintext === undefined) throw new Error(`accepted message did not decrypt: ${r.decryptError}`);
        return JSON.parse(r.plaintext);
      });
  }

  async close(): Promise<void> {
    for (const res of this.#hanging) res.destroy();
    this.#server.closeAllConnections();
    await new Promise<void>((resolve) => this.#server.close(() => resolve()));
  }

  #sub(s: BrowserSubscription): Sub {
    const token = s.endpoint.split('/').pop()!;
    const sub = this.#subs.get(token);
    if (!sub) throw new Error(`not a subscription of this fake: ${s.endpoint}`);
    return sub;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      size += chunk.length;
      if (size <= 64 * 1024) chunks.push(chunk);
    }
    const body = Buffer.concat(chunks);
    const token = /^\/wpush\/v2\/([A-Za-z0-9_-]+)$/.exec(req.url ?? '')?.[1] ?? '';
    const record: ReceivedPush = { token, headers: req.headers, body, status: 0 };
    this.received.push(record);
    const sub = this.#subs.get(token);
    try {
      if (req.method !== 'POST') throw new Refusal(405, null, 'Method Not Allowed');
      if (!sub) throw new Refusal(404, 102, 'Invalid token');
      if (sub.gone) throw new Refusal(410, 106, 'No such subscription');
      record.vapid = this.#checkVapid(req.headers['authorization'], sub);
      checkHeaders(req.headers, size);
    } catch (err) {
      if (!(err instanceof Refusal)) throw err;
      record.status = err.status;
      record.refused = err.message;
      return sendError(res, err.status, err.errno, err.message);
    }
    const answer = sub.script.shift();
    if (answer === 'hang') {
      this.#hanging.add(res);
      record.status = -1;
      return;
    }
    if (answer) {
      record.status = answer.status;
      const headers: Record<string, string> = {};
      if (answer.retryAfter !== undefined) headers['retry-after'] = answer.retryAfter;
      if (answer.body !== undefined) {
        res.writeHead(answer.status, { 'content-type': answer.contentType ?? 'text/plain', ...headers });
        res.end(answer.body);
        return;
      }
      return sendError(res, answer.status, autopushErrno(answer.status), REASONS[answer.status] ?? 'Error', headers);
    }
    try {
      record.plaintext = decryptAes128gcm(body, { privateKey: sub.privateKey, publicKey: sub.publicKey, authSecret: sub.auth }).toString('utf8');
    } catch (err) {
      record.decryptError = (err as Error).message;
    }
    record.status = 201;
    res.writeHead(201, { location: `${this.origin}/m/${randomUUID()}`, ttl: String(req.headers['ttl']) });
    res.end();
  }

  #checkVapid(header: string | undefined, sub: Sub): NonNullable<ReceivedPush['vapid']> {
    const refuse = (why: string) => new Refusal(401, 109, why);
    const m = /^vapid\s+(.+)$/i.exec(header ?? '');
    if (!m) throw refuse('Missing VAPID Authorization header ("vapid t=..., k=...")');
    const params = new Map<string, string>();
    for (const part of m[1]!.split(',')) {
      const eq = part.indexOf('=');
      if (eq > 0) params.set(part.slice(0, eq).trim().toLowerCase(), part.slice(eq + 1).trim());
    }
    const t = params.get('t');
    const k = params.get('k');
    if (!t || !k) throw refuse('VAPID header needs t and k');
    const key = Buffer.from(k, 'base64url');
    if (key.length !== 65 || key[0] !== 4) throw refuse('k is not an uncompressed P-256 public key');
    if (sub.applicationServerKey && !sub.applicationServerKey.equals(key)) throw refuse('VAPID public key mismatch');
    const parts = t.split('.');
    if (parts.length !== 3) throw refuse('t is not a JWT');
    const [h, p, s] = parts as [string, string, string];
    let jwtHeader: Record<string, unknown>;
    let claims: { aud?: unknown; exp?: unknown; sub?: unknown };
    try {
      jwtHeader = JSON.parse(Buffer.from(h, 'base64url').toString('utf8'));
      claims = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
    } catch {
      throw refuse('JWT header or claims are not JSON');
    }
    if (jwtHeader['alg'] !== 'ES256') throw refuse('JWT alg must be ES256');
    const publicKey = createPublicKey({
      key: { kty: 'EC', crv: 'P-256', x: key.subarray(1, 33).toString('base64url'), y: key.subarray(33).toString('base64url') },
      format: 'jwk',
    });
    const signature = Buffer.from(s, 'base64url');
    if (signature.length !== 64 || !verify('sha256', Buffer.from(`${h}.${p}`), { key: publicKey, dsaEncoding: 'ieee-p1363' }, signature)) {
      throw refuse('JWT signature does not verify with k');
    }
    const now = Math.floor(Date.now() / 1000);
    if (typeof claims.exp !== 'number' || !Number.isInteger(claims.exp)) throw refuse('exp must be an integer');
    if (claims.exp <= now) throw refuse('JWT expired');
    if (claims.exp > now + 86_400) throw refuse('exp is more than 24 hours away');
    if (claims.aud !== this.origin) throw refuse(`aud must be ${this.origin}`);
    if (typeof claims.sub !== 'string' || !/^(mailto:|https:\/\/)\S+$/.test(claims.sub)) throw refuse('sub must be a mailto: or https: URL');
    return { header: jwtHeader, claims, k, token: t };
  }
}

function checkHeaders(headers: IncomingHttpHeaders, size: number): void {
  const ttl = headers['ttl'];
  if (ttl === undefined) throw new Refusal(400, 111, 'Missing TTL value');
  if (!/^\d+$/.test(String(ttl))) throw new Refusal(400, 111, 'Invalid TTL value');
  const urgency = headers['urgency'];
  if (urgency !== undefined && !['very-low', 'low', 'normal', 'high'].includes(String(urgency))) throw new Refusal(400, null, 'Invalid Urgency');
  const topic = headers['topic'];
  if (topic !== undefined && !/^[A-Za-z0-9_-]{1,32}$/.test(String(topic))) throw new Refusal(400, null, 'Topic must be 1 to 32 URL-safe base64 characters');
  if (size > 0 && headers['content-encoding'] !== 'aes128gcm') throw new Refusal(400, 110, 'Unknown Content-Encoding');
  if (size > MAX_BODY) throw new Refusal(413, 104, `This message is intended for a constrained device and is limited in size. Converted buffer is too long by ${size - MAX_BODY} bytes`);
}

function autopushErrno(status: number): number | null {
  return ({ 404: 102, 410: 106, 413: 104, 401: 109 } as Record<number, number>)[status] ?? null;
}

function sendError(res: ServerResponse, status: number, errno: number | null, message: string, headers: Record<string, string> = {}): void {
  if (status === 503 && !headers['retry-after']) headers['retry-after'] = '120';
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ code: status, errno, error: REASONS[status] ?? 'Error', message, more_info: MORE_INFO }));
}

/**
 * RFC 8291 decryption as a user agent does it: the aes128gcm header (salt, rs, keyid = the
 * application server's ephemeral public key), ECDH with the subscription's private key, HKDF-SHA256
 * with the auth secret and "WebPush: info\0" || ua_public || as_public for the IKM, then RFC 8188's
 * CEK and nonce from the salt, record by record, padding removed up to the delimiter.
 */
export function decryptAes128gcm(body: Buffer, ua: { privateKey: Buffer; publicKey: Buffer; authSecret: Buffer }): Buffer {
  if (body.length < 21) throw new Error('shorter than the aes128gcm header');
  const salt = body.subarray(0, 16);
  const rs = body.readUInt32BE(16);
  const idlen = body[20]!;
  if (rs < 18) throw new Error(`record size ${rs} is below 18`);
  if (idlen !== 65) throw new Error(`keyid is ${idlen} bytes; Web Push needs the 65-byte application server key`);
  if (body.length < 21 + idlen) throw new Error('truncated header');
  const asPublic = body.subarray(21, 21 + idlen);
  const ecdh = createECDH('prime256v1');
  ecdh.setPrivateKey(ua.privateKey);
  const ecdhSecret = ecdh.computeSecret(asPublic);
  const keyInfo = Buffer.concat([Buffer.from('WebPush: info\0'), ua.publicKey, asPublic]);
  const ikm = Buffer.from(hkdfSync('sha256', ecdhSecret, ua.authSecret, keyInfo, 32));
  const cek = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: aes128gcm\0'), 16));
  const nonce = Buffer.from(hkdfSync('sha256', ikm, salt, Buffer.from('Content-Encoding: nonce\0'), 12));
  const content = body.subarray(21 + idlen);
  if (content.length === 0) throw new Error('no records');
  const out: Buffer[] = [];
  for (let offset = 0, seq = 0; offset < content.length; offset += rs, seq++) {
    const record = content.subarray(offset, offset + rs);
    const last = offset + rs >= content.length;
    if (record.length < 17) throw new Error(`record ${seq} is too short`);
    const iv = Buffer.from(nonce);
    iv.writeUInt32BE((iv.readUInt32BE(8) ^ seq) >>> 0, 8);
    const decipher = createDecipheriv('aes-128-gcm', cek, iv);
    decipher.setAuthTag(record.subarray(record.length - 16));
    const plain = Buffer.concat([decipher.update(record.subarray(0, record.length - 16)), decipher.final()]);
    let end = plain.length - 1;
    while (end >= 0 && plain[end] === 0) end--;
    if (end < 0) throw new Error(`record ${seq} has no delimiter`);
    if (plain[end] !== (last ? 2 : 1)) throw new Error(`record ${seq} has delimiter ${plain[end]}, expected ${last ? 2 : 1}`);
    out.push(plain.subarray(0, end));
  }
  return Buffer.concat(out);
}
