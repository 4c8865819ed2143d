// Real time: the organization's verification keys and settings, recipient connection tokens, and
// publishing to channels (the operations routes, the gateway and other subsystems call).
//
// Connection tokens (docs/realtime.md) are JWTs with claims `sub` (recipient id), `org`
// (organization id), `exp`, optional `rooms` (room names), signed with one of the organization's
// keys: an HS256 secret Herald generates (header `kid`), a registered ES256/RS256 public key, or a
// key of the organization's JWKS URL. A token whose header says `typ: at+jwt` is a signed-in
// user's access token (auth/tokens.ts, resolved by auth/accounts.ts).
//
// `verify(token)` contract: a principal, or a refusal naming its close code:
//   4001 invalid_token   malformed, no key of its organization verifies it, claims missing
//   4002 token_expired   the signature verifies but `exp` has passed
//   4003 other_organization  the token's `kid` is another organization's key
// It rejects only when the store fails.

import { randomBytes, type webcrypto } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { JSONWebKeySet, JWTPayload, JWTVerifyGetKey, ProtectedHeaderParameters } from 'jose';
import type { AuditService } from '../audit/service.ts';
import type { SecretBox } from '../auth/secret-box.ts';
import type { Bus } from '../bus/bus.ts';
import type { RecipientPrincipal, UserPrincipal } from '../auth/principal.ts';
import type { SafeHttp } from '../net/safe-http.ts';
import type { Database } from '../store/schema.ts';
import { ulid } from '../domain/ids.ts';
import { ROOM_NAME, isRecipientId } from '../domain/realtime-protocol.ts';
import { addSecret, getSettings, keyOwner, liveKeys, putSettings, replacePublicKeys, type KeyRow } from './store.ts';
import type { Streams } from './streams.ts';

export type ConnectionPrincipal = RecipientPrincipal | UserPrincipal;

export interface Refusal {
  readonly code: 4001 | 4002 | 4003;
  readonly reason: string;
}

export interface Verified {
  readonly principal: ConnectionPrincipal;
  /** When the token stops being valid (ms). */
  readonly expiresAt: number;
}

export interface PublicKeyInput {
  readonly kid: string;
  readonly alg: 'ES256' | 'RS256';
  readonly pem: string;
}

export interface RealtimeSettingsView {
  readonly secrets: { kid: string; secret: string; created_at: number; expires_at: number | null }[];
  readonly public_keys: { kid: string; alg: string; created_at: number }[];
  readonly jwks_url: string | null;
  readonly direct_messages: boolean;
  readonly updated_at: number | null;
}

/** Bus topic: an organization's keys or settings changed; every node drops its cached copy. */
const KEYS_CHANGED = 'realtime.keys';
const CACHE_MS = 10_000;
const JWKS_CACHE_MS = 300_000;
const MAX_TOKEN_LENGTH = 8192;
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/;

interface OrgKeys {
  readonly at: number;
  readonly hs: { kid: string; key: Uint8Array }[];
  readonly pub: { kid: string; alg: string; key: webcrypto.CryptoKey }[];
  readonly jwksUrl: string | null;
}

export class InvalidKeyError extends Error {}

/** jose, loaded on first use: a process that never sees a real-time token does not load it. */
function jose(): Promise<typeof import('jose')> {
  return import('jose');
}

export class RealtimeService {
  readonly #db: Kysely<Database>;
  readonly #secrets: SecretBox;
  readonly #audit: AuditService;
  readonly #http: SafeHttp;
  readonly #log: Logger;
  readonly #users: { resolveAccessToken(token: string): Promise<UserPrincipal | undefined> };
  readonly #bus: Bus;
  readonly #cache = new Map<string, OrgKeys>();
  readonly #jwks = new Map<string, { at: number; get: JWTVerifyGetKey }>();
  readonly #unsubscribe: () => void;
  readonly streams: Streams;

  constructor(deps: {
    db: Kysely<Database>;
    secrets: SecretBox;
    audit: AuditService;
    http: SafeHttp;
    log: Logger;
    bus: Bus;
    users: { resolveAccessToken(token: string): Promise<UserPrincipal | undefined> };
    streams: Streams;
  }) {
    this.#db = deps.db;
    this.#secrets = deps.secrets;
    this.#audit = deps.audit;
    this.#http = deps.http;
    this.#log = deps.log;
    this.#users = deps.users;
    this.#bus = deps.bus;
    this.streams = deps.streams;
    this.#unsubscribe = deps.bus.subscribe(KEYS_CHANGED, { onMessage: (ws) => this.#drop(ws), onGap: () => this.#cache.clear() });
  }

  #drop(workspaceId: string): void {
    this.#cache.delete(workspaceId);
    for (const k of this.#jwks.keys()) if (k.startsWith(`${workspaceId} `)) this.#jwks.delete(k);
  }

  /** The settings; generates the organization's first HS256 secret when it has none. */
  async settings(workspaceId: string): Promise<RealtimeSettingsView> {
    const now = Date.now();
    let keys = await liveKeys(this.#db, workspaceId, now);
    if (!keys.some((k) => k.alg === 'HS256')) {
      await this.#newSecret(workspaceId, 0, now);
      keys = await liveKeys(this.#db, workspaceId, now);
    }
    const s = await getSettings(this.#db, workspaceId);
    return {
      secrets: keys.filter((k) => k.alg === 'HS256').map((k) => ({ kid: k.kid, secret: this.#secrets.open(k.secret!), created_at: k.created_at, expires_at: k.expires_at })),
      public_keys: keys.filter((k) => k.alg !== 'HS256').map((k) => ({ kid: publicKid(k.kid), alg: k.alg, created_at: k.created_at })),
      jwks_url: s?.jwks_url ?? null,
      direct_messages: s?.direct_messages === 1,
      updated_at: s?.updated_at ?? null,
    };
  }

  async #newSecret(workspaceId: string, overlapMs: number, now: number): Promise<void> {
    const secret = randomBytes(32).toString('base64url');
    await addSecret(this.#db, { kid: `rt_${ulid(now)}`, workspace_id: workspaceId, alg: 'HS256', secret: this.#secrets.seal(secret), public_key: null, created_at: now, expires_at: null }, overlapMs);
  }

  /**
   * Changes the settings. `rotate`: a new current HS256 secret, the previous ones verifying for
   * `overlapMs` more. `publicKeys` replace the registered ones (InvalidKeyError names a bad one).
   */
  async put(
    workspaceId: string,
    actor: string,
    input: { rotate?: { overlapMs: number }; publicKeys?: readonly PublicKeyInput[]; jwksUrl?: string | null; directMessages?: boolean },
    request: unknown,
  ): Promise<RealtimeSettingsView> {
    const now = Date.now();
    if (input.publicKeys) {
      const rows: KeyRow[] = [];
      for (const [i, k] of input.publicKeys.entries()) {
        try {
          await (await jose()).importSPKI(k.pem, k.alg);
        } catch {
          throw new InvalidKeyError(`public_keys[${i}].pem is not an SPKI PEM public key for ${k.alg}`);
        }
        rows.push({ kid: `${workspaceId}:${k.kid}`, workspace_id: workspaceId, alg: k.alg, secret: null, public_key: k.pem, created_at: now, expires_at: null });
      }
      await replacePublicKeys(this.#db, workspaceId, rows);
    }
    if (input.rotate) await this.#newSecret(workspaceId, input.rotate.overlapMs, now);
    if (input.jwksUrl !== undefined || input.directMessages !== undefined) {
      const current = await getSettings(this.#db, workspaceId);
      await putSettings(this.#db, {
        workspace_id: workspaceId,
        jwks_url: input.jwksUrl !== undefined ? input.jwksUrl : (current?.jwks_url ?? null),
        direct_messages: input.directMessages !== undefined ? (input.directMessages ? 1 : 0) : (current?.direct_messages ?? 0),
        updated_at: now,
      });
    }
    this.#drop(workspaceId);
    await this.#bus.publish(KEYS_CHANGED, workspaceId);
    await this.#audit.record({ workspaceId, actor, action: 'realtime.settings.put', details: request });
    return this.settings(workspaceId);
  }

  /** A connection token for `recipient`, signed with the organization's current HS256 secret. */
  async mintToken(workspaceId: string, recipient: string, ttlSec: number, rooms: readonly string[] | undefined): Promise<{ token: string; expiresAt: number }> {
    const now = Date.now();
    let keys = await liveKeys(this.#db, workspaceId, now);
    if (!keys.some((k) => k.alg === 'HS256')) {
      await this.#newSecret(workspaceId, 0, now);
      keys = await liveKeys(this.#db, workspaceId, now);
    }
    const current = keys.find((k) => k.alg === 'HS256' && k.expires_at === null) ?? keys.find((k) => k.alg === 'HS256')!;
    const exp = Math.floor(now / 1000) + ttlSec;
    const { SignJWT } = await jose();
    const token = await new SignJWT({ org: workspaceId, ...(rooms && { rooms: [...rooms] }) })
      .setProtectedHeader({ alg: 'HS256', kid: current.kid, typ: 'JWT' })
      .setSubject(recipient)
      .setIssuedAt(Math.floor(now / 1000))
      .setExpirationTime(exp)
      .sign(Buffer.from(this.#secrets.open(current.secret!), 'utf8'));
    return { token, expiresAt: exp * 1000 };
  }

  async #keys(workspaceId: string): Promise<OrgKeys> {
    const cached = this.#cache.get(workspaceId);
    const now = Date.now();
    if (cached && now - cached.at < CACHE_MS) return cached;
    const rows = await liveKeys(this.#db, workspaceId, now);
    const settings = await getSettings(this.#db, workspaceId);
    const { importSPKI } = await jose();
    const pub: OrgKeys['pub'] = [];
    for (const r of rows) {
      if (r.alg === 'HS256') continue;
      try {
        pub.push({ kid: publicKid(r.kid), alg: r.alg, key: (await importSPKI(r.public_key!, r.alg)) as webcrypto.CryptoKey });
      } catch (err) {
        this.#log.warn({ err, kid: r.kid }, 'realtime public key does not import; skipped');
      }
    }
    const keys: OrgKeys = {
      at: now,
      hs: rows.filter((r) => r.alg === 'HS256').map((r) => ({ kid: r.kid, key: Buffer.from(this.#secrets.open(r.secret!), 'utf8') })),
      pub,
      jwksUrl: settings?.jwks_url ?? null,
    };
    this.#cache.set(workspaceId, keys);
    return keys;
  }

  async #jwksOf(workspaceId: string, url: string): Promise<JWTVerifyGetKey | undefined> {
    const k = `${workspaceId} ${url}`;
    const cached = this.#jwks.get(k);
    if (cached && Date.now() - cached.at < JWKS_CACHE_MS) return cached.get;
    try {
      const r = await this.#http.request('GET', url, { accept: 'application/json' });
      if (r.status !== 200) throw new Error(`JWKS answered ${r.status}`);
      const get = (await jose()).createLocalJWKSet(JSON.parse(r.excerpt) as JSONWebKeySet);
      this.#jwks.set(k, { at: Date.now(), get });
      return get;
    } catch (err) {
      this.#log.warn({ err: (err as Error).message, url }, 'realtime JWKS could not be read');
      return undefined;
    }
  }

  async verify(token: string): Promise<Verified | Refusal> {
    if (token.length > MAX_TOKEN_LENGTH || !JWT_SHAPE.test(token)) return invalid('The token is not a JWT');
    const { decodeJwt, decodeProtectedHeader, errors: joseErrors, jwtVerify } = await jose();
    let header: ProtectedHeaderParameters;
    let claims: JWTPayload;
    try {
      header = decodeProtectedHeader(token);
      claims = decodeJwt(token);
    } catch {
      return invalid('The token is not a JWT');
    }
    if (header.typ === 'at+jwt') return this.#verifyUser(token, claims);
    const org = claims.org;
    if (typeof org !== 'string' || org.length === 0 || org.length > 128) return invalid('The "org" claim must be an organization id');
    const alg = header.alg;
    if (alg !== 'HS256' && alg !== 'ES256' && alg !== 'RS256') return invalid('The token must be signed with HS256, ES256 or RS256');
    const kid = typeof header.kid === 'string' ? header.kid : undefined;
    const keys = await this.#keys(org);
    const candidates: (Uint8Array | webcrypto.CryptoKey | JWTVerifyGetKey)[] = [];
    if (alg === 'HS256') candidates.push(...keys.hs.filter((k) => kid === undefined || k.kid === kid).map((k) => k.key));
    else {
      candidates.push(...keys.pub.filter((k) => k.alg === alg && (kid === undefined || k.kid === kid)).map((k) => k.key));
      if (keys.jwksUrl) {
        const jwks = await this.#jwksOf(org, keys.jwksUrl);
        if (jwks) candidates.push(jwks);
      }
    }
    if (candidates.length === 0 && kid !== undefined && alg === 'HS256') {
      const owner = await keyOwner(this.#db, kid);
      if (owner !== undefined && owner !== org) return { code: 4003, reason: 'other_organization: the token is signed with another organization\'s key' };
    }
    for (const key of candidates) {
      try {
        const { payload } = await jwtVerify(token, key as Uint8Array, { algorithms: [alg], requiredClaims: ['exp', 'sub'] });
        return recipientOf(org, payload);
      } catch (err) {
        if (err instanceof joseErrors.JWTExpired) return { code: 4002, reason: 'token_expired: the token has expired' };
        if (err instanceof joseErrors.JWTClaimValidationFailed) return invalid(`The token's claims are not valid: ${err.message}`);
        // a signature that does not verify, or no key of the JWKS matches: try the next key
      }
    }
    return invalid('bad_signature: no key of the organization verifies the token');
  }

  async #verifyUser(token: string, claims: JWTPayload): Promise<Verified | Refusal> {
    const user = await this.#users.resolveAccessToken(token);
    if (!user) {
      if (typeof claims.exp === 'number' && claims.exp * 1000 <= Date.now()) return { code: 4002, reason: 'token_expired: the access token has expired' };
      return invalid('The access token is not valid or its session has ended');
    }
    return { principal: user, expiresAt: typeof claims.exp === 'number' ? claims.exp * 1000 : Date.now() + 3_600_000 };
  }

  /** For /v1/me (auth/principal.ts authenticateRecipient): a connection token's recipient, or why not. */
  async resolveConnectionToken(token: string): Promise<RecipientPrincipal | string> {
    const v = await this.verify(token);
    if ('code' in v) return v.reason;
    return v.principal.kind === 'recipient' ? v.principal : 'an access token is not a connection token';
  }

  /**
   * Publishes `data` (any JSON value) to `channel` (`room:<name>`, or a recipient's `inbox`
   * stream, `inbox:<recipient>`) of the organization: the next offset of its stream, delivered
   * to every subscriber on every node. Rejects when Redis (with REDIS_URL) cannot be reached.
   */
  publish(workspaceId: string, channel: string, data: unknown): Promise<{ offset: number; epoch: string }> {
    return this.streams.publish(streamKey(workspaceId, channel), JSON.stringify(data));
  }

  close(): void {
    this.#unsubscribe();
  }
}

/** A channel's stream key: `<workspace>/<channel>` (channel names hold no `/`). */
export function streamKey(workspaceId: string, channel: string): string {
  return `${workspaceId}/${channel}`;
}

/** The kid a registered public key was given (stored as `<workspace>:<kid>`). */
function publicKid(stored: string): string {
  return stored.slice(stored.indexOf(':') + 1);
}

function recipientOf(org: string, payload: JWTPayload): Verified | Refusal {
  const sub = payload.sub;
  if (typeof sub !== 'string' || !isRecipientId(sub)) return invalid('The "sub" claim must be a recipient id');
  const rooms = payload.rooms;
  if (rooms !== undefined && (!Array.isArray(rooms) || rooms.length > 1000 || !rooms.every((r) => typeof r === 'string' && ROOM_NAME.test(r)))) {
    return invalid('The "rooms" claim must be a list of room names');
  }
  const expiresAt = (payload.exp as number) * 1000;
  return { principal: { kind: 'recipient', workspaceId: org, recipientId: sub, rooms: (rooms as string[] | undefined) ?? [], expiresAt }, expiresAt };
}

function invalid(reason: string): Refusal {
  return { code: 4001, reason: reason.startsWith('bad_signature') ? reason : `invalid_token: ${reason}` };
}
