// The one filter language (docs/filters.md): broker subscriptions and consumers, workflow branches.
//
// A filter is a JSON object. Each key is either a dotted path into the document
// (`payload.pull_request.base.ref`, `headers.x-github-event`) or a combinator:
//   {"$and": [f, …]}  every filter holds        {"$or": [f, …]}  at least one holds
//   {"$not": f}       f does not hold
// Keys of one object are ANDed; `{}` matches every document. A path's value is a literal (equality,
// deep for objects and arrays) or an operator object whose keys all start with `$`:
//   $eq v, $neq v, $gt/$gte/$lt/$lte n|s (numbers with numbers, strings with strings),
//   $in [v…], $nin [v…], $exists bool, $regex "re2 pattern" (unanchored; `(?i)` for any case).
// Several operators in one object are ANDed.
//
// Path resolution: a segment names an own property of an object; on an array, a segment of digits
// is an index and any other segment is resolved in every element. A path can therefore reach
// several values (or none: missing). An array value also offers each of its elements. A condition
// holds when any reached value satisfies it, except the negative operators: `$neq v` and `$nin`
// hold when no reached value equals (a missing path satisfies them); `$exists: false` holds when
// the path reaches nothing. `null` is a value: `{"a": null}` needs `a` present and null.
//
// Contract: compileFilter validates once and throws FilterError (naming where in the filter and
// which operator) for anything not in the language or over the limits below; the compiled filter's
// matches(doc) is total (never throws) and runs in time linear in the filter's size times the size
// of the values its paths reach: regular expressions use RE2 (re2js), which has no backtracking.

import { RE2JS } from 're2js';

/** Nesting of combinators ($and/$or/$not) and of literal values. */
export const MAX_FILTER_DEPTH = 8;
/** Paths, operators, list entries and literal values counted together. */
export const MAX_FILTER_NODES = 256;
export const MAX_PATH_LENGTH = 256;
export const MAX_REGEX_LENGTH = 512;
export const MAX_IN_VALUES = 100;

export const FILTER_OPERATORS = ['$eq', '$neq', '$gt', '$gte', '$lt', '$lte', '$in', '$nin', '$exists', '$regex'] as const;
export type FilterOperator = (typeof FILTER_OPERATORS)[number];
const COMBINATORS = ['$and', '$or', '$not'] as const;

export class FilterError extends Error {
  /** Where in the filter, e.g. `$and[1].payload.number.$gt`; empty for the filter itself. */
  readonly path: string;
  /** The operator or combinator at fault, when there is one. */
  readonly operator: string | undefined;
  /** The message without the location. */
  readonly reason: string;
  constructor(path: string, message: string, operator?: string) {
    super(path === '' ? message : `${path}: ${message}`);
    this.path = path;
    this.operator = operator;
    this.reason = message;
  }
}

export interface CompiledFilter {
  /** True when the document satisfies the filter. Never throws. */
  matches(doc: unknown): boolean;
}

type Test = (doc: unknown) => boolean;
type ValueTest = (values: unknown[]) => boolean;

interface Budget {
  nodes: number;
}

/** Validates `filter` and compiles it; throws FilterError. */
export function compileFilter(filter: unknown): CompiledFilter {
  const budget: Budget = { nodes: 0 };
  const test = compileObject(filter, '', 0, budget);
  return {
    matches(doc) {
      try {
        return test(doc);
      } catch {
        return false; // unreachable by construction; a filter never fails a caller
      }
    },
  };
}

/** Validates without keeping the result; returns the error or undefined. */
export function filterError(filter: unknown): FilterError | undefined {
  try {
    compileFilter(filter);
    return undefined;
  } catch (e) {
    if (e instanceof FilterError) return e;
    throw e;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function spend(budget: Budget, where: string, n = 1): void {
  budget.nodes += n;
  if (budget.nodes > MAX_FILTER_NODES) throw new FilterError(where, `the filter is too large (more than ${MAX_FILTER_NODES} paths, operators and values)`);
}

function at(base: string, key: string): string {
  return base === '' ? key : `${base}.${key}`;
}

function compileObject(filter: unknown, where: string, depth: number, budget: Budget): Test {
  if (!isPlainObject(filter)) throw new FilterError(where, 'a filter must be a JSON object');
  if (depth > MAX_FILTER_DEPTH) throw new FilterError(where, `filters nest at most ${MAX_FILTER_DEPTH} deep`);
  const tests: Test[] = [];
  for (const key of Object.keys(filter)) {
    const value = filter[key];
    const here = at(where, key);
    spend(budget, here);
    if (key.startsWith('$')) {
      if (key === '$and' || key === '$or') {
        if (!Array.isArray(value) || value.length === 0) throw new FilterError(here, `${key} takes a non-empty array of filters`, key);
        const parts = value.map((f, i) => compileObject(f, `${here}[${i}]`, depth + 1, budget));
        tests.push(key === '$and' ? (d) => parts.every((t) => t(d)) : (d) => parts.some((t) => t(d)));
      } else if (key === '$not') {
        const inner = compileObject(value, here, depth + 1, budget);
        tests.push((d) => !inner(d));
      } else {
        throw new FilterError(here, `unknown combinator ${key}: expected one of ${COMBINATORS.join(', ')} or a dotted path`, key);
      }
      continue;
    }
    const segments = parsePath(key, here);
    const cond = compileCondition(value, here, depth, budget);
    tests.push((d) => cond(resolve(d, segments)));
  }
  if (tests.length === 1) return tests[0]!;
  return (d) => tests.every((t) => t(d));
}

function parsePath(key: string, where: string): string[] {
  if (key.length > MAX_PATH_LENGTH) throw new FilterError(where, `a path is at most ${MAX_PATH_LENGTH} characters`);
  const segments = key.split('.');
  if (segments.some((s) => s === '')) throw new FilterError(where, 'a path is dot-separated names, none empty (e.g. payload.pull_request.number)');
  return segments;
}

/** The values `segments` reach in `doc`: none when missing; several through arrays. */
function resolve(doc: unknown, segments: string[]): unknown[] {
  let current: unknown[] = [doc];
  for (const seg of segments) {
    const next: unknown[] = [];
    for (const v of current) step(v, seg, next);
    if (next.length === 0) return next;
    current = next;
  }
  return current;
}

const INDEX = /^(0|[1-9][0-9]{0,8})$/;

function step(v: unknown, seg: string, out: unknown[]): void {
  if (Array.isArray(v)) {
    if (INDEX.test(seg)) {
      const i = Number(seg);
      if (i < v.length) out.push(v[i]);
      return;
    }
    for (const e of v) if (isPlainObject(e) && Object.hasOwn(e, seg) && e[seg] !== undefined) out.push(e[seg]);
    return;
  }
  if (isPlainObject(v) && Object.hasOwn(v, seg) && v[seg] !== undefined) out.push(v[seg]);
}

/** The reached values and, for each array among them, its elements. */
function candidates(values: unknown[]): unknown[] {
  if (!values.some(Array.isArray)) return values;
  const out: unknown[] = [];
  for (const v of values) {
    out.push(v);
    if (Array.isArray(v)) for (const e of v) out.push(e);
  }
  return out;
}

function compileCondition(value: unknown, where: string, depth: number, budget: Budget): ValueTest {
  if (isPlainObject(value)) {
    const keys = Object.keys(value);
    const ops = keys.filter((k) => k.startsWith('$'));
    if (ops.length > 0) {
      if (ops.length !== keys.length) {
        throw new FilterError(where, 'an operator object has only $-operators; to compare with an object literal, use {"$eq": {…}}');
      }
      const tests = ops.map((op) => compileOperator(op, value[op], at(where, op), depth, budget));
      if (tests.length === 1) return tests[0]!;
      return (vs) => tests.every((t) => t(vs));
    }
  }
  const literal = checkLiteral(value, where, depth, budget);
  return (vs) => candidates(vs).some((c) => jsonEqual(c, literal));
}

function compileOperator(op: string, arg: unknown, where: string, depth: number, budget: Budget): ValueTest {
  spend(budget, where);
  switch (op) {
    case '$eq': {
      const lit = checkLiteral(arg, where, depth, budget);
      return (vs) => candidates(vs).some((c) => jsonEqual(c, lit));
    }
    case '$neq': {
      const lit = checkLiteral(arg, where, depth, budget);
      return (vs) => !candidates(vs).some((c) => jsonEqual(c, lit));
    }
    case '$gt':
    case '$gte':
    case '$lt':
    case '$lte': {
      if (!((typeof arg === 'number' && Number.isFinite(arg)) || typeof arg === 'string')) {
        throw new FilterError(where, `${op} compares with a number or a string`, op);
      }
      const cmp = ORDER[op];
      return (vs) =>
        candidates(vs).some((c) => typeof c === typeof arg && (typeof c === 'number' || typeof c === 'string') && cmp(c < arg ? -1 : c > arg ? 1 : 0));
    }
    case '$in':
    case '$nin': {
      if (!Array.isArray(arg)) throw new FilterError(where, `${op} takes an array of values`, op);
      if (arg.length > MAX_IN_VALUES) throw new FilterError(where, `${op} takes at most ${MAX_IN_VALUES} values`, op);
      const lits = arg.map((v, i) => checkLiteral(v, `${where}[${i}]`, depth, budget));
      const scalars = new Set(lits.filter((l) => l === null || typeof l !== 'object'));
      const composites = lits.filter((l) => l !== null && typeof l === 'object');
      const member = (c: unknown) => ((c === null || typeof c !== 'object') ? scalars.has(c) : composites.some((l) => jsonEqual(c, l)));
      return op === '$in' ? (vs) => candidates(vs).some(member) : (vs) => !candidates(vs).some(member);
    }
    case '$exists': {
      if (typeof arg !== 'boolean') throw new FilterError(where, '$exists takes true or false', op);
      return arg ? (vs) => vs.length > 0 : (vs) => vs.length === 0;
    }
    case '$regex': {
      const re = compileRegex(arg, where);
      return (vs) => candidates(vs).some((c) => typeof c === 'string' && re.matcher(c).find());
    }
    default:
      throw new FilterError(where, `unknown operator ${op}: expected one of ${FILTER_OPERATORS.join(' ')}`, op);
  }
}

const ORDER: Record<'$gt' | '$gte' | '$lt' | '$lte', (sign: number) => boolean> = {
  $gt: (s) => s > 0,
  $gte: (s) => s >= 0,
  $lt: (s) => s < 0,
  $lte: (s) => s <= 0,
};

function compileRegex(arg: unknown, where: string): RE2JS {
  if (typeof arg !== 'string') throw new FilterError(where, '$regex takes a pattern string', '$regex');
  if (arg.length > MAX_REGEX_LENGTH) throw new FilterError(where, `a $regex pattern is at most ${MAX_REGEX_LENGTH} characters`, '$regex');
  try {
    return RE2JS.compile(arg);
  } catch (e) {
    // RE2 syntax: no backreferences or lookaround, the constructs that need backtracking.
    const why = e instanceof Error ? e.message.replace(/^error parsing regexp: /, '') : 'not a valid pattern';
    throw new FilterError(where, `$regex is not a valid RE2 pattern: ${why} (RE2 has no backreferences or lookaround; repeats at most {1000})`, '$regex');
  }
}

/** A JSON value (string, finite number, boolean, null, array, object), within the depth and size limits. */
function checkLiteral(v: unknown, where: string, depth: number, budget: Budget): unknown {
  if (v === null || typeof v === 'string' || typeof v === 'boolean') return v;
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) throw new FilterError(where, 'numbers must be finite');
    return v;
  }
  if (depth >= MAX_FILTER_DEPTH) throw new FilterError(where, `values nest at most ${MAX_FILTER_DEPTH} deep`);
  if (Array.isArray(v)) {
    spend(budget, where, v.length);
    v.forEach((e, i) => checkLiteral(e, `${where}[${i}]`, depth + 1, budget));
    return v;
  }
  if (isPlainObject(v)) {
    const keys = Object.keys(v);
    spend(budget, where, keys.length);
    for (const k of keys) checkLiteral(v[k], at(where, k), depth + 1, budget);
    return v;
  }
  throw new FilterError(where, 'expected a JSON value');
}

/** Deep equality of JSON values; object key order does not matter. */
export function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!jsonEqual(a[i], b[i])) return false;
    return true;
  }
  if (Array.isArray(b)) return false;
  const ka = Object.keys(a);
  const kb = Object.keys(b);
  if (ka.length !== kb.length) return false;
  const ob = b as Record<string, unknown>;
  const oa = a as Record<string, unknown>;
  for (const k of ka) if (!Object.hasOwn(ob, k) || !jsonEqual(oa[k], ob[k])) return false;
  return true;
}
