import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { canonicalLocale, localeChain, pickVariant } from '../../src/domain/locale.ts';

describe('canonicalLocale', () => {
  it('canonicalises BCP 47 tags and refuses the rest', () => {
    assert.equal(canonicalLocale('ko-kr'), 'ko-KR');
    assert.equal(canonicalLocale('ZH-hant-tw'), 'zh-Hant-TW');
    assert.equal(canonicalLocale('iw'), 'he');
    for (const bad of ['', 'ko_KR', 'not a tag', 'e', '123']) assert.equal(canonicalLocale(bad), null, bad);
  });
});

describe('localeChain', () => {
  it('region, then language, then the workspace default', () => {
    assert.deepEqual(localeChain('ko-KR', 'en'), ['ko-KR', 'ko', 'en']);
  });

  it('script and region subtags are cut one at a time', () => {
    assert.deepEqual(localeChain('zh-Hant-TW', 'en'), ['zh-Hant-TW', 'zh-Hant', 'zh', 'en']);
    assert.deepEqual(localeChain('sr-Latn-RS', 'en'), ['sr-Latn-RS', 'sr-Latn', 'sr', 'en']);
  });

  it('extensions are tried whole, then dropped', () => {
    assert.deepEqual(localeChain('en-US-u-ca-gregory', 'fr'), ['en-US-u-ca-gregory', 'en-US', 'en', 'fr']);
  });

  it('the default gets its own prefixes; duplicates appear once', () => {
    assert.deepEqual(localeChain('ko-KR', 'en-US'), ['ko-KR', 'ko', 'en-US', 'en']);
    assert.deepEqual(localeChain('en-GB', 'en-US'), ['en-GB', 'en', 'en-US']);
    assert.deepEqual(localeChain('en', 'en'), ['en']);
  });

  it('tags are canonicalised', () => {
    assert.deepEqual(localeChain('KO-kr', 'EN'), ['ko-KR', 'ko', 'en']);
  });

  it('no or an invalid requested locale gives the default chain', () => {
    assert.deepEqual(localeChain(null, 'ko-KR'), ['ko-KR', 'ko']);
    assert.deepEqual(localeChain(undefined, 'en'), ['en']);
    assert.deepEqual(localeChain('not a tag', 'en'), ['en']);
  });

  it('properties: canonical, unique, starts with the request, only prefixes of the request or the default', () => {
    const tag = fc.constantFrom('ko-KR', 'ko', 'zh-Hant-TW', 'zh-TW', 'en-US', 'en-GB', 'pt-BR', 'sr-Latn-RS', 'de-DE-1996', 'fr', 'EN-us', 'es-419');
    fc.assert(
      fc.property(fc.option(tag, { nil: null }), tag, (req, def) => {
        const chain = localeChain(req, def);
        assert.equal(new Set(chain).size, chain.length);
        for (const t of chain) assert.equal(canonicalLocale(t), t);
        if (req) assert.equal(chain[0], canonicalLocale(req));
        assert.ok(chain.includes(canonicalLocale(def)!));
        assert.ok(chain.includes(new Intl.Locale(def).language));
        const base = [req, def].flatMap((t) => (t ? [new Intl.Locale(t).baseName] : []));
        for (const t of chain.slice(req ? 1 : 0)) assert.ok(base.some((b) => b === t || b.startsWith(`${t}-`)), t);
      }),
    );
  });
});

describe('pickVariant', () => {
  type V = { locale: string; channel?: string | null; title: string };
  const variants: V[] = [
    { locale: 'en', title: 'en default' },
    { locale: 'en', channel: 'email', title: 'en email' },
    { locale: 'ko', title: 'ko default' },
    { locale: 'ko-KR', channel: 'sms', title: 'ko-KR sms' },
  ];
  const pick = (locale: string | null, channel: string | null) => pickVariant(variants, localeChain(locale, 'en'), channel)?.title;

  it('the channel variant of the most specific locale', () => {
    assert.equal(pick('ko-KR', 'sms'), 'ko-KR sms');
    assert.equal(pick('en', 'email'), 'en email');
  });

  it('the default variant of a locale when it has no variant for the channel', () => {
    assert.equal(pick('ko', 'sms'), 'ko default');
    assert.equal(pick('en-US', 'push'), 'en default');
  });

  it('locale before channel: ko-KR on email gets the Korean default, not the English email variant', () => {
    assert.equal(pick('ko-KR', 'email'), 'ko default');
  });

  it('for each locale, the channel variant before the default one (ko-KR on push falls to ko)', () => {
    // ko-KR has only an sms variant, so the next locale (ko) is tried; not ko-KR sms for push
    assert.equal(pick('ko-KR', 'push'), 'ko default');
  });

  it('the workspace default when no locale of the request matches; undefined when nothing does', () => {
    assert.equal(pick('fr-FR', 'email'), 'en email');
    assert.equal(pickVariant(variants, ['fr'], 'email'), undefined);
    assert.equal(pickVariant([], ['en'], null), undefined);
  });

  it('without a channel only default variants are considered', () => {
    assert.equal(pick('en', null), 'en default');
    assert.equal(pickVariant([{ locale: 'en', channel: 'email', title: 'x' }], ['en'], null), undefined);
  });

  it('variant locales are compared canonically; the first of equal variants wins', () => {
    const vs: V[] = [
      { locale: 'KO-kr', title: 'first' },
      { locale: 'ko-KR', title: 'second' },
    ];
    assert.equal(pickVariant(vs, ['ko-KR'], null)?.title, 'first');
  });

  it('property: the pick is the first match in (locale, channel then default) order', () => {
    const locale = fc.constantFrom('en', 'en-US', 'ko', 'ko-KR', 'ja');
    const channel = fc.constantFrom('email', 'sms', 'push');
    const variant = fc.record({ locale, channel: fc.option(channel, { nil: undefined }), title: fc.string() });
    fc.assert(
      fc.property(fc.array(variant, { maxLength: 8 }), fc.option(locale, { nil: null }), channel, (vs, req, ch) => {
        const chain = localeChain(req, 'en');
        const order = chain.flatMap((l) => [
          vs.find((v) => v.locale === l && v.channel === ch),
          vs.find((v) => v.locale === l && v.channel == null),
        ]);
        assert.equal(pickVariant(vs, chain, ch), order.find((v) => v !== undefined));
      }),
    );
  });
});
