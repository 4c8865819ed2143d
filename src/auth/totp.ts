// The TOTP second factor (domain/totp.ts) of users, and their single-use recovery codes.
//
// State machine of a user's TOTP:
//   off --enrol--> pending (a new secret, sealed with the secret key; shown once as base32 and an
//                  otpauth:// URI; sign-in does not ask for it yet)
//   pending --enrol again--> pending (a new secret replaces the old one)
//   pending --confirm {code}--> on (10 new recovery codes, shown once, stored as sha256)
//   on --disable {password} or {code} (a TOTP or recovery code)--> off (secret and codes deleted)
// While on, sign-in (auth/accounts.ts login) asks for a code after the password is checked: a
// TOTP code of the current step (one step of drift either side), accepted once (the last accepted
// step is recorded by compare-and-set), or an unused recovery code (used up by compare-and-set).

import { createHash, randomBytes, randomInt } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { AuditService } from '../audit/service.ts';
import { matchTotp, otpauthUri, base32Encode } from '../domain/totp.ts';
import { Problem } from '../errors.ts';
import type { Database, UsersTable } from '../store/schema.ts';
import { verifyPassword } from './passwords.ts';
import type { UserPrincipal } from './principal.ts';
import type { SecretBox } from './secret-box.ts';
import { acceptTotpStep, enableTotp, replaceRecoveryCodes, setTotpSecret, unusedRecoveryCodes, useRecoveryCode } from './security-store.ts';
import { findUser } from './store.ts';

export const RECOVERY_CODES = 10;
const ALPHABET = 'abcdefghjkmnpqrstuvwxyz23456789';

/** A recovery code as shown: 10 characters in two groups, e.g. "k7m2p-x9qra". */
function newRecoveryCode(): string {
  let s = '';
  for (let i = 0; i < 10; i++) s += ALPHABET[randomInt(ALPHABET.length)];
  return `${s.slice(0, 5)}-${s.slice(5)}`;
}

/** Recovery codes are compared ignoring case, spaces and dashes. */
function hashRecoveryCode(code: string): string {
  return createHash('sha256').update(code.toLowerCase().replace(/[\s-]/g, '')).digest('hex');
}

export interface TotpStatus {
  enabled: boolean;
  pending: boolean;
  recovery_codes_left: number;
}

export class TotpService {
  readonly #db: Kysely<Database>;
  readonly #secrets: SecretBox;
  readonly #audit: AuditService;
  readonly #issuer: string;

  constructor(db: Kysely<Database>, deps: { secrets: SecretBox; audit: AuditService; issuer?: string }) {
    this.#db = db;
    this.#secrets = deps.secrets;
    this.#audit = deps.audit;
    this.#issuer = deps.issuer ?? 'Herald';
  }

  async #user(p: UserPrincipal): Promise<UsersTable> {
    const u = await findUser(this.#db, p.userId);
    if (!u) throw new Problem('unauthorized', 'The user no longer exists', { headers: { 'www-authenticate': 'Bearer' } });
    return u;
  }

  async status(p: UserPrincipal): Promise<TotpStatus> {
    const u = await this.#user(p);
    return { enabled: u.totp_enabled_at !== null, pending: u.totp_secret !== null && u.totp_enabled_at === null, recovery_codes_left: u.totp_enabled_at === null ? 0 : await unusedRecoveryCodes(this.#db, u.id) };
  }

  /** POST /v1/auth/totp: a new pending secret (409 while TOTP is on: disable it first). */
  async enrol(p: UserPrincipal): Promise<{ secret: string; otpauth_uri: string }> {
    const u = await this.#user(p);
    if (u.totp_enabled_at !== null) throw new Problem('conflict', 'TOTP is already on; disable it first to enrol a new authenticator');
    const secret = randomBytes(20);
    await setTotpSecret(this.#db, u.id, this.#secrets.seal(secret.toString('base64')), Date.now());
    return { secret: base32Encode(secret), otpauth_uri: otpauthUri({ issuer: this.#issuer, account: u.email, secret }) };
  }

  /** POST /v1/auth/totp/confirm: turns a pending enrolment on with a code from the authenticator; the recovery codes. */
  async confirm(p: UserPrincipal, code: string): Promise<{ recovery_codes: string[] }> {
    const u = await this.#user(p);
    if (u.totp_enabled_at !== null) throw new Problem('conflict', 'TOTP is already on');
    if (u.totp_secret === null) throw new Problem('conflict', 'Nothing to confirm: enrol first (POST /v1/auth/totp)');
    const now = Date.now();
    const step = matchTotp(this.#secretOf(u), code.trim(), now);
    if (step === undefined) throw new Problem('invalid_totp', 'The code does not match the enrolled secret; check the authenticator app and the clock');
    await enableTotp(this.#db, u.id, step, now);
    const codes = Array.from({ length: RECOVERY_CODES }, newRecoveryCode);
    await replaceRecoveryCodes(this.#db, u.id, codes.map(hashRecoveryCode), now);
    await this.#audit.record({ workspaceId: p.workspaceId, actor: `user:${u.id}`, action: 'auth.totp_enable', target: u.id });
    return { recovery_codes: codes };
  }

  /** POST /v1/auth/totp/disable: with the password, or a TOTP or recovery code. */
  async disable(p: UserPrincipal, proof: { password?: string | undefined; code?: string | undefined }): Promise<void> {
    const u = await this.#user(p);
    if (u.totp_secret === null) throw new Problem('conflict', 'TOTP is not on');
    let ok = false;
    if (proof.password !== undefined) ok = u.password_hash !== null && (await verifyPassword(proof.password, u.password_hash));
    else if (proof.code !== undefined) ok = u.totp_enabled_at === null ? matchTotp(this.#secretOf(u), proof.code.trim(), Date.now()) !== undefined : (await this.verify(u, proof.code)) !== false;
    else throw new Problem('validation_failed', 'Send your password or a code', { errors: [{ path: 'body', message: 'must have password or code' }] });
    if (!ok) throw new Problem(proof.password !== undefined ? 'invalid_credentials' : 'invalid_totp', proof.password !== undefined ? 'The password is not correct' : undefined, { headers: { 'www-authenticate': 'Bearer' } });
    await setTotpSecret(this.#db, u.id, null, Date.now());
    await replaceRecoveryCodes(this.#db, u.id, [], Date.now());
    await this.#audit.record({ workspaceId: p.workspaceId, actor: `user:${u.id}`, action: 'auth.totp_disable', target: u.id, details: { with: proof.password !== undefined ? 'password' : 'code' } });
  }

  /**
   * Whether `code` is a valid second factor of `u` (TOTP on) now: a TOTP code of a step later
   * than the last accepted one (recorded, so it works once), or an unused recovery code (used up).
   */
  async verify(u: UsersTable, code: string): Promise<'totp' | 'recovery_code' | false> {
    if (u.totp_secret === null || u.totp_enabled_at === null) return false;
    const c = code.trim();
    if (/^\d{6}$/.test(c)) {
      const step = matchTotp(this.#secretOf(u), c, Date.now());
      return step !== undefined && (await acceptTotpStep(this.#db, u.id, step)) ? 'totp' : false;
    }
    return (await useRecoveryCode(this.#db, u.id, hashRecoveryCode(c), Date.now())) ? 'recovery_code' : false;
  }

  #secretOf(u: UsersTable): Buffer {
    return Buffer.from(this.#secrets.open(u.totp_secret!), 'base64');
  }
}
