// How `herald serve` judges HERALD_ADMIN_KEY. The key administers everything, so one that is short,
// of few distinct characters, or a value printed in examples is as good as none on a server others
// can reach. Generated keys (`hk_` + 32 base64url characters) pass.

/** Shortest admin key that is not reported as short. */
export const MIN_ADMIN_KEY_LENGTH = 20;

/** Values (lower case, alphanumerics only, without an `hk_` prefix) that are published or guessed first. */
const WELL_KNOWN = new Set([
  'walkthroughadminkey', 'changeme', 'changemeplease', 'admin', 'adminkey', 'administrator', 'password', 'passw0rd',
  'secret', 'secretkey', 'supersecret', 'test', 'testkey', 'example', 'examplekey', 'default', 'herald', 'heraldadmin',
  'heraldadminkey', 'apikey', 'letmein', 'qwerty', '123456', '12345678', '1234567890', 'yourkeyhere', 'replaceme', 'token',
]);
/** Words that mark a placeholder wherever they appear. */
const PLACEHOLDER_WORDS = ['changeme', 'walkthrough', 'example', 'replaceme', 'yourkey', 'placeholder'];

/** Why `key` is weak, as a clause that completes "HERALD_ADMIN_KEY …"; undefined when it is not. */
export function adminKeyWeakness(key: string): string | undefined {
  const folded = key.toLowerCase().replace(/^hk_/, '').replace(/[^a-z0-9]/g, '');
  if (WELL_KNOWN.has(folded) || PLACEHOLDER_WORDS.some((w) => folded.includes(w))) return 'is a well-known or placeholder value';
  if (key.length < MIN_ADMIN_KEY_LENGTH) return `is only ${key.length} characters long (use at least ${MIN_ADMIN_KEY_LENGTH} random ones)`;
  if (new Set(key).size < 8) return `uses only ${new Set(key).size} distinct characters`;
  return undefined;
}
