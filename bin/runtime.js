// How a Herald server's Node process is started, in one place: the launcher (bin/herald.js, behind
// `npm start`, `npx herald serve` and the Docker image) applies it, and so do the benchmarks and
// tests that start a server as a child process, so that what they measure is the process users run.
// Plain JavaScript: the launcher imports it on whatever Node the machine has.
//
// Herald's work is one event loop (HTTP, deliveries) and, on SQLite, one writer thread. V8 and
// libuv are sized for that instead of for a large multi-threaded host:
//   --max-semi-space-size=8  each isolate's young generation stays within 2 x 8 MB. Node's default
//                            lets it grow to 2 x 32 MB during start-up, and an idle process keeps
//                            those pages. At 2 MB the idle RSS was the same as at 8 (142 MB, 2026-12-07)
//                            but every request cost more scavenges: accepts fell by a quarter to a
//                            third and bare Fastify under the same flag by as much (docs/benchmarks.md,
//                            "Throughput and the young generation"). 8 MB kept both.
//   --v8-pool-size=2         V8's background threads (concurrent marking, parallel scavenges,
//                            compilation): 2 instead of 4; Herald's heaps are small.
//   UV_THREADPOOL_SIZE=4     libuv's pool does Herald's DNS lookups of outgoing hosts (and the file
//                            reads of some dependencies); 4 lookups may wait on a slow resolver at
//                            once before others queue. Idle, its threads cost little memory.
//   MALLOC_ARENA_MAX=2       glibc's malloc gives each thread that allocates an arena of its own (V8's
//                            threads, libuv's, the writer thread); two arenas hold the same data in
//                            a few MB less RSS. Ignored by other C libraries.
//   NODE_COMPILE_CACHE       V8's compile cache, which on Node 24 also holds the TypeScript files with
//                            their types stripped: a process that finds its files there never loads
//                            the TypeScript stripper (about 17 MB of RSS per thread that loads it) and
//                            starts faster. The cache lives in the system's temporary directory, is
//                            keyed by file contents, and is written when a process exits (and once
//                            after start-up, see app.ts).
// What the operator set wins: a variable in the environment, a flag in NODE_OPTIONS or on the
// command line; NODE_DISABLE_COMPILE_CACHE=1 turns the cache off.

import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** V8 flags of a Herald server process. */
export const NODE_FLAGS = ['--max-semi-space-size=8', '--v8-pool-size=2'];

/** Environment defaults of a Herald server process. */
export const RUNTIME_ENV = {
  UV_THREADPOOL_SIZE: '4',
  MALLOC_ARENA_MAX: '2',
  NODE_COMPILE_CACHE: join(tmpdir(), 'node-compile-cache'),
};

const flagName = (flag) => flag.split('=')[0].replace(/_/g, '-');

/** NODE_FLAGS that neither `execArgv` nor `nodeOptions` (NODE_OPTIONS) sets already, in any value. */
export function missingFlags(execArgv, nodeOptions = '') {
  const given = new Set([...execArgv, ...nodeOptions.split(/\s+/).filter(Boolean)].map(flagName));
  return NODE_FLAGS.filter((f) => !given.has(flagName(f)));
}

/** `env` with RUNTIME_ENV's defaults for what it does not set. */
export function runtimeEnv(env) {
  const out = { ...env };
  for (const [k, v] of Object.entries(RUNTIME_ENV)) {
    if (k === 'NODE_COMPILE_CACHE' && env.NODE_DISABLE_COMPILE_CACHE) continue;
    if (out[k] === undefined || out[k] === '') out[k] = v;
  }
  return out;
}

/** The Node arguments and environment that start `script` (e.g. src/cli/main.ts) as a Herald server would be. */
export function serverCommand(script, args = [], env = process.env) {
  return { args: [...missingFlags([], env.NODE_OPTIONS ?? ''), script, ...args], env: runtimeEnv(env) };
}
