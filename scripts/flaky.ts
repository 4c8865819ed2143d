// Runs the test suite N times in a row while a CPU-heavy process runs beside it, and reports which
// tests failed in which runs, by file and name. A suite that is "never red by chance" passes every
// run; a test that fails in some runs and not others is flaky and is named here.
//
// Usage: node scripts/flaky.ts [--runs N] [--burners K] [-- <test files or globs for run-tests.ts>]
//   --runs N      how many runs (default 10)
//   --burners K   CPU-heavy processes beside the runs (default 1): each spins on SHA-256 forever
//
// Each run is `node scripts/run-tests.ts [files]` (the same runner as `npm test`, without the type
// check, which cannot be flaky). Its output goes to <tmp>/herald-flaky-<time>/run-<i>.log.
// Output: one line per run (passed/failed, duration), then every test that failed at least once
// with the runs it failed in, then the log directory. Exit code 0 when every run passed, 1 otherwise.

import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

const { values, positionals } = parseArgs({
  options: { runs: { type: 'string', default: '10' }, burners: { type: 'string', default: '1' } },
  allowPositionals: true,
  strict: true,
});
const runs = Number(values.runs);
const burners = Number(values.burners);
if (!Number.isInteger(runs) || runs < 1) throw new Error(`--runs must be a positive integer, got ${values.runs}`);
if (!Number.isInteger(burners) || burners < 0) throw new Error(`--burners must be a non-negative integer, got ${values.burners}`);

const logDir = join(tmpdir(), `herald-flaky-${new Date().toISOString().replace(/[:.]/g, '-')}`);
mkdirSync(logDir, { recursive: true });

/** A process that keeps one core busy until killed. */
function startBurner(): ChildProcess {
  const code = "const c = require('node:crypto'); const b = Buffer.alloc(1 << 16, 7); for (;;) c.createHash('sha256').update(b).digest();";
  return spawn(process.execPath, ['-e', code], { stdio: 'ignore' });
}

/**
 * The failed tests in a spec reporter output, each as "suite > … > test" (so a suite declared once
 * per store says which store failed). The spec tree prints "▶ <suite>" when a suite starts and
 * "✔|✖ <name> (<ms>ms)" when a test or suite ends, indented two spaces per level; a ✖ line that
 * closes the suite opened at its level is the suite's own verdict, any other is a failed test.
 * Falls back to node's closing "✖ failing tests:" list (names without their suites).
 */
function failedTests(output: string): string[] {
  const tail = output.indexOf('✖ failing tests:');
  const tree = (tail < 0 ? output : output.slice(0, tail)).split('\n');
  const stack: string[] = [];
  const failed: string[] = [];
  for (const line of tree) {
    const m = /^( *)(▶|✔|✖) (.*?)(?: \([\d.]+m?s\))?$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 2;
    const name = m[3]!;
    if (m[2] === '▶') {
      stack.length = depth;
      stack[depth] = name;
    } else if (stack.length > depth && stack[depth] === name) {
      stack.length = depth; // the suite's own verdict
    } else if (m[2] === '✖') {
      failed.push([...stack.slice(0, depth), name].join(' > '));
    }
  }
  if (failed.length > 0 || tail < 0) return failed;
  const lines = output.slice(tail).split('\n');
  for (let i = 0; i < lines.length; i++) {
    if (!/^test at /.test(lines[i]!.trim())) continue;
    const name = /^✖ (.*?)(?: \([\d.]+m?s\))?$/.exec((lines[i + 1] ?? '').trim());
    failed.push(name ? name[1]! : lines[i]!.trim());
  }
  return failed;
}

function runOnce(i: number): Promise<{ code: number | null; ms: number; failed: string[] }> {
  const started = Date.now();
  const child = spawn(process.execPath, ['scripts/run-tests.ts', ...positionals], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  return new Promise((resolve) => {
    child.on('close', (code) => {
      writeFileSync(join(logDir, `run-${i}.log`), out);
      const failed = failedTests(out);
      // A run that failed without naming a test (the runner or a service) still counts as failed.
      if (code !== 0 && failed.length === 0) failed.push(`(run ${i} failed without a failing test: see run-${i}.log)`);
      resolve({ code, ms: Date.now() - started, failed });
    });
  });
}

const burning = Array.from({ length: burners }, startBurner);
const stopBurners = () => {
  for (const b of burning) if (b.exitCode === null) b.kill('SIGKILL');
};
process.on('exit', stopBurners);
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));

const byTest = new Map<string, number[]>();
let failedRuns = 0;
console.log(`[flaky] ${runs} run(s) of run-tests.ts ${positionals.join(' ') || '(every test)'} with ${burners} CPU burner(s) beside; logs in ${logDir}`);
for (let i = 1; i <= runs; i++) {
  const r = await runOnce(i);
  if (r.code !== 0) failedRuns++;
  for (const t of r.failed) byTest.set(t, [...(byTest.get(t) ?? []), i]);
  console.log(`[flaky] run ${i}/${runs}: ${r.code === 0 ? 'passed' : `FAILED (${r.failed.length} test(s))`} in ${(r.ms / 1000).toFixed(1)} s`);
}
stopBurners();

if (byTest.size === 0) {
  console.log(`[flaky] every run passed (${runs}/${runs})`);
} else {
  console.log(`[flaky] ${failedRuns} of ${runs} run(s) failed; tests that failed:`);
  for (const [t, which] of [...byTest].sort((x, y) => y[1].length - x[1].length)) {
    console.log(`  ${which.length}/${runs}  ${t}  (run${which.length > 1 ? 's' : ''} ${which.join(', ')})`);
  }
}
console.log(`[flaky] logs: ${logDir}`);
process.exitCode = failedRuns === 0 ? 0 : 1;
