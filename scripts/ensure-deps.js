// Installs dependencies when they are missing or older than package-lock.json.
// Plain JavaScript on purpose: it runs on whatever Node the machine has (possibly < 24),
// before the pinned `node@24` from devDependencies exists.
import { execSync } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const stamp = join(root, 'node_modules', '.package-lock.json');
const lock = join(root, 'package-lock.json');
const pinnedNode = join(root, 'node_modules', '.bin', 'node');

const fresh = existsSync(stamp) && existsSync(pinnedNode) && statSync(stamp).mtimeMs >= statSync(lock).mtimeMs;
if (!fresh) {
  const cmd = existsSync(join(root, 'node_modules')) ? 'npm install --no-audit --no-fund' : 'npm ci --no-audit --no-fund';
  console.error(`[herald] installing dependencies: ${cmd}`);
  execSync(cmd, { cwd: root, stdio: ['ignore', 'inherit', 'inherit'] });
}

// The dashboard is built from its sources whenever they (or the lockfile) changed.
const { buildDashboard } = await import('./build-dashboard.js');
buildDashboard();
