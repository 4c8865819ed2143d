// Runs every test file under test/ with node's test runner.
// Usage: npm run test:run [-- <file or glob> …]

import { spawnSync } from 'node:child_process';

const patterns = process.argv.slice(2);
const args = [
  '--test',
  '--test-concurrency=2',
  '--test-timeout=300000',
  ...(process.env.CI ? ['--test-reporter=spec'] : []),
  ...(patterns.length ? patterns : ['test/**/*.test.ts']),
];
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
process.exit(r.status ?? 1);
