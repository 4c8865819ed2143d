import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { compileFilter, filterError, FilterError, jsonEqual, MAX_FILTER_DEPTH, MAX_FILTER_NODES, MAX_IN_VALUES, MAX_REGEX_LENGTH } from '../../src/domain/filter.ts';

const event = {
  type: 'pull_request',
  source: 'src_github',
  path: '/github/acme/api',
  headers: { 'x-github-event': 'pull_request', 'content-type': 'application/json' },
  payload: {
    action: 'opened',
    number: 42,
    draft: false,
    merged_at: null,
    pull_request: { base: { ref: 'main' }, head: { ref: 'feature/x' }, labels: [{ name: 'bug' }, { name: 'urgent' }], additions: 120 },
    commits: [{ id: 'a1', files: ['src/a.ts', 'README.md'] }, { id: 'b2', files: ['docs/x.md'] }],
    tags: ['api', 'v2'],
    sender: { login: 'octocat' },
  },
};

function m(filter: unknown, doc: unknown = event): boolean {
  return compileFilter(filter).matches(doc);
}

describe('filter: evaluation', () => {
  it('the empty filter matches everything', () => {
    assert.equal(m({}), true);
    assert.equal(m({}, null), true);
  });

  it('literal equality on dotted paths, header names with dashes', () => {
    assert.equal(m({ 'payload.action': 'opened' }), true);
    assert.equal(m({ 'payload.action': 'closed' }), false);
    assert.equal(m({ 'headers.x-github-event': 'pull_request', 'payload.pull_request.base.ref': 'main' }), true);
    assert.equal(m({ 'headers.x-github-event': 'pull_request', 'payload.pull_request.base.ref': 'dev' }), false);
    assert.equal(m({ 'payload.number': 42 }), true);
    assert.equal(m({ 'payload.number': '42' }), false, 'no type coercion');
    assert.equal(m({ 'payload.sender': { login: 'octocat' } }), true, 'deep equality');
    assert.equal(m({ 'payload.sender': { login: 'octocat', x: 1 } }), false);
    assert.equal(m({ 'payload.tags': ['api', 'v2'] }), true, 'a whole array');
    assert.equal(m({ 'payload.tags': ['v2', 'api'] }), false, 'array order matters for whole-array equality');
  });

  it('arrays match when any element matches, through nested arrays of objects', () => {
    assert.equal(m({ 'payload.tags': 'v2' }), true);
    assert.equal(m({ 'payload.tags': 'v3' }), false);
    assert.equal(m({ 'payload.pull_request.labels.name': 'urgent' }), true);
    assert.equal(m({ 'payload.pull_request.labels.name': { $in: ['wontfix', 'bug'] } }), true);
    assert.equal(m({ 'payload.commits.files': 'docs/x.md' }), true);
    assert.equal(m({ 'payload.commits.files': { $regex: '^src/' } }), true);
    assert.equal(m({ 'payload.commits.1.id': 'b2' }), true, 'a digit segment indexes an array');
    assert.equal(m({ 'payload.commits.1.id': 'a1' }), false);
    assert.equal(m({ 'payload.commits.7.id': { $exists: true } }), false);
  });

  it('comparison operators compare numbers with numbers and strings with strings', () => {
    assert.equal(m({ 'payload.number': { $gt: 41 } }), true);
    assert.equal(m({ 'payload.number': { $gt: 42 } }), false);
    assert.equal(m({ 'payload.number': { $gte: 42, $lte: 42 } }), true);
    assert.equal(m({ 'payload.number': { $lt: 42 } }), false);
    assert.equal(m({ 'payload.number': { $lt: '50' } }), false, 'a number is not compared with a string');
    assert.equal(m({ 'payload.action': { $gt: 'a', $lt: 'p' } }), true);
    assert.equal(m({ 'payload.missing': { $lt: 100 } }), false);
    assert.equal(m({ received_at: { $gte: '2026-01-01T00:00:00Z' } }, { received_at: '2026-03-01T10:00:00Z' }), true, 'ISO times compare as strings');
  });

  it('$eq, $neq, $in, $nin and missing paths', () => {
    assert.equal(m({ 'payload.action': { $eq: 'opened' } }), true);
    assert.equal(m({ 'payload.action': { $neq: 'opened' } }), false);
    assert.equal(m({ 'payload.action': { $neq: 'closed' } }), true);
    assert.equal(m({ 'payload.nothing': { $neq: 'closed' } }), true, '$neq holds for a missing path');
    assert.equal(m({ 'payload.tags': { $neq: 'v2' } }), false, '$neq fails when any element equals');
    assert.equal(m({ 'payload.action': { $in: ['opened', 'reopened'] } }), true);
    assert.equal(m({ 'payload.action': { $nin: ['opened', 'reopened'] } }), false);
    assert.equal(m({ 'payload.action': { $nin: ['closed'] } }), true);
    assert.equal(m({ 'payload.sender': { $in: [{ login: 'octocat' }] } }), true, '$in compares objects deeply');
    assert.equal(m({ 'payload.nothing': { $in: ['x'] } }), false);
    assert.equal(m({ 'payload.nothing': { $nin: ['x'] } }), true);
    assert.equal(m({ 'payload.sender': { $eq: { login: 'octocat' } } }), true);
  });

  it('$exists; null is a value', () => {
    assert.equal(m({ 'payload.merged_at': { $exists: true } }), true);
    assert.equal(m({ 'payload.merged_at': null }), true);
    assert.equal(m({ 'payload.closed_at': null }), false, 'missing is not null');
    assert.equal(m({ 'payload.closed_at': { $exists: false } }), true);
    assert.equal(m({ 'payload.draft': { $exists: false } }), false);
    assert.equal(m({ 'payload.action.length': { $exists: true } }), false, 'paths do not enter strings');
    assert.equal(m({ 'constructor': { $exists: true } }, {}), false, 'only own properties');
    assert.equal(m(JSON.parse('{"__proto__": {"$exists": true}}'), {}), false);
  });

  it('$regex: unanchored RE2, (?i) for any case, only on strings', () => {
    assert.equal(m({ 'payload.pull_request.head.ref': { $regex: '^feature/' } }), true);
    assert.equal(m({ 'payload.pull_request.head.ref': { $regex: 'ture' } }), true);
    assert.equal(m({ 'payload.pull_request.head.ref': { $regex: '^FEATURE' } }), false);
    assert.equal(m({ 'payload.pull_request.head.ref': { $regex: '(?i)^FEATURE' } }), true);
    assert.equal(m({ 'payload.number': { $regex: '42' } }), false, 'numbers are not strings');
  });

  it('$and, $or, $not, and keys of one object ANDed', () => {
    assert.equal(m({ $and: [{ 'payload.action': 'opened' }, { 'payload.number': { $gt: 10 } }] }), true);
    assert.equal(m({ $and: [{ 'payload.action': 'opened' }, { 'payload.number': { $gt: 100 } }] }), false);
    assert.equal(m({ $or: [{ 'payload.action': 'closed' }, { 'payload.number': { $gt: 10 } }] }), true);
    assert.equal(m({ $or: [{ 'payload.action': 'closed' }, { 'payload.number': { $gt: 100 } }] }), false);
    assert.equal(m({ $not: { 'payload.draft': true } }), true);
    assert.equal(m({ $not: { 'payload.draft': false } }), false);
    assert.equal(m({ 'payload.action': 'opened', $not: { 'payload.pull_request.labels.name': 'wip' } }), true);
  });

  it('workflow documents {data, recipient, steps}', () => {
    const doc = { data: { plan: 'pro', seats: 12 }, recipient: { locale: 'de-AT', email: 'a@example.com' }, steps: { welcome: { status: 'delivered' } } };
    assert.equal(m({ 'data.plan': { $in: ['pro', 'enterprise'] }, 'recipient.locale': { $regex: '^de' } }, doc), true);
    assert.equal(m({ 'steps.welcome.status': { $neq: 'read' }, 'data.seats': { $gte: 10 } }, doc), true);
    assert.equal(m({ 'steps.reminder.status': { $exists: true } }, doc), false);
  });

  it('matches() never throws, whatever the document', () => {
    const f = compileFilter({ 'a.b': { $gt: 1 }, $or: [{ c: { $regex: 'x' } }, { 'd.0': null }] });
    for (const doc of [undefined, null, 0, 'str', [], [1, 2], { a: null }, { a: [null, 1, { b: [2] }] }, { c: [['x']] }, Object.create(null)]) {
      assert.equal(typeof f.matches(doc), 'boolean');
    }
    assert.equal(f.matches({ a: [null, 1, { b: [2] }], d: [null] }), true);
  });
});

describe('filter: validation', () => {
  function fails(filter: unknown, path: string, operator: string | undefined, text: RegExp) {
    const e = filterError(filter);
    assert.ok(e instanceof FilterError, `expected ${JSON.stringify(filter)} to be refused`);
    assert.equal(e.path, path, e.message);
    assert.equal(e.operator, operator, e.message);
    assert.match(e.message, text);
  }

  it('names where and which operator is wrong', () => {
    fails([], '', undefined, /JSON object/);
    fails('x', '', undefined, /JSON object/);
    fails(null, '', undefined, /JSON object/);
    fails({ 'payload.n': { $gtx: 1 } }, 'payload.n.$gtx', '$gtx', /unknown operator \$gtx/);
    fails({ $nor: [] }, '$nor', '$nor', /unknown combinator/);
    fails({ $and: [] }, '$and', '$and', /non-empty array/);
    fails({ $or: {} }, '$or', '$or', /non-empty array/);
    fails({ $and: [{ a: 1 }, { b: { $in: 'x' } }] }, '$and[1].b.$in', '$in', /array/);
    fails({ $not: [] }, '$not', undefined, /JSON object/);
    fails({ $or: [{ a: 1 }, 5] }, '$or[1]', undefined, /JSON object/);
    fails({ a: { $gt: true } }, 'a.$gt', '$gt', /number or a string/);
    fails({ a: { $lte: null } }, 'a.$lte', '$lte', /number or a string/);
    fails({ a: { $exists: 'yes' } }, 'a.$exists', '$exists', /true or false/);
    fails({ a: { $regex: 5 } }, 'a.$regex', '$regex', /pattern string/);
    fails({ a: { $regex: '(a' } }, 'a.$regex', '$regex', /not a valid RE2 pattern/);
    fails({ a: { $regex: '(a)\\1' } }, 'a.$regex', '$regex', /backreferences/);
    fails({ a: { $regex: '(?=a)b' } }, 'a.$regex', '$regex', /not a valid RE2 pattern/);
    fails({ a: { $regex: 'x'.repeat(MAX_REGEX_LENGTH + 1) } }, 'a.$regex', '$regex', /at most/);
    fails({ a: { $eq: 1, b: 2 } }, 'a', undefined, /only \$-operators/);
    fails({ 'a..b': 1 }, 'a..b', undefined, /none empty/);
    fails({ '': 1 }, '', undefined, /none empty/);
    fails({ a: { $in: Array.from({ length: MAX_IN_VALUES + 1 }, (_, i) => i) } }, 'a.$in', '$in', /at most/);
  });

  it('bounds depth and size', () => {
    let deep: unknown = { a: 1 };
    for (let i = 0; i < MAX_FILTER_DEPTH + 1; i++) deep = { $not: deep };
    assert.match(filterError(deep)!.message, /nest at most/);
    let ok: unknown = { a: 1 };
    for (let i = 0; i < MAX_FILTER_DEPTH; i++) ok = { $not: ok };
    assert.equal(filterError(ok), undefined);
    const wide = Object.fromEntries(Array.from({ length: MAX_FILTER_NODES + 1 }, (_, i) => [`k${i}`, i]));
    assert.match(filterError(wide)!.message, /too large/);
    let deepValue: unknown = 1;
    for (let i = 0; i < MAX_FILTER_DEPTH + 2; i++) deepValue = [deepValue];
    assert.match(filterError({ a: deepValue })!.message, /nest at most/);
  });

  it('never throws anything but FilterError, for any JSON', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.jsonValue({ maxDepth: 5 }), (filter, doc) => {
        try {
          const f = compileFilter(filter);
          assert.equal(typeof f.matches(doc), 'boolean');
        } catch (e) {
          assert.ok(e instanceof FilterError, String(e));
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('filter: pathological regular expressions finish', () => {
  // A backtracking engine takes exponential time on these; RE2 reads the input once.
  for (const [pattern, input] of [
    ['(a+)+$', 'a'.repeat(50_000) + '!'],
    ['^(a|aa)*$', 'a'.repeat(50_000) + '!'],
    ['(x+x+)+y', 'x'.repeat(50_000)],
    ['^(.*a){12}$', 'a'.repeat(20_000) + 'b'],
    ['^(\\w+\\s?)*$', 'word '.repeat(10_000) + '!'],
  ] as const) {
    it(`${pattern} on ${input.length} characters`, () => {
      assert.equal(m({ s: { $regex: pattern } }, { s: input }), false);
    });
  }
});

// Property tests over generated documents and filters.
const scalar = fc.oneof(fc.string({ maxLength: 6 }), fc.integer({ min: -50, max: 50 }), fc.boolean(), fc.constant(null));
const keyArb = fc.constantFrom('a', 'b', 'c', 'x-y');
const doc = fc.dictionary(keyArb, fc.oneof(scalar, fc.array(scalar, { maxLength: 4 }), fc.dictionary(keyArb, scalar, { maxKeys: 3 })), { maxKeys: 4 });
const pathArb = fc.oneof(keyArb, fc.tuple(keyArb, keyArb).map(([a, b]) => `${a}.${b}`));
const leaf = fc.oneof(
  fc.tuple(pathArb, scalar).map(([p, v]) => ({ [p]: v })),
  fc.tuple(pathArb, fc.constantFrom('$eq', '$neq'), scalar).map(([p, op, v]) => ({ [p]: { [op]: v } })),
  fc.tuple(pathArb, fc.constantFrom('$gt', '$gte', '$lt', '$lte'), fc.oneof(fc.integer({ min: -50, max: 50 }), fc.string({ maxLength: 3 }))).map(([p, op, v]) => ({ [p]: { [op]: v } })),
  fc.tuple(pathArb, fc.constantFrom('$in', '$nin'), fc.array(scalar, { maxLength: 4 })).map(([p, op, v]) => ({ [p]: { [op]: v } })),
  fc.tuple(pathArb, fc.boolean()).map(([p, v]) => ({ [p]: { $exists: v } })),
  fc.tuple(pathArb, fc.constantFrom('^a', 'b$', '(?i)A', '.', '^$')).map(([p, v]) => ({ [p]: { $regex: v } })),
);
const filterArb: fc.Arbitrary<Record<string, unknown>> = fc.letrec((tie) => ({
  f: fc.oneof(
    { maxDepth: 5, depthSize: 'small', withCrossShrink: true },
    leaf,
    fc.array(tie('f'), { minLength: 1, maxLength: 3 }).map((fs) => ({ $and: fs })),
    fc.array(tie('f'), { minLength: 1, maxLength: 3 }).map((fs) => ({ $or: fs })),
    tie('f').map((f) => ({ $not: f })),
  ),
})).f as fc.Arbitrary<Record<string, unknown>>;

describe('filter: properties', () => {
  it('$not, $and and $or are boolean negation, conjunction and disjunction', () => {
    fc.assert(
      fc.property(fc.array(filterArb, { minLength: 1, maxLength: 3 }), doc, (fs, d) => {
        const each = fs.map((f) => m(f, d));
        assert.equal(m({ $and: fs }, d), each.every(Boolean));
        assert.equal(m({ $or: fs }, d), each.some(Boolean));
        assert.equal(m({ $not: fs[0] }, d), !each[0]);
      }),
      { numRuns: 1000 },
    );
  });

  it('a value read from the document at a path matches that path', () => {
    fc.assert(
      fc.property(doc, fc.nat(), (d, pick) => {
        const keys = Object.keys(d);
        fc.pre(keys.length > 0);
        const k = keys[pick % keys.length]!;
        assert.equal(m({ [k]: d[k] }, d), true);
        assert.equal(m({ [k]: { $eq: d[k] } }, d), true);
        assert.equal(m({ [k]: { $in: [d[k]] } }, d), true);
        assert.equal(m({ [k]: { $neq: d[k] } }, d), false);
        assert.equal(m({ [k]: { $nin: [d[k]] } }, d), false);
        assert.equal(m({ [k]: { $exists: true } }, d), true);
        assert.equal(m({ [`${k}zz`]: { $exists: false } }, d), true);
      }),
      { numRuns: 500 },
    );
  });

  it('$in is $or over $eq; $nin is its negation; $neq is the negation of $eq', () => {
    fc.assert(
      fc.property(doc, pathArb, fc.array(scalar, { minLength: 1, maxLength: 4 }), (d, p, vs) => {
        const inn = m({ [p]: { $in: vs } }, d);
        assert.equal(inn, m({ $or: vs.map((v) => ({ [p]: { $eq: v } })) }, d));
        assert.equal(m({ [p]: { $nin: vs } }, d), !inn);
        assert.equal(m({ [p]: { $neq: vs[0] } }, d), !m({ [p]: vs[0] }, d));
      }),
      { numRuns: 1000 },
    );
  });

  it('on a single number, $gt and $lte split, as do $lt and $gte', () => {
    fc.assert(
      fc.property(fc.double({ noNaN: true, noDefaultInfinity: true }), fc.double({ noNaN: true, noDefaultInfinity: true }), (v, bound) => {
        const d = { n: v };
        assert.equal(m({ n: { $gt: bound } }, d), v > bound);
        assert.equal(m({ n: { $gt: bound } }, d), !m({ n: { $lte: bound } }, d));
        assert.equal(m({ n: { $lt: bound } }, d), !m({ n: { $gte: bound } }, d));
      }),
    );
  });

  it('$regex of an escaped string finds it in any string containing it', () => {
    const escape = (s: string) => s.replace(/[\\^$.*+?()[\]{}|]/g, '\\$&');
    fc.assert(
      fc.property(fc.string({ maxLength: 8 }), fc.string({ maxLength: 20 }), fc.string({ maxLength: 8 }), (pre, needle, post) => {
        assert.equal(m({ s: { $regex: escape(needle) } }, { s: pre + needle + post }), true);
      }),
      { numRuns: 500 },
    );
  });

  it('jsonEqual ignores key order and agrees with canonical serialisation', () => {
    const canon = (v: unknown): string =>
      Array.isArray(v) ? `[${v.map(canon).join(',')}]` : v && typeof v === 'object' ? `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canon((v as Record<string, unknown>)[k])}`).join(',')}}` : JSON.stringify(v);
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 3 }), fc.jsonValue({ maxDepth: 3 }), (a, b) => {
        assert.equal(jsonEqual(a, b), canon(a) === canon(b));
        const shuffled = JSON.parse(JSON.stringify(a, (_k, v) => (v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).reverse()) : v)));
        assert.equal(jsonEqual(a, shuffled), true);
      }),
      { numRuns: 500 },
    );
  });
});

describe('filter: docs/filters.md', () => {
  it('every filter example in the docs compiles', async () => {
    const { readFile } = await import('node:fs/promises');
    const md = await readFile(new URL('../../docs/filters.md', import.meta.url), 'utf8');
    const blocks = [...md.matchAll(/```json\n([\s\S]*?)```/g)].map((b) => JSON.parse(b[1]!));
    const filters = blocks.filter((b) => !('type' in b && 'status' in b));
    assert.ok(filters.length >= 6);
    for (const f of filters) assert.equal(filterError(f), undefined, JSON.stringify(f));
    const problem = blocks.find((b) => 'status' in b);
    const e = filterError({ 'payload.number': { $gtx: 1 } });
    assert.equal(`body.filter.${e!.path}`, problem.errors[0].path);
    assert.equal(e!.reason, problem.errors[0].message);
  });
});
