#!/usr/bin/env node
// `herald` launcher. Herald's TypeScript runs natively on Node >= 24; on an older system
// Node this re-executes the CLI with the Node pinned in devDependencies (node@24).
// Either way the CLI runs with the flags and environment of runtime.js: on Node >= 24 this process
// replaces itself (execve, same PID) with one that has them, unless it already has.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';
import { missingFlags, runtimeEnv } from './runtime.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const main = join(root, 'src', 'cli', 'main.ts');
const major = Number(process.versions.node.split('.')[0]);
const flags = missingFlags(process.execArgv, process.env.NODE_OPTIONS);
const env = runtimeEnv(process.env);
if (major >= 24) {
  const envChanged = Object.keys(env).some((k) => env[k] !== process.env[k]);
  if ((flags.length > 0 || envChanged) && typeof process.execve === 'function' && process.platform !== 'win32') {
    process.execve(process.execPath, [process.execPath, ...process.execArgv, ...flags, fileURLToPath(import.meta.url), ...process.argv.slice(2)], env);
  }
  await import(main);
} else {
  const pinned = join(root, 'node_modules', '.bin', 'node');
  if (!existsSync(pinned)) {
    console.error('herald needs Node 24: run `npm install` in ' + root + ' first');
    process.exit(1);
  }
  const r = spawnSync(pinned, [...flags, main, ...process.argv.slice(2)], { stdio: 'inherit', env });
  process.exit(r.status ?? 1);
}
