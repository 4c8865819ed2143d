// TOTP: the RFC 6238 Appendix B test vectors (SHA-1, SHA-256, SHA-512; 8 digits), the RFC 4226
// Appendix D HOTP values, base32 round trips (RFC 4648 §10 vectors), and the accepted window.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { base32Decode, base32Encode, hotp, matchTotp, otpauthUri, totp, totpStep } from '../../src/domain/totp.ts';

const SEED20 = Buffer.from('12345678901234567890');
const SEED32 = Buffer.from('12345678901234567890123456789012');
const SEED64 = Buffer.from('1234567890123456789012345678901234567890123456789012345678901234');

it('RFC 6238 Appendix B: every test vector', () => {
  const vectors: [number, string, string, string][] = [
    [59, '94287082', '46119246', '90693936'],
    [1111111109, '07081804', '68084774', '25091201'],
    [1111111111, '14050471', '67062674', '99943326'],
    [1234567890, '89005924', '91819424', '93441116'],
    [2000000000, '69279037', '90698825', '38618901'],
    [20000000000, '65353130', '77737706', '47863826'],
  ];
  for (const [t, sha1, sha256, sha512] of vectors) {
    assert.equal(totp(SEED20, t * 1000, { digits: 8 }), sha1, `sha1 at ${t}`);
    assert.equal(totp(SEED32, t * 1000, { digits: 8, algorithm: 'sha256' }), sha256, `sha256 at ${t}`);
    assert.equal(totp(SEED64, t * 1000, { digits: 8, algorithm: 'sha512' }), sha512, `sha512 at ${t}`);
  }
});

it('RFC 4226 Appendix D: HOTP values of counters 0-9', () => {
  const expected = ['755224', '287082', '359152', '969429', '338314', '254676', '287922', '162583', '399871', '520489'];
  expected.forEach((code, counter) => assert.equal(hotp(SEED20, counter), code));
});

it('base32: RFC 4648 vectors and round trips', () => {
  for (const [plain, enc] of [['', ''], ['f', 'MY'], ['fo', 'MZXQ'], ['foo', 'MZXW6'], ['foob', 'MZXW6YQ'], ['fooba', 'MZXW6YTB'], ['foobar', 'MZXW6YTBOI']]) {
    assert.equal(base32Encode(Buffer.from(plain!)), enc);
    assert.equal(base32Decode(enc!).toString(), plain);
    assert.equal(base32Decode(enc!.toLowerCase() + '===').toString(), plain);
  }
  assert.throws(() => base32Decode('MZ1'), /not base32/);
});

it('a code is matched in its step and one either side, not two away; the matched step is returned', () => {
  const t = 1_700_000_000_000;
  const now = totpStep(t);
  for (const d of [-1, 0, 1]) assert.equal(matchTotp(SEED20, totp(SEED20, t + d * 30_000), t), now + d);
  for (const d of [-2, 2]) assert.equal(matchTotp(SEED20, totp(SEED20, t + d * 30_000), t), undefined);
  assert.equal(matchTotp(SEED20, '12345', t), undefined);
  assert.equal(matchTotp(SEED20, 'abcdef', t), undefined);
});

it('the otpauth URI names issuer, account and the base32 secret', () => {
  const u = new URL(otpauthUri({ issuer: 'Herald', account: 'ann@example.com', secret: SEED20 }));
  assert.equal(u.protocol, 'otpauth:');
  assert.equal(u.host, 'totp');
  assert.equal(decodeURIComponent(u.pathname), '/Herald:ann@example.com');
  assert.equal(u.searchParams.get('secret'), 'GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
  assert.equal(u.searchParams.get('issuer'), 'Herald');
  assert.equal(u.searchParams.get('digits'), '6');
  assert.equal(u.searchParams.get('period'), '30');
});
