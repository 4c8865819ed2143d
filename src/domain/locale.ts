// Which template variant a recipient gets. Pure.
//
// localeChain(requested, workspaceDefault) is the list of locales to try, most specific first:
// the requested tag, then each shorter prefix of it (RFC 4647 lookup: ko-KR -> ko;
// zh-Hant-TW -> zh-Hant -> zh; extensions such as -u-ca-… are dropped after the full tag), then the
// workspace default and its own prefixes (en-US -> en). Every tag is canonicalised with
// Intl.getCanonicalLocales (ko-kr -> ko-KR, iw -> he) and appears once. A tag that is not BCP 47 is
// left out (the API refuses such tags when they are stored; see canonicalLocale). No likely-subtag
// guessing: zh-TW does not reach zh-Hant.
//
// pickVariant(variants, chain, channel) walks the chain and, for each locale, takes the variant
// for that channel, else the default (channel-less) variant of that locale. The language therefore
// wins over the channel: a Korean recipient on email gets the Korean default variant before an
// English email variant. Variant locales are compared canonically; the first matching variant wins.

/** The canonical form of a BCP 47 tag ("ko-kr" -> "ko-KR"), or null when it is not one. */
export function canonicalLocale(tag: string): string | null {
  if (typeof tag !== 'string' || tag === '') return null;
  try {
    return Intl.getCanonicalLocales(tag)[0] ?? null;
  } catch {
    return null;
  }
}

/** A canonical tag, then its base name (language-script-region-variants) cut one subtag at a time. */
function fallbacks(tag: string): string[] {
  const out = [tag];
  const subtags = new Intl.Locale(tag).baseName.split('-');
  for (let n = subtags.length; n >= 1; n--) out.push(subtags.slice(0, n).join('-'));
  return out;
}

/** Locales to try, most specific first (see the contract above). */
export function localeChain(requested: string | null | undefined, workspaceDefault: string): string[] {
  const chain = new Set<string>();
  for (const tag of [requested, workspaceDefault]) {
    const canonical = tag == null ? null : canonicalLocale(tag);
    if (canonical) for (const t of fallbacks(canonical)) chain.add(t);
  }
  return [...chain];
}

/** The variant for the first locale of the chain that has one: its channel variant, else its default. */
export function pickVariant<V extends { locale: string; channel?: string | null }>(
  variants: readonly V[],
  chain: readonly string[],
  channel: string | null | undefined,
): V | undefined {
  const byLocale = new Map<string, { channel?: V; fallback?: V }>();
  for (const v of variants) {
    const locale = canonicalLocale(v.locale) ?? v.locale;
    const entry = byLocale.get(locale) ?? {};
    if (v.channel == null) entry.fallback ??= v;
    else if (channel != null && v.channel === channel) entry.channel ??= v;
    byLocale.set(locale, entry);
  }
  for (const locale of chain) {
    const entry = byLocale.get(locale);
    const found = entry?.channel ?? entry?.fallback;
    if (found) return found;
  }
  return undefined;
}
