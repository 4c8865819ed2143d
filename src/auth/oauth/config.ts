// Sign-in providers as configured: GitHub (an OAuth app), Google (OpenID Connect) and any number of
// generic OpenID Connect providers from HERALD_OIDC_PROVIDERS. Pure parsing and shapes; config.ts
// validates with these, auth/oauth/service.ts builds clients from them.

/** `{provider}` in /v1/auth/oauth/{provider}: lowercase letters, digits, '-' and '_'. */
export const PROVIDER_ID = /^[a-z0-9][a-z0-9_-]{0,31}$/;

export interface OidcProviderConfig {
  id: string;
  name: string;
  /** The issuer URL; discovery reads `{issuer}/.well-known/openid-configuration`. */
  issuer: string;
  client_id: string;
  client_secret: string;
  /** Requested scopes; `openid` is always included. Default: openid email profile. */
  scopes: string[];
}

/**
 * HERALD_OIDC_PROVIDERS: a JSON list of {id, name, issuer, client_id, client_secret, scopes?}.
 * Throws an Error naming the entry and field that is wrong.
 */
export function parseOidcProviders(s: string): OidcProviderConfig[] {
  if (s === '') return [];
  let raw: unknown;
  try {
    raw = JSON.parse(s);
  } catch {
    throw new Error('expected a JSON list of {id, name, issuer, client_id, client_secret, scopes?}, got text that is not JSON');
  }
  if (!Array.isArray(raw)) throw new Error('expected a JSON list of {id, name, issuer, client_id, client_secret, scopes?}');
  const seen = new Set<string>();
  return raw.map((e: unknown, i) => {
    const at = `entry ${i}`;
    if (typeof e !== 'object' || e === null || Array.isArray(e)) throw new Error(`${at}: expected an object`);
    const o = e as Record<string, unknown>;
    for (const k of Object.keys(o)) {
      if (!['id', 'name', 'issuer', 'client_id', 'client_secret', 'scopes'].includes(k)) throw new Error(`${at}: unknown field "${k}"`);
    }
    const str = (k: string): string => {
      const v = o[k];
      if (typeof v !== 'string' || v.trim() === '') throw new Error(`${at}: "${k}" must be a non-empty string`);
      return v.trim();
    };
    const id = str('id');
    if (!PROVIDER_ID.test(id)) throw new Error(`${at}: "id" must be 1-32 lowercase letters, digits, - or _ (it is the {provider} in the URLs), got "${id}"`);
    if (id === 'github' || id === 'google') throw new Error(`${at}: "id" ${id} is reserved for the built-in provider (HERALD_OAUTH_${id.toUpperCase()}_*)`);
    if (seen.has(id)) throw new Error(`${at}: "id" ${id} is used twice`);
    seen.add(id);
    const issuer = str('issuer');
    let u: URL;
    try {
      u = new URL(issuer);
    } catch {
      throw new Error(`${at}: "issuer" is not a URL: "${issuer}"`);
    }
    if (u.protocol !== 'https:' && u.protocol !== 'http:') throw new Error(`${at}: "issuer" must be an http(s) URL`);
    let scopes = ['openid', 'email', 'profile'];
    if (o.scopes !== undefined) {
      if (!Array.isArray(o.scopes) || !o.scopes.every((x) => typeof x === 'string' && /^[\x21\x23-\x5b\x5d-\x7e]+$/.test(x))) {
        throw new Error(`${at}: "scopes" must be a list of scope names`);
      }
      scopes = ['openid', ...(o.scopes as string[]).filter((x) => x !== 'openid')];
    }
    return { id, name: str('name').slice(0, 100), issuer, client_id: str('client_id'), client_secret: str('client_secret'), scopes };
  });
}
