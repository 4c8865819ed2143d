// pgArray (src/store/postgres.ts): the array literals the PostgreSQL hot path sends to unnest().
// The literals are also parsed by PostgreSQL itself in the conformance suite; these pin the edges.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pgArray } from '../../src/store/postgres.ts';

describe('pgArray', () => {
  it('quotes strings, escapes " and \\, and writes numbers and NULLs as they are', () => {
    assert.equal(pgArray(['a', 'say "hi"', 'back\\slash', '', 'comma,brace}']), '{"a","say \\"hi\\"","back\\\\slash","","comma,brace}"}');
    assert.equal(pgArray([1, 2.5, 10n, null, undefined]), '{1,2.5,10,NULL,NULL}');
  });

  it('keeps leading and trailing NULLs in place', () => {
    assert.equal(pgArray([null, null, 'x', null]), '{NULL,NULL,"x",NULL}');
    assert.equal(pgArray([undefined, 7]), '{NULL,7}');
  });

  it('sends an array of nothing but NULLs, or of nothing, as a NULL parameter', () => {
    assert.equal(pgArray([null, undefined, null]), null);
    assert.equal(pgArray([]), null);
  });

  it('reads each row through the getter when given one', () => {
    const rows = [{ id: 'a', n: null }, { id: 'b"', n: 3 }];
    assert.equal(pgArray(rows, (r) => r.id), '{"a","b\\""}');
    assert.equal(pgArray(rows, (r) => r.n), '{NULL,3}');
    assert.equal(pgArray(rows, () => null), null);
  });

  it('refuses values it cannot encode', () => {
    assert.throws(() => pgArray([null, { a: 1 }]), TypeError);
    assert.throws(() => pgArray([true]), TypeError);
  });
});
