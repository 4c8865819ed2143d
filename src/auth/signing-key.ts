// A JWT signing key given as text (HERALD_JWT_KEY): a PKCS#8 PEM private key or a private JWK (JSON),
// of type EC P-256 (signs ES256) or Ed25519 (signs EdDSA). Anything else is refused with a reason.

import { createPrivateKey, type KeyObject } from 'node:crypto';

export type SigningAlg = 'ES256' | 'EdDSA';

export function parseSigningKey(text: string): { key: KeyObject; alg: SigningAlg } {
  let key: KeyObject;
  try {
    key = text.startsWith('{') ? createPrivateKey({ key: JSON.parse(text) as import('node:crypto').JsonWebKey, format: 'jwk' }) : createPrivateKey(text.replace(/\\n/g, '\n'));
  } catch (err) {
    throw new Error(`expected a PKCS#8 PEM private key or a private JWK (EC P-256 or Ed25519): ${(err as Error).message}`);
  }
  return { key, alg: algOf(key) };
}

export function algOf(key: KeyObject): SigningAlg {
  if (key.asymmetricKeyType === 'ed25519') return 'EdDSA';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ES256';
  throw new Error(`expected an EC P-256 or Ed25519 private key, got ${key.asymmetricKeyType}${key.asymmetricKeyDetails?.namedCurve ? ` ${key.asymmetricKeyDetails.namedCurve}` : ''}`);
}
