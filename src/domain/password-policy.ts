// What a password must be (NIST SP 800-63B §5.1.1.2): at least MIN_PASSWORD_LENGTH characters
// (Unicode code points), at most MAX_PASSWORD_LENGTH, no composition rules, and not one of the
// commonly used passwords (compared lowercased). Pure: the caller supplies the common list.

export const MIN_PASSWORD_LENGTH = 10;
/** Longer passwords are refused: hashing cost does not depend on length, but bodies should stay small. */
export const MAX_PASSWORD_LENGTH = 256;

export type PasswordVerdict = { ok: true } | { ok: false; reason: 'too_short' | 'too_long' | 'common'; message: string };

export function checkPassword(password: string, isCommon: (lowercased: string) => boolean): PasswordVerdict {
  const length = [...password].length;
  if (length < MIN_PASSWORD_LENGTH) return { ok: false, reason: 'too_short', message: `must be at least ${MIN_PASSWORD_LENGTH} characters long` };
  if (length > MAX_PASSWORD_LENGTH) return { ok: false, reason: 'too_long', message: `must be at most ${MAX_PASSWORD_LENGTH} characters long` };
  if (isCommon(password.toLowerCase())) return { ok: false, reason: 'common', message: 'is a commonly used password; choose another' };
  return { ok: true };
}
