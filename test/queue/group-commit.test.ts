// GroupCommitter (src/queue/group-commit.ts): how submissions become batches, how many writes run
// at once, and what a failed write does.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { GroupCommitter } from '../../src/queue/group-commit.ts';

/** A write whose calls stay open until released, recording each batch. */
function gatedWrite() {
  const batches: number[][] = [];
  const open: { release: (fail?: Error) => void }[] = [];
  let running = 0;
  let maxRunning = 0;
  const write = (items: number[]) =>
    new Promise<string[]>((resolve, reject) => {
      batches.push(items);
      running++;
      maxRunning = Math.max(maxRunning, running);
      open.push({
        release: (fail) => {
          running--;
          if (fail) reject(fail);
          else resolve(items.map((i) => `done ${i}`));
        },
      });
    });
  const tick = () => new Promise((r) => setImmediate(r));
  return { write, batches, open, tick, maxRunning: () => maxRunning };
}

describe('GroupCommitter', () => {
  it('gathers what is submitted in one turn into one batch and resolves each item with its own result', async () => {
    const g = gatedWrite();
    const c = new GroupCommitter(g.write);
    const results = Promise.all([c.submit(1), c.submit(2), c.submit(3)]);
    await g.tick();
    assert.deepEqual(g.batches, [[1, 2, 3]]);
    g.open[0]!.release();
    assert.deepEqual(await results, ['done 1', 'done 2', 'done 3']);
  });

  it('with maxInFlight 1, items submitted during a write wait for it and form the next batch', async () => {
    const g = gatedWrite();
    const c = new GroupCommitter(g.write);
    const first = c.submit(1);
    await g.tick();
    const later = [c.submit(2), c.submit(3)];
    await g.tick();
    await g.tick();
    assert.deepEqual(g.batches, [[1]], 'nothing else is written while the first write runs');
    g.open[0]!.release();
    await first;
    await g.tick();
    assert.deepEqual(g.batches, [[1], [2, 3]]);
    g.open[1]!.release();
    assert.deepEqual(await Promise.all(later), ['done 2', 'done 3']);
  });

  it('with maxInFlight 2, a second batch is written while the first is running, and no third', async () => {
    const g = gatedWrite();
    const c = new GroupCommitter(g.write, { maxInFlight: 2 });
    const all = [c.submit(1)];
    await g.tick();
    all.push(c.submit(2));
    await g.tick();
    all.push(c.submit(3), c.submit(4));
    await g.tick();
    assert.deepEqual(g.batches, [[1], [2]]);
    g.open[1]!.release();
    await all[1];
    await g.tick();
    assert.deepEqual(g.batches, [[1], [2], [3, 4]]);
    g.open[0]!.release();
    g.open[2]!.release();
    assert.deepEqual(await Promise.all(all), ['done 1', 'done 2', 'done 3', 'done 4']);
    assert.equal(g.maxRunning(), 2);
  });

  it('flushes at maxBatch without waiting for the turn to end', async () => {
    const g = gatedWrite();
    const c = new GroupCommitter(g.write, { maxBatch: 2 });
    const all = [c.submit(1), c.submit(2), c.submit(3)];
    assert.deepEqual(g.batches, [[1, 2]]);
    g.open[0]!.release();
    await all[0];
    await g.tick();
    assert.deepEqual(g.batches, [[1, 2], [3]]);
    g.open[1]!.release();
    await Promise.all(all);
  });

  it('a failed write rejects its own batch only; drain waits for every write', async () => {
    const g = gatedWrite();
    const c = new GroupCommitter(g.write, { maxInFlight: 2 });
    const a = c.submit(1);
    await g.tick();
    const b = c.submit(2);
    await g.tick();
    let drained = false;
    const draining = c.drain().then(() => (drained = true));
    g.open[0]!.release(new Error('disk full'));
    await assert.rejects(a, /disk full/);
    await g.tick();
    assert.equal(drained, false, 'the second write is still running');
    g.open[1]!.release();
    assert.equal(await b, 'done 2');
    await draining;
    assert.equal(drained, true);
  });
});
