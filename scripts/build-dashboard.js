// Builds the dashboard (dashboard/ -> dashboard/dist) when its sources or the lockfile changed since
// the last build. Called by ensure-deps.js, so `npm start` and `npm test` always serve a current
// build and nobody runs a build by hand. Plain JavaScript for the same reason as ensure-deps.js.
//
// Contract: dashboard/dist/.source-hash holds the SHA-256 of every file under dashboard/ (dist
// excluded, paths sorted) and package-lock.json that the build in dist was made from. A build goes
// to a directory of its own and replaces dist by renames, so a Herald reading dist while another
// process builds sees the old build or the new one, never half of one.
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const dir = join(root, 'dashboard');
const dist = join(dir, 'dist');
const stampFile = join(dist, '.source-hash');

function sourceFiles(at) {
  const out = [];
  for (const e of readdirSync(at, { withFileTypes: true })) {
    if (e.name === 'dist' || e.name.startsWith('.dist-') || e.name === 'node_modules') continue;
    const p = join(at, e.name);
    if (e.isDirectory()) out.push(...sourceFiles(p));
    else if (e.isFile()) out.push(p);
  }
  return out;
}

export function sourceHash() {
  const h = createHash('sha256');
  const files = [...sourceFiles(dir), join(root, 'package-lock.json')].map((p) => relative(root, p)).sort();
  for (const f of files) h.update(f).update('\0').update(readFileSync(join(root, f))).update('\0');
  return h.digest('hex');
}

export function buildDashboard({ force = false } = {}) {
  const hash = sourceHash();
  if (!force && existsSync(stampFile) && readFileSync(stampFile, 'utf8').trim() === hash) return false;
  const tmp = join(dir, `.dist-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  console.error('[herald] building the dashboard (vite build)');
  // Vite needs Node 20.19 or later: this Node when it is recent, else the pinned one of the devDependencies.
  const major = Number(process.versions.node.split('.')[0]);
  const pinned = join(root, 'node_modules', '.bin', 'node');
  const node = major >= 22 || !existsSync(pinned) ? process.execPath : pinned;
  const r = spawnSync(node, [join(root, 'node_modules', 'vite', 'bin', 'vite.js'), 'build', '--config', join(dir, 'vite.config.ts'), '--outDir', tmp, '--logLevel', 'warn'], {
    cwd: root,
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  if (r.status !== 0) {
    rmSync(tmp, { recursive: true, force: true });
    throw new Error(`the dashboard build failed (vite exit ${r.status ?? r.signal})`);
  }
  writeFileSync(join(tmp, '.source-hash'), hash + '\n');
  const old = join(dir, `.dist-old-${process.pid}`);
  if (existsSync(dist)) renameSync(dist, old);
  renameSync(tmp, dist);
  rmSync(old, { recursive: true, force: true });
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  buildDashboard({ force: process.argv.includes('--force') });
}
