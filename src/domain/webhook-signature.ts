// Standard Webhooks signing (https://www.standardwebhooks.com), symmetric scheme:
//   signed content = `${webhookId}.${timestampSeconds}.${body}`
//   key            = base64-decode(secret without its "whsec_" prefix)
//   signature      = "v1," + base64(HMAC-SHA256(key, signed content))

import { createHmac, createSecretKey, randomBytes, type KeyObject } from 'node:crypto';

const PREFIX = 'whsec_';

export function generateWebhookSecret(): string {
  return PREFIX + randomBytes(24).toString('base64');
}

/** True when `secret` is a `whsec_` secret whose key is 24 to 64 bytes. */
export function isValidWebhookSecret(secret: string): boolean {
  if (!secret.startsWith(PREFIX)) return false;
  const b64 = secret.slice(PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return false;
  const len = Buffer.from(b64, 'base64').length;
  return len >= 24 && len <= 64;
}

/** HMAC keys by secret: a KeyObject is imported once, where a Buffer key is re-imported per HMAC. */
const keys = new Map<string, KeyObject>();

function hmacKey(secret: string): KeyObject {
  let key = keys.get(secret);
  if (!key) {
    if (keys.size >= 10_000) keys.clear();
    key = createSecretKey(Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64'));
    keys.set(secret, key);
  }
  return key;
}

/** `body` as sent on the wire: a string is signed as its UTF-8 bytes, bytes as they are. */
export function signWebhook(secret: string, id: string, timestampSeconds: number, body: string | Uint8Array): string {
  const mac = createHmac('sha256', hmacKey(secret)).update(`${id}.${timestampSeconds}.`).update(body).digest('base64');
  return `v1,${mac}`;
}
