// Access and refresh tokens of signed-in users.
//
// Access token: a JWT (RFC 9068 shape, header typ "at+jwt") signed ES256 (or EdDSA with an Ed25519
// HERALD_JWT_KEY), valid ACCESS_TTL_MS (15 minutes). Claims: iss and aud "herald", sub = user id,
// org = the organization it acts in, sid = the session (refresh-token family), iat, exp. The
// header's kid names the signing key, so keys can rotate.
//
// Signing keys: HERALD_JWT_KEY when set (kid = its RFC 7638 JWK thumbprint); otherwise a P-256
// key generated on first use and stored in the database (signing_keys, the private JWK sealed with
// the secret key), so every node of a deployment signs and verifies with the same keys. The newest
// unretired stored key signs; every unretired stored key and the configured one verify. A token
// whose kid is unknown makes this node re-read the stored keys (at most once a second) before it
// is refused.
//
// Refresh token: opaque, "hr_" + 32 random bytes (base64url), stored only as its sha256.

import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import type { SecretBox } from './secret-box.ts';
import { algOf, parseSigningKey, type SigningAlg } from './signing-key.ts';
import { insertSigningKey, listSigningKeys } from './store.ts';

export const ACCESS_TTL_MS = 15 * 60_000;
export const ISSUER = 'herald';

export interface AccessClaims {
  userId: string;
  workspaceId: string;
  sessionId: string;
}

interface Key {
  kid: string;
  alg: SigningAlg;
  privateKey: KeyObject;
  publicKey: KeyObject;
}

export function newRefreshToken(): string {
  return 'hr_' + randomBytes(32).toString('base64url');
}

export function hashRefreshToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** Whether a bearer value has the shape of a JWT (three base64url parts) rather than an API key. */
export function looksLikeJwt(value: string): boolean {
  return /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$/.test(value);
}

/** jose, loaded with the first token: a process nobody signs in to never loads it. */
function jose(): Promise<typeof import('jose')> {
  return import('jose');
}

async function keyOf(privateKey: KeyObject): Promise<Key> {
  const { calculateJwkThumbprint } = await jose();
  const publicKey = createPublicKey(privateKey);
  const kid = await calculateJwkThumbprint(publicKey.export({ format: 'jwk' }) as JWK);
  return { kid, alg: algOf(privateKey), privateKey, publicKey };
}

export class TokenService {
  readonly #db: Kysely<Database>;
  readonly #secrets: SecretBox;
  readonly #configured: string | undefined;
  #signing: Promise<Key> | undefined;
  #verifying = new Map<string, Key>();
  #lastReload = 0;

  constructor(db: Kysely<Database>, secrets: SecretBox, configuredKey?: string) {
    this.#db = db;
    this.#secrets = secrets;
    this.#configured = configuredKey;
  }

  /** A signed access token for a session. */
  async sign(c: AccessClaims, now = Date.now()): Promise<{ token: string; expiresIn: number }> {
    const key = await this.#signingKey();
    const { SignJWT } = await jose();
    const iat = Math.floor(now / 1000);
    const token = await new SignJWT({ org: c.workspaceId, sid: c.sessionId })
      .setProtectedHeader({ alg: key.alg, kid: key.kid, typ: 'at+jwt' })
      .setIssuer(ISSUER)
      .setAudience(ISSUER)
      .setSubject(c.userId)
      .setIssuedAt(iat)
      .setExpirationTime(iat + ACCESS_TTL_MS / 1000)
      .sign(key.privateKey);
    return { token, expiresIn: ACCESS_TTL_MS / 1000 };
  }

  /** The claims of a valid, unexpired access token signed by a known key; undefined otherwise. */
  async verify(token: string): Promise<AccessClaims | undefined> {
    // Loads the stored keys first; a store failure rejects (it is not an invalid token).
    await this.#signingKey();
    const { jwtVerify } = await jose();
    try {
      const { payload } = await jwtVerify(
        token,
        async (header) => {
          let key = header.kid ? this.#verifying.get(header.kid) : undefined;
          if (!key && header.kid && Date.now() - this.#lastReload > 1000) {
            await this.#reload();
            key = this.#verifying.get(header.kid);
          }
          if (!key || key.alg !== header.alg) throw new Error('unknown key');
          return key.publicKey;
        },
        { issuer: ISSUER, audience: ISSUER, typ: 'at+jwt', algorithms: ['ES256', 'EdDSA'], requiredClaims: ['sub', 'exp', 'iat'] },
      );
      if (typeof payload.sub !== 'string' || typeof payload.org !== 'string' || typeof payload.sid !== 'string') return undefined;
      return { userId: payload.sub, workspaceId: payload.org, sessionId: payload.sid };
    } catch {
      return undefined;
    }
  }

  /** The signing key, loaded (or generated) once; a failed load is retried by the next call. */
  #signingKey(): Promise<Key> {
    this.#signing ??= this.#loadSigning().catch((err: unknown) => {
      this.#signing = undefined;
      throw err;
    });
    return this.#signing;
  }

  async #loadSigning(): Promise<Key> {
    if (this.#configured !== undefined) {
      const key = await keyOf(parseSigningKey(this.#configured).key);
      this.#verifying.set(key.kid, key);
      await this.#reload();
      return key;
    }
    let stored = await this.#reload();
    if (stored.length === 0) {
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
      const key = await keyOf(privateKey);
      await insertSigningKey(this.#db, {
        kid: key.kid,
        alg: key.alg,
        private_jwk: this.#secrets.seal(JSON.stringify(privateKey.export({ format: 'jwk' }))),
        created_at: Date.now(),
        retired_at: null,
      });
      // Another node may have generated one at the same moment: both are kept and verify; the
      // newest (in the store's order) signs on every node.
      stored = await this.#reload();
    }
    return stored[0]!;
  }

  /** Re-reads the stored keys; returns them newest first. */
  async #reload(): Promise<Key[]> {
    this.#lastReload = Date.now();
    const rows = await listSigningKeys(this.#db);
    const keys: Key[] = [];
    for (const r of rows) {
      const known = this.#verifying.get(r.kid);
      if (known) {
        keys.push(known);
        continue;
      }
      const privateKey = createPrivateKey({ key: JSON.parse(this.#secrets.open(r.private_jwk)) as import('node:crypto').JsonWebKey, format: 'jwk' });
      const key: Key = { kid: r.kid, alg: r.alg as SigningAlg, privateKey, publicKey: createPublicKey(privateKey) };
      this.#verifying.set(key.kid, key);
      keys.push(key);
    }
    return keys;
  }
}
