// Encryption of secrets at rest (webhook secrets, later provider credentials): AES-256-GCM with a
// key derived from HERALD_SECRET_KEY by HKDF-SHA256. Stored form: "v1:" + base64(iv | tag | data).
// When HERALD_SECRET_KEY is unset, a random key is generated into <data dir>/secret.key on first
// start and read from there afterwards.

import { createCipheriv, createDecipheriv, createHmac, createSecretKey, hkdfSync, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

export class SecretBox {
  readonly #key: KeyObject;
  readonly #macKey: KeyObject;

  constructor(secret: string) {
    if (secret.length < 32) throw new Error('HERALD_SECRET_KEY: must be at least 32 characters');
    // A KeyObject, not a Buffer: Node re-imports a Buffer key on every cipher it creates.
    this.#key = createSecretKey(Buffer.from(hkdfSync('sha256', secret, 'herald', 'secrets-at-rest-v1', 32)));
    this.#macKey = createSecretKey(Buffer.from(hkdfSync('sha256', secret, 'herald', 'url-tokens-v1', 32)));
  }

  /**
   * A token that proves Herald made `data` (callback URLs handed to vendors): HMAC-SHA256 under a
   * key derived from HERALD_SECRET_KEY, base64url, 128 bits.
   */
  token(data: string): string {
    return createHmac('sha256', this.#macKey).update(data).digest().subarray(0, 16).toString('base64url');
  }

  verifyToken(data: string, token: string): boolean {
    const expected = Buffer.from(this.token(data));
    const given = Buffer.from(token);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  seal(plaintext: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return 'v1:' + Buffer.concat([iv, cipher.getAuthTag(), data]).toString('base64');
  }

  /**
   * The plaintext of a value seal() made under the same key. Throws for anything else: another
   * prefix, fewer than iv + a whole 16-byte tag (GCM would otherwise verify a tag cut to 4 bytes),
   * a changed byte anywhere, another key.
   */
  open(sealed: string): string {
    if (!sealed.startsWith('v1:')) throw new Error('not a sealed secret');
    const raw = Buffer.from(sealed.slice(3), 'base64');
    if (raw.length < 28) throw new Error('not a sealed secret: too short');
    const decipher = createDecipheriv('aes-256-gcm', this.#key, raw.subarray(0, 12), { authTagLength: 16 });
    decipher.setAuthTag(raw.subarray(12, 28));
    return Buffer.concat([decipher.update(raw.subarray(28)), decipher.final()]).toString('utf8');
  }
}

/**
 * The configured secret, or the one in `<dataPath>/secret.key`, generated there (mode 0600) if
 * absent. `onGenerated` is called when a new key was written, so start-up can log it.
 */
export function resolveSecretKey(configured: string | undefined, dataPath: string, onGenerated: (path: string) => void): string {
  if (configured) return configured;
  const path = join(dataPath, 'secret.key');
  if (existsSync(path)) return readFileSync(path, 'utf8').trim();
  mkdirSync(dataPath, { recursive: true });
  const key = randomBytes(32).toString('base64url');
  writeFileSync(path, key + '\n', { mode: 0o600, flag: 'wx' });
  onGenerated(path);
  return key;
}
