// The CLI never surprises: every command and subcommand explains itself with --help (with
// examples), a wrong command line gets one line saying what is wrong and the usage (exit code 2,
// no stack trace), and a command that needs an existing database does not create one in whatever
// folder it was run from.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { tempDir } from '../helpers/herald.ts';

const launcher = fileURLToPath(new URL('../../bin/herald.js', import.meta.url));

/** Runs `herald args` from `cwd` with no Herald settings in the environment. */
async function herald(args: string[], cwd?: string): Promise<{ code: number; stdout: string; stderr: string }> {
  const env = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', HERALD_LOG_LEVEL: 'silent' };
  try {
    const r = await promisify(execFile)(process.execPath, [launcher, ...args], { cwd, env, encoding: 'utf8', timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code: number; stdout: string; stderr: string };
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** Runs each of `argsList`, at most 4 at a time (each is a Node process). */
async function heraldEach(argsList: string[][], cwd?: string): Promise<{ args: string[]; r: Awaited<ReturnType<typeof herald>> }[]> {
  const out: { args: string[]; r: Awaited<ReturnType<typeof herald>> }[] = [];
  for (let i = 0; i < argsList.length; i += 4) {
    out.push(...(await Promise.all(argsList.slice(i, i + 4).map(async (args) => ({ args, r: await herald(args, cwd) })))));
  }
  return out;
}

const LEAVES = ['serve', 'migrate', 'keys create', 'keys list', 'users create', 'send', 'config', 'backup', 'restore'];
const STACK = /^\s+at |Error:|ERR_/m;

describe('herald --help', () => {
  it('lists exactly the commands this suite checks', async () => {
    const r = await herald(['--help']);
    assert.equal(r.code, 0);
    const listed = /\nCommands:\n([\s\S]*?)\n\n/.exec(r.stdout)?.[1]?.split('\n').map((l) => l.trim().split(/\s{2,}/)[0]);
    assert.deepEqual(listed, LEAVES);
    const bare = await herald([]);
    assert.equal(bare.code, 2, 'no command: the overview, as a usage error');
    assert.match(bare.stderr, /^Usage:$/m);
  });

  it('explains every command and subcommand, with examples, on stdout, exit code 0', async () => {
    const runs = await heraldEach([...LEAVES, 'keys', 'users'].flatMap((c) => [[...c.split(' '), '--help'], [...c.split(' '), '-h'], ['help', ...c.split(' ')]]));
    for (const { args, r } of runs) {
      const what = `herald ${args.join(' ')}`;
      assert.equal(r.code, 0, `${what}: ${r.stderr}`);
      assert.equal(r.stderr, '', what);
      const command = args.filter((a) => !['--help', '-h', 'help'].includes(a)).join(' ');
      assert.match(r.stdout, new RegExp(`^herald ${command}: `), what);
      assert.match(r.stdout, new RegExp(`^Usage:\\n  herald ${command}`, 'm'), what);
      if (command !== 'keys' && command !== 'users') assert.match(r.stdout, /^Examples:\n {2}\S/m, what);
    }
  });

  it('answers an unknown option on any command with one line and the usage, exit code 2, no stack trace', async () => {
    const runs = await heraldEach(LEAVES.map((c) => [...c.split(' '), '--no-such-option']));
    for (const { args, r } of runs) {
      const c = args.slice(0, -1).join(' ');
      assert.equal(r.code, 2, `${c}: ${r.stderr}`);
      const [first, blank, ...rest] = r.stderr.split('\n');
      assert.equal(first, 'herald: unknown option "--no-such-option"', c);
      assert.equal(blank, '');
      assert.match(rest.join('\n'), new RegExp(`^Usage:\\n  herald ${c}`), c);
      assert.doesNotMatch(r.stderr, STACK, c);
      assert.equal(r.stdout, '');
    }
    const others = await heraldEach([['frobnicate'], ['keys'], ['keys', 'delete'], ['serve', 'stray'], ['send', '--to'], ['serve', '--role', 'chef']]);
    for (const { args, r } of others) {
      assert.equal(r.code, 2, args.join(' '));
      assert.match(r.stderr, /^herald: .+\n\n(Usage:|herald )/, args.join(' '));
      assert.doesNotMatch(r.stderr, STACK, args.join(' '));
    }
  });
});

describe('commands that need an existing database', () => {
  it('refuse a folder without one, naming where they looked, and create nothing there', async () => {
    const cwd = tempDir();
    try {
      const runs = await heraldEach([['keys', 'list'], ['keys', 'create', '--scope', 'send', '--name', 'x'], ['backup', '--to', join(cwd, 'b')]], cwd);
      for (const { args, r } of runs) {
        assert.equal(r.code, 1, `${args.join(' ')}: ${r.stderr}`);
        assert.equal(r.stderr, `herald: the data directory ${join(cwd, 'data')} does not exist; run this where Herald keeps its data, set HERALD_DATA_DIR to that directory, or create it with \`herald migrate\`\n`);
      }
      assert.deepEqual(readdirSync(cwd), [], 'no data directory, database or backup was created');
      const migrated = await herald(['migrate'], cwd);
      assert.equal(migrated.code, 0, migrated.stderr);
      assert.ok(existsSync(join(cwd, 'data', 'herald.db')), 'migrate creates on purpose');
      const listed = await herald(['keys', 'list'], cwd);
      assert.equal(listed.code, 0, listed.stderr);
    } finally {
      rmSync(cwd, { recursive: true, force: true });
    }
  });
});
