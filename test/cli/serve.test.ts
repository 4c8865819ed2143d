// `herald serve` as a real process: what it tells the person who started it, and what it refuses.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { tempDir } from '../helpers/herald.ts';
import { spawnHerald } from '../helpers/process.ts';

describe('herald serve', () => {
  it('warns loudly about a well-known admin key, and not about a generated one', async () => {
    const dataDir = tempDir();
    try {
      const weak = await spawnHerald({ dataDir, key: 'hk_walkthrough_admin_key' });
      weak.kill('SIGTERM');
      await weak.exited();
      assert.match(weak.output(), /^herald: WARNING: HERALD_ADMIN_KEY is a well-known or placeholder value\.$/m);
      assert.ok(weak.logs().some((l) => l.level === 40 && l.variable === 'HERALD_ADMIN_KEY'), 'and a warning in the log');

      const strong = await spawnHerald({ dataDir });
      strong.kill('SIGTERM');
      await strong.exited();
      assert.doesNotMatch(strong.output(), /WARNING/);
    } finally {
      rmSync(dataDir, { recursive: true, force: true });
    }
  });
});
