// Import rules of src/ (docs/architecture.md "What may import what"), checked on the source text.
//
// A small scanner reads every `import … from`, `import type … from`, `export … from`, side-effect
// `import '…'` and dynamic `import('…')` of each file under src/ (no TypeScript parser: Herald's
// code writes imports as plain statements) and resolves relative specifiers to src paths. Rules:
//   domain-pure        src/domain imports only src/domain and the I/O-free libraries in
//                      DOMAIN_LIBRARIES (no node:fs/net/http/…, no store, no channels, no bus)
//   channels-no-store  src/channels imports no table module (TABLE_MODULE)
//   routes-services    a feature's routes.ts and the files of src/http import no table module
//                      (type-only imports of store/schema.ts and store/adapter.ts, the row and
//                      adapter types, are allowed; so is store/migrations/index.ts, a constant), and
//                      run no query of their own (no Kysely builder call, no `store.db`)
//   no-cycles          the import graph of src, type-only imports included, has no cycle
//   app-wires          src/app.ts imports no table module (only store/index.ts, to open the store),
//                      runs no query, declares no top-level function but createHerald and
//                      createLogger, and has no function literal with a block body outside its
//                      start() and stop() methods: what it passes around is one-expression glue,
//                      so any rule ("after a send, …") it would hold has to live in a module.
// PENDING lists files that break a rule today for a stated reason; the test fails if such a file
// stops breaking it (so the list cannot rot) and for every violation not listed.

import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, posix, relative } from 'node:path';
import { describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/** Libraries src/domain may use: pure computation, no I/O. */
const DOMAIN_LIBRARIES = new Set(['node:crypto', 'luxon', 'mustache', 're2js']);

/** Violations that exist for a reason stated here, keyed `rule file -> target`. */
const PENDING: Record<string, string> = {};

export interface Import {
  /** The specifier as written. */
  spec: string;
  /** The src-relative target for relative specifiers ('src/store/schema.ts'), else undefined. */
  target: string | undefined;
  typeOnly: boolean;
}

export interface Violation {
  rule: 'domain-pure' | 'channels-no-store' | 'routes-services' | 'no-cycles' | 'app-wires';
  file: string;
  /** What breaks the rule: an import target, a specifier, or a short description. */
  what: string;
}

const STATIC = /^[ \t]*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"]([^'"]+)['"]/gm;
const SIDE_EFFECT = /^[ \t]*import\s+['"]([^'"]+)['"]/gm;
const DYNAMIC = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;

/** The imports of `source`, a file at src-relative path `file`. */
export function importsOf(file: string, source: string): Import[] {
  const out: Import[] = [];
  const add = (spec: string, typeOnly: boolean) =>
    out.push({ spec, typeOnly, target: spec.startsWith('.') ? posix.normalize(posix.join(posix.dirname(file), spec)) : undefined });
  for (const m of source.matchAll(STATIC)) {
    const clause = m[3]!;
    const named = /^\{([^}]*)\}$/.exec(clause.trim());
    const allTypes = named !== null && named[1]!.split(',').map((x) => x.trim()).filter(Boolean).every((x) => x.startsWith('type '));
    add(m[4]!, m[2] !== undefined || allTypes);
  }
  for (const m of source.matchAll(SIDE_EFFECT)) add(m[1]!, false);
  for (const m of source.matchAll(DYNAMIC)) add(m[1]!, false);
  return out;
}

/** A module whose functions query tables: anything in src/store but the types, the adapter contract and the migrations' index, and every feature's store.ts. */
function isTableModule(target: string, typeOnly: boolean): boolean {
  if (/^src\/[a-z-]+\/store\.ts$/.test(target)) return true;
  if (!target.startsWith('src/store/')) return false;
  if (target === 'src/store/migrations/index.ts') return false;
  if (typeOnly && (target === 'src/store/schema.ts' || target === 'src/store/adapter.ts')) return false;
  return true;
}

/** A Kysely query written in place. */
const QUERY_BUILDER = /\.(selectFrom|updateTable|insertInto|deleteFrom|replaceInto|mergeInto)\(/;
/** In routes, also the store's query handle (routes reach the store only through services). */
const INLINE_QUERY = new RegExp(`${QUERY_BUILDER.source}|\\bstore\\.db\\b`);

/** `source` with the bodies of its `start() {…}` and `stop() {…}` methods cut out. */
function withoutLifecycle(source: string): string {
  let s = source;
  for (const name of ['start', 'stop']) {
    const m = new RegExp(`\\n\\s*(async\\s+)?${name}\\(\\)\\s*(:[^{]*)?\\{`).exec(s);
    if (!m) continue;
    let depth = 0;
    let i = m.index + m[0].length - 1;
    for (; i < s.length; i++) {
      if (s[i] === '{') depth++;
      else if (s[i] === '}' && --depth === 0) break;
    }
    s = s.slice(0, m.index) + s.slice(i + 1);
  }
  return s;
}

/** Every violation of the rules in `files` (src-relative path -> source text). */
export function check(files: ReadonlyMap<string, string>): Violation[] {
  const out: Violation[] = [];
  const graph = new Map<string, string[]>();
  for (const [file, source] of files) {
    const imports = importsOf(file, source);
    graph.set(file, imports.flatMap((i) => (i.target && files.has(i.target) ? [i.target] : [])));
    const isRoutes = /^src\/[a-z-]+\/routes\.ts$/.test(file) || file.startsWith('src/http/');
    for (const i of imports) {
      if (file.startsWith('src/domain/')) {
        const ok = i.target ? i.target.startsWith('src/domain/') : DOMAIN_LIBRARIES.has(i.spec);
        if (!ok) out.push({ rule: 'domain-pure', file, what: i.target ?? i.spec });
      }
      if (file.startsWith('src/channels/') && i.target && isTableModule(i.target, i.typeOnly)) out.push({ rule: 'channels-no-store', file, what: i.target });
      if (isRoutes && i.target && isTableModule(i.target, i.typeOnly)) out.push({ rule: 'routes-services', file, what: i.target });
      if (file === 'src/app.ts' && i.target && i.target !== 'src/store/index.ts' && isTableModule(i.target, i.typeOnly)) out.push({ rule: 'app-wires', file, what: i.target });
    }
    if (isRoutes && INLINE_QUERY.test(source)) out.push({ rule: 'routes-services', file, what: 'store.db' });
    if (file === 'src/app.ts') {
      if (QUERY_BUILDER.test(source)) out.push({ rule: 'app-wires', file, what: 'an inline query' });
      for (const m of source.matchAll(/^(?:export\s+)?(?:async\s+)?function\s+(\w+)/gm)) {
        if (m[1] !== 'createHerald' && m[1] !== 'createLogger') out.push({ rule: 'app-wires', file, what: `function ${m[1]}` });
      }
      const glue = withoutLifecycle(source.slice(source.indexOf('export async function createHerald')));
      const body = glue.slice(glue.indexOf('{') + 1);
      const blocks = (body.match(/=>\s*\{|\bfunction\s*\(/g) ?? []).length;
      if (blocks > 0) out.push({ rule: 'app-wires', file, what: `${blocks} block-bodied function literal(s) outside start()/stop()` });
    }
  }
  for (const cycle of cycles(graph)) out.push({ rule: 'no-cycles', file: cycle[0]!, what: cycle.join(' -> ') });
  return out;
}

/** The strongly connected components of `graph` with more than one file, or a file importing itself (Tarjan). */
export function cycles(graph: ReadonlyMap<string, readonly string[]>): string[][] {
  let next = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const out: string[][] = [];
  const visit = (v: string): void => {
    index.set(v, next);
    low.set(v, next++);
    stack.push(v);
    onStack.add(v);
    for (const w of graph.get(v) ?? []) {
      if (!index.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v)!, low.get(w)!));
      } else if (onStack.has(w)) low.set(v, Math.min(low.get(v)!, index.get(w)!));
    }
    if (low.get(v) === index.get(v)) {
      const scc: string[] = [];
      let w: string;
      do {
        w = stack.pop()!;
        onStack.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) out.push(scc.sort());
    }
  };
  for (const v of [...graph.keys()].sort()) if (!index.has(v)) visit(v);
  return out;
}

function sourcesUnder(dir: string): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (d: string) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) files.set(relative(ROOT, p).split('\\').join('/'), readFileSync(p, 'utf8'));
    }
  };
  walk(join(ROOT, dir));
  return files;
}

const key = (v: Violation) => `${v.rule} ${v.file} -> ${v.what}`;

describe('architecture: import rules of src/', () => {
  const src = sourcesUnder('src');

  it('reads the whole tree (the scanner finds the imports it should)', () => {
    assert.ok(src.size > 100, `only ${src.size} files under src`);
    const app = importsOf('src/app.ts', src.get('src/app.ts')!);
    assert.ok(app.some((i) => i.target === 'src/http/server.ts'), 'app.ts imports http/server.ts');
    assert.ok(app.some((i) => i.spec === './bus/redis.ts'), 'the dynamic import of the Redis bus is seen');
  });

  it('holds: no violation but the pending ones, and every pending one still exists', () => {
    const found = check(src).map(key);
    const unexpected = found.filter((k) => !(k in PENDING));
    assert.deepEqual(unexpected, [], 'imports that break the rules (docs/architecture.md)');
    const resolved = Object.keys(PENDING).filter((k) => !found.includes(k));
    assert.deepEqual(resolved, [], 'pending exceptions that no longer occur: remove them from PENDING');
  });
});

describe('architecture: the checker fails on each kind of forbidden import (a test of the test)', () => {
  /** The rules' violations in a tree of a few synthetic files. */
  const violations = (files: Record<string, string>) => check(new Map(Object.entries(files))).map(key);
  const clean: Record<string, string> = {
    'src/domain/a.ts': "import { createHash } from 'node:crypto';\nimport { DateTime } from 'luxon';\nimport { b } from './b.ts';\n",
    'src/domain/b.ts': 'export const b = 1;\n',
    'src/channels/x.ts': "import { a } from '../domain/a.ts';\nimport type { Database } from '../store/schema.ts';\n",
    'src/things/routes.ts': "import type { ThingsTable } from '../store/schema.ts';\nimport { ThingService } from './service.ts';\n",
    'src/things/service.ts': "import { listThings } from './store.ts';\n",
    'src/things/store.ts': "import type { Database } from '../store/schema.ts';\nexport const q = (db) => db.selectFrom('things');\n",
    'src/store/schema.ts': 'export interface Database {}\n',
    'src/store/index.ts': 'export const openStore = 1;\n',
    'src/app.ts':
      "import { openStore } from './store/index.ts';\nimport { ThingService } from './things/service.ts';\nexport function createLogger() {}\nexport async function createHerald() {\n  const wake = (c) => pool?.wake(c);\n  return {\n    async start() {\n      await x.catch((err) => {\n        log.warn(err);\n      });\n    },\n    stop() {\n      stopping ??= (async () => {\n        await y();\n      })();\n    },\n  };\n}\n",
  };

  it('passes a clean tree', () => assert.deepEqual(violations(clean), []));

  it('domain: an I/O module or a module outside domain', () => {
    assert.deepEqual(violations({ ...clean, 'src/domain/b.ts': "import { readFileSync } from 'node:fs';\n" }), ['domain-pure src/domain/b.ts -> node:fs']);
    assert.deepEqual(violations({ ...clean, 'src/domain/b.ts': "import type { Database } from '../store/schema.ts';\n" }), ['domain-pure src/domain/b.ts -> src/store/schema.ts']);
    assert.deepEqual(violations({ ...clean, 'src/domain/b.ts': "export { x } from '../net/http.ts';\n" }), ['domain-pure src/domain/b.ts -> src/net/http.ts']);
  });

  it('channels: a table module, in src/store or a feature', () => {
    assert.deepEqual(violations({ ...clean, 'src/channels/x.ts': "import { getThing } from '../store/things.ts';\n" }), ['channels-no-store src/channels/x.ts -> src/store/things.ts']);
    assert.deepEqual(violations({ ...clean, 'src/channels/x.ts': "import {\n  listThings,\n} from '../things/store.ts';\n" }), ['channels-no-store src/channels/x.ts -> src/things/store.ts']);
  });

  it('routes: a table module instead of a service, or a query of their own', () => {
    assert.deepEqual(violations({ ...clean, 'src/things/routes.ts': "import { listThings } from './store.ts';\n" }), ['routes-services src/things/routes.ts -> src/things/store.ts']);
    assert.deepEqual(violations({ ...clean, 'src/http/other.ts': "import { getDeliveryById } from '../store/deliveries.ts';\n" }), ['routes-services src/http/other.ts -> src/store/deliveries.ts']);
    assert.deepEqual(violations({ ...clean, 'src/things/routes.ts': "const rows = await s.store.db.selectFrom('things').execute();\n" }), ['routes-services src/things/routes.ts -> store.db']);
    assert.deepEqual(violations({ ...clean, 'src/things/routes.ts': "import { type Database } from '../store/schema.ts';\nimport { Kysely } from '../store/schema.ts';\n" }), [
      'routes-services src/things/routes.ts -> src/store/schema.ts',
    ]);
  });

  it('cycles: a file importing itself, two files, and a cycle closed by a type-only import', () => {
    assert.deepEqual(violations({ ...clean, 'src/domain/b.ts': "import { b } from './b.ts';\n" }), ['no-cycles src/domain/b.ts -> src/domain/b.ts']);
    assert.deepEqual(violations({ ...clean, 'src/domain/b.ts': "import { a } from './a.ts';\n" }), ['no-cycles src/domain/a.ts -> src/domain/a.ts -> src/domain/b.ts']);
    assert.deepEqual(violations({ ...clean, 'src/things/store.ts': "import type { ThingService } from './service.ts';\n" }), [
      'no-cycles src/things/service.ts -> src/things/service.ts -> src/things/store.ts',
    ]);
  });

  it('app.ts: a table module, a query, a helper function, or a rule written as a callback', () => {
    const app = clean['src/app.ts']!;
    assert.deepEqual(violations({ ...clean, 'src/app.ts': `import { purge } from './store/idempotency.ts';\n${app}` }), ['app-wires src/app.ts -> src/store/idempotency.ts']);
    assert.deepEqual(violations({ ...clean, 'src/app.ts': app.replace('const wake', "await store.db.deleteFrom('x').execute();\n  const wake") }), ['app-wires src/app.ts -> an inline query']);
    assert.deepEqual(violations({ ...clean, 'src/app.ts': `${app}function helper() {}\n` }), ['app-wires src/app.ts -> function helper']);
    const rule = app.replace('const wake = (c) => pool?.wake(c);', 'const onFallback = async (d) => {\n    if (await ok(d)) await create(d);\n  };');
    assert.deepEqual(violations({ ...clean, 'src/app.ts': rule }), ['app-wires src/app.ts -> 1 block-bodied function literal(s) outside start()/stop()']);
  });
});
