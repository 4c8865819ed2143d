// Summarises a V8 .cpuprofile (node --cpu-prof): the top functions by self time, aggregated by
// function name + script, the same for total (inclusive) time restricted to Herald's own code, and
// self time per area (Herald src/, each node_modules package, Node internals, native, GC).
//
//   node bench/profile-summary.ts FILE.cpuprofile [--top 25] [--from S] [--to S]
// --from/--to keep only the samples taken that many seconds after the profile started (e.g. to
// leave out start-up); bench/run.ts --profile passes the measurement window of each run.

import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';

interface CallFrame {
  functionName: string;
  url: string;
  lineNumber: number;
  columnNumber: number;
}
interface ProfileNode {
  id: number;
  callFrame: CallFrame;
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface Row {
  function: string;
  where: string;
  area: string;
  ms: number;
  pct: number;
}

export interface ProfileSummary {
  file: string;
  window?: Window;
  /** Profile length and the part of it the process was not idle. */
  totalMs: number;
  busyMs: number;
  /** Top functions by self time; pct is of busy time. */
  self: Row[];
  /** Herald's own functions (src/) by total time (self + callees); pct is of busy time. */
  heraldTotal: Row[];
  /** Self time per area; pct is of busy time. */
  areas: { area: string; ms: number; pct: number }[];
}

const ROOT_URL = new URL('..', import.meta.url).href;

/** Where a script lives, shortened: src/queue/accept.ts, fastify/lib/route.js, node:internal/..., (native). */
function where(url: string, line: number): string {
  if (!url) return '';
  let u = url.startsWith(ROOT_URL) ? url.slice(ROOT_URL.length) : url;
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) u = u.slice(nm + 'node_modules/'.length);
  return line >= 0 ? `${u}:${line + 1}` : u;
}

function area(frame: CallFrame): string {
  const { url, functionName } = frame;
  if (!url) {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)' || functionName === '(program)' || functionName === '(root)') return functionName;
    return 'native/V8 builtins';
  }
  const u = url.startsWith(ROOT_URL) ? url.slice(ROOT_URL.length) : url;
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) {
    const rest = u.slice(nm + 'node_modules/'.length).split('/');
    return rest[0]!.startsWith('@') ? `${rest[0]}/${rest[1]}` : rest[0]!;
  }
  if (u.startsWith('src/')) return `herald ${u.split('/').slice(0, 2).join('/')}`;
  if (u.startsWith('node:')) return 'node internals';
  return u;
}

const isHerald = (f: CallFrame) => f.url.startsWith(ROOT_URL + 'src/');

/** A time window to summarise, in ms since the profile started (about when the process started). */
export interface Window {
  fromMs: number;
  toMs: number;
}

export function summarise(file: string, top = 25, window?: Window): ProfileSummary {
  const p = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map<number, ProfileNode>();
  const parent = new Map<number, number>();
  for (const n of p.nodes) byId.set(n.id, n);
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

  // Sample i lasts until sample i+1: its duration is timeDeltas[i+1] (the last one gets the mean).
  const meanDelta = (p.endTime - p.startTime) / Math.max(1, p.samples.length);
  const selfById = new Map<number, number>();
  let at = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    at += p.timeDeltas[i] ?? 0;
    if (window) {
      const sinceStartMs = (at - p.startTime) / 1000;
      if (sinceStartMs < window.fromMs || sinceStartMs > window.toMs) continue;
    }
    const d = (i + 1 < p.timeDeltas.length ? p.timeDeltas[i + 1]! : meanDelta) / 1000;
    selfById.set(p.samples[i]!, (selfById.get(p.samples[i]!) ?? 0) + d);
  }

  const key = (f: CallFrame) => `${f.functionName || '(anonymous)'}\u0000${f.url}`;
  const self = new Map<string, { frame: CallFrame; ms: number; lines: Map<number, number> }>();
  const total = new Map<string, { frame: CallFrame; ms: number }>();
  const areas = new Map<string, number>();
  let totalMs = 0;
  let idleMs = 0;
  for (const [id, ms] of selfById) {
    const frame = byId.get(id)!.callFrame;
    totalMs += ms;
    if (frame.functionName === '(idle)') {
      idleMs += ms;
      continue;
    }
    const k = key(frame);
    const e = self.get(k) ?? { frame, ms: 0, lines: new Map<number, number>() };
    e.ms += ms;
    e.lines.set(frame.lineNumber, (e.lines.get(frame.lineNumber) ?? 0) + ms);
    self.set(k, e);
    const a = area(frame);
    areas.set(a, (areas.get(a) ?? 0) + ms);
    // Inclusive time of Herald functions: each function once per stack (recursion counted once).
    const seen = new Set<string>();
    for (let n: number | undefined = id; n !== undefined; n = parent.get(n)) {
      const f = byId.get(n)!.callFrame;
      if (!isHerald(f)) continue;
      const fk = `${key(f)}\u0000${f.lineNumber}`;
      if (seen.has(fk)) continue;
      seen.add(fk);
      const t = total.get(fk) ?? { frame: f, ms: 0 };
      t.ms += ms;
      total.set(fk, t);
    }
  }
  const busyMs = totalMs - idleMs;
  const pct = (ms: number) => Math.round((ms / busyMs) * 1000) / 10;
  const r1 = (ms: number) => Math.round(ms * 10) / 10;

  const selfRows = [...self.values()]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top)
    .map(({ frame, ms, lines }) => {
      // Show the line of the heaviest frame of this function (several when names collide).
      const line = [...lines.entries()].sort((a, b) => b[1] - a[1])[0]![0];
      return { function: frame.functionName || '(anonymous)', where: where(frame.url, line), area: area(frame), ms: r1(ms), pct: pct(ms) };
    });
  const heraldRows = [...total.values()]
    .sort((a, b) => b.ms - a.ms)
    .slice(0, top)
    .map(({ frame, ms }) => ({ function: frame.functionName || '(anonymous)', where: where(frame.url, frame.lineNumber), area: area(frame), ms: r1(ms), pct: pct(ms) }));
  const areaRows = [...areas.entries()].sort((a, b) => b[1] - a[1]).map(([a, ms]) => ({ area: a, ms: r1(ms), pct: pct(ms) }));
  return { file, ...(window && { window }), totalMs: r1(totalMs), busyMs: r1(busyMs), self: selfRows, heraldTotal: heraldRows, areas: areaRows };
}

export function formatSummary(s: ProfileSummary): string {
  const out: string[] = [];
  out.push(`${s.file}`);
  const w = s.window ? ` (window ${(s.window.fromMs / 1000).toFixed(1)}-${(s.window.toMs / 1000).toFixed(1)} s after start)` : '';
  out.push(`profile ${(s.totalMs / 1000).toFixed(1)} s${w}, busy (not idle) ${(s.busyMs / 1000).toFixed(1)} s; percentages are of busy time`);
  out.push('');
  out.push(`Top ${s.self.length} by self time`);
  out.push(table(['self ms', '%', 'function', 'where'], s.self.map((r) => [r.ms.toFixed(0), r.pct.toFixed(1), r.function, r.where])));
  out.push('');
  out.push('Self time by area');
  out.push(table(['self ms', '%', 'area'], s.areas.slice(0, 15).map((r) => [r.ms.toFixed(0), r.pct.toFixed(1), r.area])));
  out.push('');
  out.push(`Herald's own functions by total time (self + callees)`);
  out.push(table(['total ms', '%', 'function', 'where'], s.heraldTotal.map((r) => [r.ms.toFixed(0), r.pct.toFixed(1), r.function, r.where])));
  return out.join('\n');
}

function table(head: string[], rows: string[][]): string {
  const w = head.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const fmt = (r: string[]) => r.map((c, i) => (i < 2 ? c.padStart(w[i]!) : i === r.length - 1 ? c : c.padEnd(w[i]!))).join('  ');
  return [fmt(head), ...rows.map(fmt)].join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values, positionals } = parseArgs({
    allowPositionals: true,
    options: { top: { type: 'string', default: '25' }, from: { type: 'string' }, to: { type: 'string' } },
  });
  const window = values.from !== undefined || values.to !== undefined ? { fromMs: Number(values.from ?? 0) * 1000, toMs: values.to !== undefined ? Number(values.to) * 1000 : Infinity } : undefined;
  if (positionals.length === 0) {
    console.error('usage: node bench/profile-summary.ts FILE.cpuprofile [FILE…] [--top 25]');
    process.exitCode = 2;
  }
  for (const f of positionals) {
    console.log(formatSummary(summarise(f, Number(values.top), window)));
    console.log('');
  }
}
