// The documented ways to start Herald and call its CLI, as a newcomer types them, with the
// machine's own npm and Node (which may be older than the Node 24 Herald runs on): the arguments
// arrive, and npm adds no warnings when nothing is wrong.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { rmSync } from 'node:fs';
import { delimiter, dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir, waitFor } from '../helpers/herald.ts';
import { freePort } from '../helpers/process.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const pinnedBin = join(root, 'node_modules', '.bin');

/** The environment a user's shell has: PATH without this project's node_modules/.bin (so `node` is the system's), no Herald settings. */
function userEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const path = (process.env.PATH ?? '').split(delimiter).filter((p) => p && !p.startsWith(dirname(pinnedBin))).join(delimiter);
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^(HERALD_|npm_|NODE_OPTIONS$|NODE_TEST_CONTEXT$|PORT$|HOST$|DATABASE_URL$|REDIS_URL$)/.test(k)));
  return { ...env, PATH: path, HERALD_SECRET_KEY: 'test-secret-key-test-secret-key-0123456789', ...extra };
}

describe('npm start and npx herald', () => {
  it('npm start -- --role worker starts a worker-only server, and npm prints no warnings', async () => {
    const dataDir = tempDir();
    const port = await freePort();
    // Its own process group, so the whole chain (npm, sh, node) is stopped together.
    const child = spawn('npm', ['start', '--', '--role', 'worker'], { cwd: root, env: userEnv({ HERALD_DATA_DIR: dataDir, PORT: String(port) }), detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (s: string) => (out += s));
    child.stderr!.setEncoding('utf8').on('data', (s: string) => (out += s));
    const exited = new Promise((resolve) => child.once('exit', resolve));
    try {
      const ready = await waitFor(
        async () => {
          if (child.exitCode !== null) throw new Error(`npm start exited with ${child.exitCode}:\n${out}`);
          const r = await fetch(`http://127.0.0.1:${port}/healthz/ready`).catch(() => undefined);
          return r?.status === 200 ? ((await r.json()) as { role: string }) : undefined;
        },
        90_000,
        'npm start to be ready',
      );
      assert.equal(ready.role, 'worker');
      assert.equal((await fetch(`http://127.0.0.1:${port}/v1/recipients`)).status, 404, 'a worker serves no API');
      assert.doesNotMatch(out, /npm (warn|WARN|notice)|EBADENGINE|ERR_PARSE_ARGS/, out);
    } finally {
      process.kill(-child.pid!, 'SIGTERM');
      await exited;
      rmSync(dataDir, { recursive: true, force: true });
    }
  });

  it('npm install prints no warnings on an older system Node (the EBADENGINE of every install)', () => {
    // --dry-run: what `npm start` and `npm test` run first (scripts/ensure-deps.js) on a fresh
    // clone, checked for engines like a real install, without changing node_modules.
    const r = spawnSync('npm', ['install', '--dry-run'], { cwd: root, env: userEnv({}), encoding: 'utf8', timeout: 120_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.doesNotMatch(r.stderr, /npm (warn|WARN|notice)|EBADENGINE/, r.stderr);
  });

  it('npx herald prints what the command prints and nothing from npm', () => {
    const r = spawnSync('npx', ['herald', '--version'], { cwd: root, env: userEnv({}), encoding: 'utf8', timeout: 60_000 });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /^\d+\.\d+\.\d+\n$/);
    assert.equal(r.stderr, '');
  });
});
