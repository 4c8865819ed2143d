// The PostgreSQL adapter's hot-path statements number their parameters in order: read top to
// bottom, each statement's parameters first appear as $1, $2, $3, … with none skipped, so the
// values array is built in the order the statement reads them.

import { it } from 'node:test';
import assert from 'node:assert/strict';
import { HOT_STATEMENTS } from '../../src/store/postgres.ts';

/** The parameter numbers of `text` in order of first appearance. */
function firstAppearances(text: string): number[] {
  const seen: number[] = [];
  for (const m of text.matchAll(/\$(\d+)/g)) {
    const n = Number(m[1]);
    if (!seen.includes(n)) seen.push(n);
  }
  return seen;
}

it('numbers the parameters of every hot-path statement in order of first appearance', () => {
  assert.ok(HOT_STATEMENTS.length >= 10);
  for (const st of HOT_STATEMENTS) {
    const order = firstAppearances(st.text);
    assert.deepEqual(order, order.map((_, i) => i + 1), `${st.name}: parameters appear as ${order.join(', ')}`);
  }
});

it('sees a statement numbered out of order', () => {
  assert.deepEqual(firstAppearances('UPDATE t SET a = $2 WHERE b = ANY($1)'), [2, 1]);
});
