import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PROBLEMS, Problem } from '../src/errors.ts';

describe('problem codes', () => {
  it('every code in the registry is documented in docs/api.md with its status', () => {
    const doc = readFileSync(new URL('../docs/api.md', import.meta.url), 'utf8');
    for (const [code, { status }] of Object.entries(PROBLEMS)) {
      assert.ok(doc.includes(`| \`${code}\` | ${status} |`), `${code} (${status}) is not in the docs/api.md error table`);
    }
  });

  it('renders RFC 9457 problem details with the stable code', () => {
    const p = new Problem('validation_failed', 'body.title must be string', { errors: [{ path: 'body.title', message: 'must be string' }] });
    assert.deepEqual(p.toJSON('/v1/notifications'), {
      type: 'urn:herald:problem:validation_failed',
      title: 'The request is not valid',
      status: 422,
      code: 'validation_failed',
      detail: 'body.title must be string',
      instance: '/v1/notifications',
      errors: [{ path: 'body.title', message: 'must be string' }],
    });
  });
});
