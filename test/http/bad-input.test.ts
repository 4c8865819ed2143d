// Bad input never gets past the API: every case below is answered with a 4xx
// application/problem+json carrying a stable `code`, the server stays healthy afterwards, and no
// rejected send leaves anything behind in the store. On each store: SQLite in a temporary data dir,
// and PostgreSQL with DATABASE_URL on a fresh schema (a store can refuse what the other keeps).

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { request, startHeraldOn, type ApiResponse, type TestHerald } from '../helpers/herald.ts';
import { startReceiver, type Receiver } from '../helpers/receiver.ts';

type Who = 'admin' | 'read' | 'none' | { authorization: string };

interface Case {
  name: string;
  method?: string;
  path?: string;
  /** A string is sent verbatim (give the content type); anything else as JSON. */
  body?: unknown;
  headers?: Record<string, string>;
  who?: Who;
  /** Which server answers: the default body limit, or HERALD_BODY_LIMIT=2048. */
  server?: 'default' | 'small';
  status: number;
  code: string;
  /** validation_failed: each of these paths must appear in errors[]. */
  paths?: string[];
  check?: (r: ApiResponse) => void;
}

const JSON_CT = { 'content-type': 'application/json' };
const SEND = '/v1/notifications';
const deepArray = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);
const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64url');

const cases: Case[] = [
  // --- not JSON / not an object
  { name: 'truncated JSON', body: '{"to": "alice", "title": ', headers: JSON_CT, status: 400, code: 'malformed_json' },
  { name: 'JSON with trailing garbage', body: '{"to":"alice","title":"x"} trailing', headers: JSON_CT, status: 400, code: 'malformed_json' },
  { name: 'single-quoted JSON', body: "{'to':'alice','title':'x'}", headers: JSON_CT, status: 400, code: 'malformed_json' },
  { name: 'empty body with a JSON content type', body: '', headers: JSON_CT, status: 400, code: 'malformed_json' },
  { name: 'whitespace body with a JSON content type', body: '  \n ', headers: JSON_CT, status: 400, code: 'malformed_json' },
  { name: 'JSON null', body: 'null', headers: JSON_CT, status: 422, code: 'validation_failed', paths: ['body'] },
  { name: 'JSON array', body: '[{"to":"alice","title":"x"}]', headers: JSON_CT, status: 422, code: 'validation_failed', paths: ['body'] },
  { name: 'JSON string', body: '"hello"', headers: JSON_CT, status: 422, code: 'validation_failed', paths: ['body'] },
  { name: 'no body at all', body: undefined, status: 422, code: 'validation_failed', paths: ['body'] },

  // --- content types
  { name: 'text/plain', body: '{"to":"alice","title":"x"}', headers: { 'content-type': 'text/plain' }, status: 415, code: 'unsupported_media_type' },
  { name: 'form-urlencoded', body: 'to=alice&title=x', headers: { 'content-type': 'application/x-www-form-urlencoded' }, status: 415, code: 'unsupported_media_type' },
  { name: 'application/xml', body: '<to>alice</to>', headers: { 'content-type': 'application/xml' }, status: 415, code: 'unsupported_media_type' },
  { name: 'gzip Content-Encoding (bodies are not decompressed)', body: '{"to":"alice","title":"x"}', headers: { ...JSON_CT, 'content-encoding': 'gzip' }, status: 415, code: 'unsupported_media_type' },
  { name: 'merge-patch+json on a POST', body: '{"to":"alice","title":"x"}', headers: { 'content-type': 'application/merge-patch+json' }, status: 415, code: 'unsupported_media_type' },
  { name: 'multipart', body: '--x\r\n\r\n--x--', headers: { 'content-type': 'multipart/form-data; boundary=x' }, status: 415, code: 'unsupported_media_type' },

  // --- size
  { name: 'body over HERALD_BODY_LIMIT=2048', server: 'small', body: JSON.stringify({ to: 'alice', body: 'x'.repeat(4000) }), headers: JSON_CT, status: 413, code: 'payload_too_large' },
  { name: 'body over the default 256 KB limit (300 KB)', body: JSON.stringify({ to: 'alice', body: 'y'.repeat(300 * 1024) }), headers: JSON_CT, status: 413, code: 'payload_too_large' },
  { name: 'body field over 100 000 characters (within the byte limit)', body: { to: 'alice', body: 'z'.repeat(100_001) }, status: 422, code: 'validation_failed', paths: ['body.body'] },

  // --- schema: wrong types, unknown fields, bounds
  {
    name: 'wrong type in every field',
    body: { to: 5, kind: 7, title: 3, body: [], channels: 'webhook', metadata: 'x' },
    status: 422,
    code: 'validation_failed',
    paths: ['body.to', 'body.kind', 'body.title', 'body.body', 'body.channels', 'body.metadata'],
  },
  { name: 'missing to', body: { title: 'x' }, status: 422, code: 'validation_failed', paths: ['body.to'] },
  { name: 'to: empty array', body: { to: [], title: 'x' }, status: 422, code: 'validation_failed', paths: ['body.to'] },
  { name: 'to: array of numbers', body: { to: [1, 2], title: 'x' }, status: 422, code: 'validation_failed', paths: ['body.to.0', 'body.to.1'] },
  { name: 'to: null', body: { to: null, title: 'x' }, status: 422, code: 'validation_failed', paths: ['body.to'] },
  { name: 'title: null', body: { to: 'alice', title: null }, status: 422, code: 'validation_failed', paths: ['body.title'] },
  { name: 'title: boolean', body: { to: 'alice', title: true }, status: 422, code: 'validation_failed', paths: ['body.title'] },
  { name: 'kind not matching its pattern', body: { to: 'alice', title: 'x', kind: 'Has Spaces' }, status: 422, code: 'validation_failed', paths: ['body.kind'] },
  { name: 'title over 1000 characters', body: { to: 'alice', title: 't'.repeat(1001) }, status: 422, code: 'validation_failed', paths: ['body.title'] },
  { name: 'unknown channel', body: { to: 'alice', title: 'x', channels: ['fax'] }, status: 422, code: 'validation_failed', paths: ['body.channels.0'] },
  { name: 'duplicate channels', body: { to: 'alice', title: 'x', channels: ['webhook', 'webhook'] }, status: 422, code: 'validation_failed', paths: ['body.channels'] },
  { name: 'empty channels', body: { to: 'alice', title: 'x', channels: [] }, status: 422, code: 'validation_failed', paths: ['body.channels'] },
  { name: 'metadata key over 100 characters', body: { to: 'alice', title: 'x', metadata: { ['k'.repeat(101)]: 1 } }, status: 422, code: 'validation_failed', paths: ['body.metadata'] },
  { name: 'unknown fields', body: { to: 'alice', title: 'x', extra: 1, priority: 'high' }, status: 422, code: 'validation_failed', paths: ['body.extra', 'body.priority'] },
  {
    name: 'to with 1001 recipient ids',
    body: { to: Array.from({ length: 1001 }, (_, i) => `r${i}`), title: 'x' },
    status: 422,
    code: 'validation_failed',
    paths: ['body.to'],
  },
  { name: 'data nested 100 levels deep', body: `{"to":"alice","title":"x","data":${deepArray(100)}}`, headers: JSON_CT, status: 422, code: 'validation_failed', paths: ['body.data'] },
  {
    name: 'data nested 50 000 levels deep, with an Idempotency-Key',
    body: `{"to":"alice","title":"x","data":${deepArray(50_000)}}`,
    headers: { ...JSON_CT, 'idempotency-key': 'deep-1' },
    status: 422,
    code: 'validation_failed',
    paths: ['body.data'],
  },
  { name: 'metadata nested 5 000 levels deep', body: `{"to":"alice","title":"x","metadata":{"k":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}}`, headers: JSON_CT, status: 422, code: 'validation_failed', paths: ['body.metadata'] },

  // --- what the schema cannot see
  { name: 'empty title and body', body: { to: 'alice', title: '', body: '' }, status: 422, code: 'empty_content' },
  { name: 'whitespace-only title and body', body: { to: 'alice', title: '  ', body: '\n\t ' }, status: 422, code: 'empty_content' },
  { name: 'neither title nor body', body: { to: 'alice', data: { x: 1 } }, status: 422, code: 'empty_content' },
  {
    name: 'unknown recipients are listed',
    body: { to: ['alice', 'ghost-1', 'ghost-2'], title: 'x' },
    status: 422,
    code: 'unknown_recipients',
    check: (r) => assert.deepEqual(r.body.recipients, ['ghost-1', 'ghost-2']),
  },
  { name: 'recipient with no channel at all', body: { to: 'bob', title: 'x' }, status: 422, code: 'no_channel', check: (r) => assert.deepEqual(r.body.recipients, ['bob']) },
  { name: 'one of several recipients unreachable', body: { to: ['alice', 'bob'], title: 'x' }, status: 422, code: 'no_channel', check: (r) => assert.deepEqual(r.body.recipients, ['bob']) },
  {
    name: 'requested channel not configured (email without SMTP)',
    body: { to: 'alice', title: 'x', channels: ['email'] },
    status: 422,
    code: 'no_channel',
    check: (r) => assert.deepEqual(r.body.recipients, ['alice']),
  },

  // --- auth
  { name: 'no Authorization header', who: 'none', body: { to: 'alice', title: 'x' }, status: 401, code: 'unauthorized' },
  { name: 'Basic instead of Bearer', who: { authorization: 'Basic YWxpY2U6c2VjcmV0' }, body: { to: 'alice', title: 'x' }, status: 401, code: 'unauthorized' },
  { name: 'Bearer without a key', who: { authorization: 'Bearer' }, body: { to: 'alice', title: 'x' }, status: 401, code: 'unauthorized' },
  { name: 'Bearer with two tokens', who: { authorization: 'Bearer a b' }, body: { to: 'alice', title: 'x' }, status: 401, code: 'unauthorized' },
  { name: 'wrong key', who: { authorization: 'Bearer hk_this_key_does_not_exist' }, body: { to: 'alice', title: 'x' }, status: 401, code: 'unauthorized' },
  { name: 'very long key', who: { authorization: `Bearer hk_${'x'.repeat(5000)}` }, body: { to: 'alice', title: 'x' }, status: 401, code: 'unauthorized' },
  { name: 'wrong key on a read route', method: 'GET', path: SEND, who: { authorization: 'Bearer nope' }, status: 401, code: 'unauthorized' },
  { name: 'read key cannot send', who: 'read', body: { to: 'alice', title: 'x' }, status: 403, code: 'forbidden' },
  { name: 'read key cannot write recipients', who: 'read', method: 'PUT', path: '/v1/recipients/mallory', body: { name: 'M' }, status: 403, code: 'forbidden' },
  { name: 'read key cannot delete recipients', who: 'read', method: 'DELETE', path: '/v1/recipients/alice', status: 403, code: 'forbidden' },
  { name: 'read key cannot create keys', who: 'read', method: 'POST', path: '/v1/keys', body: { name: 'escalate', scopes: ['admin'] }, status: 403, code: 'forbidden' },

  // --- hostile strings
  { name: 'top-level __proto__ key', body: '{"to":"alice","title":"x","__proto__":{"isAdmin":true}}', headers: JSON_CT, status: 422, code: 'forbidden_property', paths: ['body.__proto__'] },
  { name: '__proto__ inside data', body: '{"to":"alice","title":"x","data":{"a":[{"__proto__":{"polluted":1}}]}}', headers: JSON_CT, status: 422, code: 'forbidden_property', paths: ['body.data.a.0.__proto__'] },
  { name: '__proto__ written with escapes', body: '{"to":"alice","title":"x","data":{"\\u005f_proto__":{"polluted":1}}}', headers: JSON_CT, status: 422, code: 'forbidden_property', paths: ['body.data.__proto__'] },
  { name: 'constructor.prototype inside metadata', body: '{"to":"alice","title":"x","metadata":{"constructor":{"prototype":{"polluted":1}}}}', headers: JSON_CT, status: 422, code: 'forbidden_property', paths: ['body.metadata.constructor.prototype'] },
  { name: '__proto__ in a recipient', method: 'PUT', path: '/v1/recipients/mallory', body: '{"name":"M","__proto__":{"isAdmin":true}}', headers: JSON_CT, status: 422, code: 'forbidden_property', paths: ['body.__proto__'] },
  { name: '__proto__ in a preferences patch', method: 'PATCH', path: '/v1/recipients/alice/preferences', body: '{"kinds":{"__proto__":{"allowed":false}}}', headers: { 'content-type': 'application/merge-patch+json' }, status: 422, code: 'forbidden_property', paths: ['body.kinds.__proto__'] },
  { name: '__proto__ in a body that is also malformed', body: '{"to":"alice","__proto__":{}', headers: JSON_CT, status: 400, code: 'malformed_json' },
  { name: 'recipient id over 128 characters', body: { to: 'a'.repeat(129), title: 'x' }, status: 422, code: 'validation_failed', paths: ['body.to'] },
  { name: 'recipient id of 10 000 characters', body: { to: 'a'.repeat(10_000), title: 'x' }, status: 422, code: 'validation_failed', paths: ['body.to'] },
  { name: 'recipient id with a NUL byte', body: { to: 'alice\u0000', title: 'x' }, status: 422, code: 'validation_failed', paths: ['body.to'] },
  { name: 'recipient id in unicode', body: { to: ['ålice', '😀'], title: 'x' }, status: 422, code: 'validation_failed', paths: ['body.to.0', 'body.to.1'] },
  { name: 'SQL metacharacters in a recipient id', body: { to: ["alice' OR '1'='1", 'x;DROP TABLE notifications;--'], title: 'x' }, status: 422, code: 'validation_failed', paths: ['body.to.0', 'body.to.1'] },
  { name: 'SQL metacharacters in a notification id', method: 'GET', path: `${SEND}/${encodeURIComponent("ntf_x' OR '1'='1")}`, status: 404, code: 'not_found' },
  { name: 'SQL metacharacters in recipient=', method: 'GET', path: `${SEND}?recipient=${encodeURIComponent("a' OR 1=1 --")}`, status: 422, code: 'validation_failed', paths: ['querystring.recipient'] },
  { name: 'SQL metacharacters in status=', method: 'GET', path: `${SEND}?status=${encodeURIComponent("sent' OR '1'='1")}`, status: 422, code: 'validation_failed', paths: ['querystring.status'] },
  { name: 'recipient path id over 128 characters', method: 'GET', path: `/v1/recipients/${'a'.repeat(200)}`, status: 422, code: 'validation_failed', paths: ['params.id'] },
  { name: 'recipient path id of 2 000 characters', method: 'GET', path: `/v1/recipients/${'a'.repeat(2000)}`, status: 414, code: 'uri_too_long' },
  { name: 'notification path id over 64 characters', method: 'GET', path: `${SEND}/${'n'.repeat(65)}`, status: 422, code: 'validation_failed', paths: ['params.id'] },
  { name: 'unicode recipient path id', method: 'GET', path: `/v1/recipients/${encodeURIComponent('ålice😀')}`, status: 422, code: 'validation_failed', paths: ['params.id'] },
  { name: 'broken percent-encoding in the path', method: 'GET', path: '/v1/recipients/%E0%A4%A', status: 400, code: 'malformed_request' },
  { name: 'Idempotency-Key over 255 characters', body: { to: 'alice', title: 'x' }, headers: { 'idempotency-key': 'k'.repeat(256) }, status: 422, code: 'validation_failed', paths: ['headers.idempotency-key'] },
  { name: 'Idempotency-Key with a space', body: { to: 'alice', title: 'x' }, headers: { 'idempotency-key': 'a b' }, status: 422, code: 'validation_failed', paths: ['headers.idempotency-key'] },

  // --- listing: cursors and query parameters
  { name: 'cursor that is not base64url', method: 'GET', path: `${SEND}?cursor=${encodeURIComponent('not a cursor!')}`, status: 400, code: 'invalid_cursor' },
  { name: 'cursor with SQL in it', method: 'GET', path: `${SEND}?cursor=${encodeURIComponent("' OR 1=1 --")}`, status: 400, code: 'invalid_cursor' },
  { name: 'cursor of the right shape with a bad id', method: 'GET', path: `${SEND}?cursor=${b64('c1:not-an-id')}`, status: 400, code: 'invalid_cursor' },
  { name: 'cursor of another version', method: 'GET', path: `${SEND}?cursor=${b64('c2:ntf_01M80SGJJ90MBTNVTV0KVD1QYY')}`, status: 400, code: 'invalid_cursor' },
  { name: 'cursor with SQL after a valid prefix', method: 'GET', path: `${SEND}?cursor=${b64("c1:ntf_01M80SGJJ90MBTNVTV0KVD1QYY' OR '1'='1")}`, status: 400, code: 'invalid_cursor' },
  { name: 'cursor over 300 characters', method: 'GET', path: `${SEND}?cursor=${'a'.repeat(301)}`, status: 422, code: 'validation_failed', paths: ['querystring.cursor'] },
  { name: 'limit=0', method: 'GET', path: `${SEND}?limit=0`, status: 422, code: 'validation_failed', paths: ['querystring.limit'] },
  { name: 'limit=-1', method: 'GET', path: `${SEND}?limit=-1`, status: 422, code: 'validation_failed', paths: ['querystring.limit'] },
  { name: 'limit=201', method: 'GET', path: `${SEND}?limit=201`, status: 422, code: 'validation_failed', paths: ['querystring.limit'] },
  { name: 'limit=abc', method: 'GET', path: `${SEND}?limit=abc`, status: 422, code: 'validation_failed', paths: ['querystring.limit'] },
  { name: 'limit=1.5', method: 'GET', path: `${SEND}?limit=1.5`, status: 422, code: 'validation_failed', paths: ['querystring.limit'] },
  { name: 'limit given twice', method: 'GET', path: `${SEND}?limit=1&limit=2`, status: 422, code: 'validation_failed', paths: ['querystring.limit'] },
  { name: 'status=bogus', method: 'GET', path: `${SEND}?status=bogus`, status: 422, code: 'validation_failed', paths: ['querystring.status'] },
  { name: 'unknown query parameter', method: 'GET', path: `${SEND}?offset=10`, status: 422, code: 'validation_failed', paths: ['querystring.offset'] },

  // --- routes and methods
  { name: 'unknown route under /v1', method: 'GET', path: '/v1/nothing-here', status: 404, code: 'not_found' },
  { name: 'unknown route outside /v1', method: 'GET', path: '/admin.php', status: 404, code: 'not_found' },
  { name: 'misspelt resource', method: 'POST', path: '/v1/notification', body: { to: 'alice', title: 'x' }, status: 404, code: 'not_found' },
  { name: 'unknown notification id', method: 'GET', path: `${SEND}/ntf_01M80SGJJ90MBTNVTV0KVD1QYY`, status: 404, code: 'not_found' },
  { name: 'unknown recipient', method: 'GET', path: '/v1/recipients/nobody', status: 404, code: 'not_found' },
  { name: 'POST on the home page', method: 'POST', path: '/', body: { topic: 'x' }, who: 'none', status: 405, code: 'method_not_allowed', check: (r) => assert.equal(r.headers.get('allow'), 'GET, HEAD') },
  { name: 'PATCH on notifications', method: 'PATCH', path: SEND, body: {}, status: 405, code: 'method_not_allowed', check: (r) => assert.equal(r.headers.get('allow'), 'GET, HEAD, POST') },
  { name: 'DELETE on notifications', method: 'DELETE', path: SEND, status: 405, code: 'method_not_allowed', check: (r) => assert.equal(r.headers.get('allow'), 'GET, HEAD, POST') },
  { name: 'PUT on a notification', method: 'PUT', path: `${SEND}/ntf_x`, body: {}, status: 405, code: 'method_not_allowed', check: (r) => assert.equal(r.headers.get('allow'), 'DELETE, GET, HEAD') },
  { name: 'POST on a recipient', method: 'POST', path: '/v1/recipients/alice', body: {}, status: 405, code: 'method_not_allowed', check: (r) => assert.equal(r.headers.get('allow'), 'DELETE, GET, HEAD, PUT') },

  // --- recipients
  { name: 'time zone that does not exist', method: 'PUT', path: '/v1/recipients/rc', body: { timezone: 'Mars/Olympus_Mons' }, status: 422, code: 'validation_failed', paths: ['body.timezone'] },
  { name: 'locale that is not BCP 47', method: 'PUT', path: '/v1/recipients/rc', body: { locale: 'en_US!!' }, status: 422, code: 'validation_failed', paths: ['body.locale'] },
  { name: 'ftp webhook URL', method: 'PUT', path: '/v1/recipients/rc', body: { webhook: { url: 'ftp://example.com/hook' } }, status: 422, code: 'validation_failed', paths: ['body.webhook.url'] },
  { name: 'javascript: webhook URL', method: 'PUT', path: '/v1/recipients/rc', body: { webhook: { url: 'javascript:alert(1)' } }, status: 422, code: 'validation_failed', paths: ['body.webhook.url'] },
  { name: 'file: webhook URL', method: 'PUT', path: '/v1/recipients/rc', body: { webhook: { url: 'file:///etc/passwd' } }, status: 422, code: 'validation_failed', paths: ['body.webhook.url'] },
  { name: 'webhook URL that is not a URL', method: 'PUT', path: '/v1/recipients/rc', body: { webhook: { url: 'not a url' } }, status: 422, code: 'validation_failed', paths: ['body.webhook.url'] },
  { name: 'webhook URL with credentials', method: 'PUT', path: '/v1/recipients/rc', body: { webhook: { url: 'https://user:pass@example.com/hook' } }, status: 422, code: 'validation_failed', paths: ['body.webhook.url'] },
  { name: 'webhook without a URL', method: 'PUT', path: '/v1/recipients/rc', body: { webhook: {} }, status: 422, code: 'validation_failed', paths: ['body.webhook.url'] },
  { name: 'malformed whsec secret', method: 'PUT', path: '/v1/recipients/rc', body: { webhook: { url: 'https://example.com/h', secret: 'whsec_!!!not-base64' } }, status: 422, code: 'validation_failed', paths: ['body.webhook.secret'] },
  { name: 'secret without the whsec_ prefix', method: 'PUT', path: '/v1/recipients/rc', body: { webhook: { url: 'https://example.com/h', secret: 'c2VjcmV0c2VjcmV0c2VjcmV0c2VjcmV0' } }, status: 422, code: 'validation_failed', paths: ['body.webhook.secret'] },
  // --- settings: operator_webhook
  { name: 'operator webhook: ftp URL', method: 'PUT', path: '/v1/settings', body: { operator_webhook: { url: 'ftp://example.com/ops' } }, status: 422, code: 'validation_failed', paths: ['body.operator_webhook.url'] },
  { name: 'operator webhook: not a URL', method: 'PUT', path: '/v1/settings', body: { operator_webhook: { url: 'not a url' } }, status: 422, code: 'validation_failed', paths: ['body.operator_webhook.url'] },
  { name: 'operator webhook: URL with credentials', method: 'PUT', path: '/v1/settings', body: { operator_webhook: { url: 'https://u:p@example.com/ops' } }, status: 422, code: 'validation_failed', paths: ['body.operator_webhook.url'] },
  { name: 'operator webhook: no URL', method: 'PUT', path: '/v1/settings', body: { operator_webhook: { secret: 'whsec_' + 'A'.repeat(32) } }, status: 422, code: 'validation_failed', paths: ['body.operator_webhook.url'] },
  { name: 'operator webhook: malformed secret', method: 'PUT', path: '/v1/settings', body: { operator_webhook: { url: 'https://example.com/ops', secret: 'whsec_!!!' } }, status: 422, code: 'validation_failed', paths: ['body.operator_webhook.secret'] },
  { name: 'operator webhook: masked secret sent back', method: 'PUT', path: '/v1/settings', body: { operator_webhook: { url: 'https://example.com/ops', secret: 'whsec_abcd…' } }, status: 422, code: 'validation_failed', paths: ['body.operator_webhook.secret'] },
  { name: 'operator webhook: a string', method: 'PUT', path: '/v1/settings', body: { operator_webhook: 'https://example.com/ops' }, status: 422, code: 'validation_failed', paths: ['body.operator_webhook'] },
  { name: 'operator webhook: unknown field', method: 'PUT', path: '/v1/settings', body: { operator_webhook: { url: 'https://example.com/ops', events: ['all'] } }, status: 422, code: 'validation_failed', paths: ['body.operator_webhook'] },
  { name: 'read key cannot set the operator webhook', who: 'read', method: 'PUT', path: '/v1/settings', body: { operator_webhook: { url: 'https://example.com/ops' } }, status: 403, code: 'forbidden' },
  // --- real time
  { name: 'realtime settings: overlap without rotate_secret', method: 'PUT', path: '/v1/realtime/settings', body: { overlap: '1h' }, status: 422, code: 'validation_failed', paths: ['body.overlap'] },
  { name: 'realtime settings: overlap not a duration', method: 'PUT', path: '/v1/realtime/settings', body: { rotate_secret: true, overlap: 'soon' }, status: 422, code: 'validation_failed', paths: ['body.overlap'] },
  { name: 'realtime settings: public key not PEM', method: 'PUT', path: '/v1/realtime/settings', body: { public_keys: [{ kid: 'k', alg: 'ES256', pem: 'nope' }] }, status: 422, code: 'validation_failed', paths: ['body.public_keys'] },
  { name: 'realtime settings: public key of another alg', method: 'PUT', path: '/v1/realtime/settings', body: { public_keys: [{ kid: 'k', alg: 'HS256', pem: 'x' }] }, status: 422, code: 'validation_failed' },
  { name: 'realtime settings: duplicate kid', method: 'PUT', path: '/v1/realtime/settings', body: { public_keys: [{ kid: 'k', alg: 'ES256', pem: 'x' }, { kid: 'k', alg: 'ES256', pem: 'x' }] }, status: 422, code: 'validation_failed', paths: ['body.public_keys.1.kid'] },
  { name: 'realtime settings: JWKS URL not http', method: 'PUT', path: '/v1/realtime/settings', body: { jwks_url: 'file:///etc/passwd' }, status: 422, code: 'validation_failed', paths: ['body.jwks_url'] },
  { name: 'realtime settings: read key', who: 'read', method: 'GET', path: '/v1/realtime/settings', status: 403, code: 'forbidden' },
  { name: 'realtime token: no recipient', method: 'POST', path: '/v1/realtime/tokens', body: {}, status: 422, code: 'validation_failed' },
  { name: 'realtime token: ttl too long', method: 'POST', path: '/v1/realtime/tokens', body: { recipient: 'a', ttl: 99_999_999 }, status: 422, code: 'validation_failed' },
  { name: 'realtime token: bad room name', method: 'POST', path: '/v1/realtime/tokens', body: { recipient: 'a', rooms: ['a/b'] }, status: 422, code: 'validation_failed' },
  { name: 'realtime token: read key', who: 'read', method: 'POST', path: '/v1/realtime/tokens', body: { recipient: 'a' }, status: 403, code: 'forbidden' },
  { name: 'realtime publish: not a room', method: 'POST', path: '/v1/realtime/publish', body: { channel: 'inbox', data: {} }, status: 422, code: 'validation_failed' },
  { name: 'realtime publish: no data', method: 'POST', path: '/v1/realtime/publish', body: { channel: 'room:a' }, status: 422, code: 'validation_failed' },
  { name: 'recipient inbox: unknown status', method: 'GET', path: '/v1/recipients/rc/inbox?status=bogus', status: 422, code: 'validation_failed' },
  { name: 'recipient inbox: foreign cursor', method: 'GET', path: '/v1/recipients/rc/inbox?cursor=nope', status: 400, code: 'invalid_cursor' },
  { name: 'me inbox: an API key is not a connection token', method: 'GET', path: '/v1/me/inbox', status: 401, code: 'unauthorized' },
  { name: 'me inbox read: an API key is not a connection token', method: 'POST', path: '/v1/me/inbox/inb_x/read', status: 401, code: 'unauthorized' },
  { name: 'realtime gateway: no upgrade', method: 'GET', path: '/v1/realtime', status: 426, code: 'upgrade_required' },
  { name: 'me conversations: an API key is not a connection token', method: 'GET', path: '/v1/me/conversations/bob', status: 401, code: 'unauthorized' },
  { name: 'presence: no ids', method: 'GET', path: '/v1/presence', status: 422, code: 'validation_failed' },
  { name: 'presence: not recipient ids', method: 'GET', path: '/v1/presence?ids=a,,b', status: 422, code: 'validation_failed', paths: ['query.ids'] },
  { name: 'presence: too many ids', method: 'GET', path: `/v1/presence?ids=${Array.from({ length: 101 }, (_, i) => `r${i}`).join(',')}`, status: 422, code: 'validation_failed', paths: ['query.ids'] },
  { name: 'realtime SSE: an API key is not a connection token', method: 'GET', path: '/v1/realtime/sse', status: 401, code: 'unauthorized' },
  { name: 'realtime SSE: no token', who: 'none', method: 'GET', path: '/v1/realtime/sse?channel=inbox', status: 401, code: 'unauthorized' },
  { name: 'realtime SSE: bad channel', method: 'GET', path: '/v1/realtime/sse?channel=lobby', status: 422, code: 'validation_failed' },
  { name: 'realtime SSE: since not a cursor', method: 'GET', path: '/v1/realtime/sse?since=%25%25', status: 400, code: 'invalid_cursor' },
  { name: 'realtime SSE: Last-Event-ID not a cursor', method: 'GET', path: '/v1/realtime/sse', headers: { 'last-event-id': 'W10' }, status: 400, code: 'invalid_cursor' },
  { name: 'realtime send: no session', method: 'POST', path: '/v1/realtime/send', body: { frame: { type: 'ping' } }, status: 422, code: 'validation_failed' },
  { name: 'realtime send: session of the wrong shape', method: 'POST', path: '/v1/realtime/send', body: { session: 'x', frame: { type: 'ping' } }, status: 422, code: 'validation_failed' },
  { name: 'realtime send: frame not an object', method: 'POST', path: '/v1/realtime/send', body: { session: 'AAAAAAAAAAAA', frame: 'ping' }, status: 422, code: 'validation_failed' },
  { name: 'realtime send: an API key is not a connection token', method: 'POST', path: '/v1/realtime/send', body: { session: 'AAAAAAAAAAAA', frame: { type: 'ping' } }, status: 401, code: 'unauthorized' },
  { name: 'realtime send: frame over 64 KB', method: 'POST', path: '/v1/realtime/send', body: { session: 'AAAAAAAAAAAA', frame: { type: 'ping', pad: 'x'.repeat(70_000) } }, status: 413, code: 'payload_too_large' },
  { name: 'whsec secret too short', method: 'PUT', path: '/v1/recipients/rc', body: { webhook: { url: 'https://example.com/h', secret: 'whsec_c2hvcnQ=' } }, status: 422, code: 'validation_failed', paths: ['body.webhook.secret'] },
  { name: 'bad email', method: 'PUT', path: '/v1/recipients/rc', body: { email: 'not-an-email' }, status: 422, code: 'validation_failed', paths: ['body.email'] },
  { name: 'email with a header injection', method: 'PUT', path: '/v1/recipients/rc', body: { email: 'a@example.com\r\nBcc: victim@example.com' }, status: 422, code: 'validation_failed', paths: ['body.email'] },
  { name: 'phone not E.164', method: 'PUT', path: '/v1/recipients/rc', body: { phone: '12345' }, status: 422, code: 'validation_failed', paths: ['body.phone'] },
  { name: 'phone with a leading zero country code', method: 'PUT', path: '/v1/recipients/rc', body: { phone: '+0123456' }, status: 422, code: 'validation_failed', paths: ['body.phone'] },
  { name: 'several bad recipient fields at once', method: 'PUT', path: '/v1/recipients/rc', body: { name: 'n'.repeat(201), nickname: 'x', email: 5 }, status: 422, code: 'validation_failed', paths: ['body.name', 'body.nickname', 'body.email'] },
  { name: 'pushover user key of the wrong shape', method: 'PUT', path: '/v1/recipients/rc', body: { pushover: { user_key: 'short' } }, status: 422, code: 'validation_failed', paths: ['body.pushover.user_key'] },
  { name: 'slack webhook that is not a URL', method: 'PUT', path: '/v1/recipients/rc', body: { slack: { webhook_url: 'hooks' } }, status: 422, code: 'validation_failed', paths: ['body.slack.webhook_url'] },
  { name: 'kakao phone not E.164', method: 'PUT', path: '/v1/recipients/rc', body: { kakao: { phone: '010-1234-5678' } }, status: 422, code: 'validation_failed', paths: ['body.kakao.phone'] },

  // --- recipients list and preferences patch
  { name: 'recipients list: limit=0', method: 'GET', path: '/v1/recipients?limit=0', status: 422, code: 'validation_failed', paths: ['querystring.limit'] },
  { name: 'recipients list: limit=201', method: 'GET', path: '/v1/recipients?limit=201', status: 422, code: 'validation_failed', paths: ['querystring.limit'] },
  { name: 'recipients list: empty q', method: 'GET', path: '/v1/recipients?q=', status: 422, code: 'validation_failed', paths: ['querystring.q'] },
  { name: 'recipients list: q over 200 characters', method: 'GET', path: `/v1/recipients?q=${'q'.repeat(201)}`, status: 422, code: 'validation_failed', paths: ['querystring.q'] },
  { name: 'recipients list: foreign cursor', method: 'GET', path: `/v1/recipients?cursor=${b64('c1:ntf_01M80SGJJ90MBTNVTV0KVD1QYY')}`, status: 400, code: 'invalid_cursor' },
  { name: 'recipients list: cursor with SQL', method: 'GET', path: `/v1/recipients?cursor=${b64("k1:a' OR '1'='1")}`, status: 400, code: 'invalid_cursor' },
  { name: 'recipients list: unknown parameter', method: 'GET', path: '/v1/recipients?page=2', status: 422, code: 'validation_failed', paths: ['querystring.page'] },
  { name: 'preferences patch: wrong types', method: 'PATCH', path: '/v1/recipients/alice/preferences', body: { kinds: [], quiet_hours: 'night' }, status: 422, code: 'validation_failed', paths: ['body.kinds', 'body.quiet_hours'] },
  { name: 'preferences patch: unknown field', method: 'PATCH', path: '/v1/recipients/alice/preferences', body: { kinds: {}, timezone: 'UTC' }, status: 422, code: 'validation_failed', paths: ['body.timezone'] },
  { name: 'preferences patch: merged quiet hours without an end', method: 'PATCH', path: '/v1/recipients/alice/preferences', body: { quiet_hours: { start: '22:00' } }, status: 422, code: 'validation_failed', paths: ['body.quiet_hours.end'] },
  { name: 'preferences patch: unknown kind', method: 'PATCH', path: '/v1/recipients/alice/preferences', body: { kinds: { nope: { allowed: false } } }, status: 422, code: 'validation_failed', paths: ['body.kinds.nope'] },
  { name: 'preferences patch: unknown recipient', method: 'PATCH', path: '/v1/recipients/nobody/preferences', body: { quiet_hours: null }, status: 404, code: 'not_found' },
  { name: 'preferences patch as text/plain', method: 'PATCH', path: '/v1/recipients/alice/preferences', body: '{}', headers: { 'content-type': 'text/plain' }, status: 415, code: 'unsupported_media_type' },
  { name: 'preferences patch: malformed merge patch', method: 'PATCH', path: '/v1/recipients/alice/preferences', body: '{"kinds":', headers: { 'content-type': 'application/merge-patch+json' }, status: 400, code: 'malformed_json' },
  { name: 'read key cannot patch preferences', who: 'read', method: 'PATCH', path: '/v1/recipients/alice/preferences', body: { quiet_hours: null }, status: 403, code: 'forbidden' },

  // --- channels: options, providers, devices, callbacks
  { name: 'channel_options for an unknown channel', body: { to: 'alice', title: 'x', channel_options: { fax: {} } }, status: 422, code: 'validation_failed', paths: ['body.channel_options.fax'] },
  { name: 'pushover priority out of range', body: { to: 'alice', title: 'x', channel_options: { pushover: { priority: 3 } } }, status: 422, code: 'validation_failed', paths: ['body.channel_options.pushover.priority'] },
  { name: 'apns option of the wrong type', body: { to: 'alice', title: 'x', channel_options: { apns: { badge: 'many' } } }, status: 422, code: 'validation_failed', paths: ['body.channel_options.apns.badge'] },
  { name: 'fallback that is not a boolean', body: { to: 'alice', title: 'x', fallback: 'yes' }, status: 422, code: 'validation_failed', paths: ['body.fallback'] },
  { name: 'provider config missing', method: 'PUT', path: '/v1/providers/pushover', body: {}, status: 422, code: 'validation_failed', paths: ['body.config'] },
  { name: 'provider config with unknown fields', method: 'PUT', path: '/v1/providers/pushover', body: { config: { app_token: 'a'.repeat(30), extra: 1 } }, status: 422, code: 'validation_failed', paths: ['body.config.extra'] },
  { name: 'provider base_url that is not http(s)', method: 'PUT', path: '/v1/providers/smtp', body: { config: { url: 'smtp://h:25', from: 'a@b.c' }, base_url: 'gopher://x' }, status: 422, code: 'validation_failed', paths: ['body.base_url'] },
  { name: 'one VAPID key without the other', method: 'PUT', path: '/v1/providers/webpush', body: { config: { subject: 'mailto:a@b.c', vapid_private_key: 'a'.repeat(43) } }, status: 422, code: 'validation_failed' },
  { name: 'unknown provider', method: 'PUT', path: '/v1/providers/telegraph', body: { config: {} }, status: 404, code: 'not_found' },
  { name: 'provider test for an unknown provider', method: 'POST', path: '/v1/providers/telegraph/test', body: { to: 'alice' }, status: 422, code: 'validation_failed', paths: ['params.provider'] },
  { name: 'device platform unknown', method: 'POST', path: '/v1/recipients/alice/devices', body: { platform: 'pager', token: 'x' }, status: 422, code: 'validation_failed', paths: ['body.platform'] },
  { name: 'device id of the wrong shape', method: 'DELETE', path: '/v1/recipients/alice/devices/dev_x', status: 422, code: 'validation_failed', paths: ['params.device_id'] },
  { name: 'callback without a token', method: 'POST', path: '/v1/callbacks/twilio?delivery=dlv_01M80SGJJ90MBTNVTV0KVD1QYY', body: 'MessageSid=SM1&MessageStatus=delivered', headers: { 'content-type': 'application/x-www-form-urlencoded' }, who: 'none', status: 422, code: 'validation_failed', paths: ['querystring.token'] },
  { name: 'callback with a forged token', method: 'POST', path: '/v1/callbacks/pushover?delivery=dlv_01M80SGJJ90MBTNVTV0KVD1QYY&token=AAAAAAAAAAAAAAAAAAAAAA', body: 'receipt=r&acknowledged=1', headers: { 'content-type': 'application/x-www-form-urlencoded' }, who: 'none', status: 403, code: 'invalid_signature' },
  { name: 'callback for an unknown provider', method: 'POST', path: '/v1/callbacks/fcm', body: 'x=1', headers: { 'content-type': 'application/x-www-form-urlencoded' }, who: 'none', status: 404, code: 'not_found' },
  { name: 'callback with a JSON body of the wrong shape', method: 'POST', path: '/v1/callbacks/twilio?delivery=dlv_01M80SGJJ90MBTNVTV0KVD1QYY&token=AAAAAAAAAAAAAAAAAAAAAA', body: { MessageSid: 5 }, who: 'none', status: 422, code: 'validation_failed', paths: ['body.MessageSid'] },
  { name: 'template version beyond a 32-bit integer', method: 'GET', path: '/v1/templates/welcome?version=99999999999', status: 422, code: 'validation_failed', paths: ['querystring.version'] },
  { name: 'template version 1e308 in a render', method: 'POST', path: '/v1/templates/welcome/render', body: { version: 1e308, data: {} }, status: 422, code: 'validation_failed', paths: ['body.version'] },
  // --- accounts (/v1/auth)
  { name: 'register: not an email address', method: 'POST', path: '/v1/auth/register', who: 'none', body: { email: 'not-an-address', password: 'a long enough passphrase', name: 'X' }, status: 422, code: 'validation_failed', paths: ['body.email'] },
  { name: 'register: missing fields', method: 'POST', path: '/v1/auth/register', who: 'none', body: {}, status: 422, code: 'validation_failed', paths: ['body.email', 'body.password', 'body.name'] },
  { name: 'register: unknown field', method: 'POST', path: '/v1/auth/register', who: 'none', body: { email: 'a@example.com', password: 'a long enough passphrase', name: 'A', role: 'owner' }, status: 422, code: 'validation_failed', paths: ['body.role'] },
  { name: 'register while HERALD_SIGNUP=invite', method: 'POST', path: '/v1/auth/register', who: 'none', body: { email: 'a@example.com', password: 'a long enough passphrase', name: 'A' }, status: 403, code: 'invitation_required' },
  { name: 'login: password of the wrong type', method: 'POST', path: '/v1/auth/login', who: 'none', body: { email: 'a@example.com', password: 12345678901 }, status: 422, code: 'validation_failed', paths: ['body.password'] },
  { name: 'login: empty password', method: 'POST', path: '/v1/auth/login', who: 'none', body: { email: 'a@example.com', password: '' }, status: 422, code: 'validation_failed', paths: ['body.password'] },
  { name: 'login: unknown user', method: 'POST', path: '/v1/auth/login', who: 'none', body: { email: 'nobody@example.com', password: 'whatever it is' }, status: 401, code: 'invalid_credentials' },
  { name: 'password reset: not an email address', method: 'POST', path: '/v1/auth/password-reset', who: 'none', body: { email: 'nobody' }, status: 422, code: 'validation_failed', paths: ['body.email'] },
  { name: 'password reset: without HERALD_SMTP_URL', method: 'POST', path: '/v1/auth/password-reset', who: 'none', body: { email: 'a@example.com' }, status: 409, code: 'email_not_configured' },
  { name: 'password reset confirm: unknown code', method: 'POST', path: '/v1/auth/password-reset/confirm', who: 'none', body: { token: 'hp_nothing', password: 'a long enough passphrase' }, status: 400, code: 'invalid_token' },
  { name: 'password reset confirm: no password', method: 'POST', path: '/v1/auth/password-reset/confirm', who: 'none', body: { token: 'hp_nothing' }, status: 422, code: 'validation_failed', paths: ['body.password'] },
  { name: 'password reset confirm: weak password', method: 'POST', path: '/v1/auth/password-reset/confirm', who: 'none', body: { token: 'hp_nothing', password: 'short' }, status: 422, code: 'weak_password' },
  { name: 'verify email confirm: unknown code', method: 'POST', path: '/v1/auth/verify-email/confirm', who: 'none', body: { token: 'hv_nothing' }, status: 400, code: 'invalid_token' },
  { name: 'verify email confirm: token of the wrong type', method: 'POST', path: '/v1/auth/verify-email/confirm', who: 'none', body: { token: 5 }, status: 422, code: 'validation_failed', paths: ['body.token'] },
  { name: 'verify email: an API key has no address', method: 'POST', path: '/v1/auth/verify-email', status: 403, code: 'forbidden' },
  { name: 'delete an organization with an API key', method: 'DELETE', path: '/v1/orgs/ws_default', status: 403, code: 'forbidden' },
  { name: 'identities with an API key', method: 'GET', path: '/v1/auth/identities', status: 403, code: 'forbidden' },
  { name: 'unlink an identity with an API key', method: 'DELETE', path: '/v1/auth/identities/github', status: 403, code: 'forbidden' },
  { name: 'unlink an identity: provider id too long', method: 'DELETE', path: `/v1/auth/identities/${'p'.repeat(65)}`, status: 422, code: 'validation_failed', paths: ['params.provider'] },
  { name: 'refresh: no token in body or cookie', method: 'POST', path: '/v1/auth/refresh', who: 'none', body: {}, status: 401, code: 'invalid_refresh_token' },
  { name: 'refresh: unknown token', method: 'POST', path: '/v1/auth/refresh', who: 'none', body: { refresh_token: 'hr_unknown' }, status: 401, code: 'invalid_refresh_token' },
  { name: 'refresh: token of the wrong type', method: 'POST', path: '/v1/auth/refresh', who: 'none', body: { refresh_token: 5 }, status: 422, code: 'validation_failed', paths: ['body.refresh_token'] },
  { name: 'me without a credential', method: 'GET', path: '/v1/auth/me', who: 'none', status: 401, code: 'unauthorized' },
  { name: 'me with an API key (no session)', method: 'GET', path: '/v1/auth/me', status: 403, code: 'forbidden' },
  { name: 'switch with an API key', method: 'POST', path: '/v1/auth/switch', body: { org: 'ws_default' }, status: 403, code: 'forbidden' },
  { name: 'switch: org of the wrong type', method: 'POST', path: '/v1/auth/switch', body: { org: 7 }, status: 422, code: 'validation_failed', paths: ['body.org'] },
  { name: 'logout with an API key', method: 'POST', path: '/v1/auth/logout', status: 403, code: 'forbidden' },
  { name: 'logout-all without a credential', method: 'POST', path: '/v1/auth/logout-all', who: 'none', status: 401, code: 'unauthorized' },
  // --- sign-in with external providers (/v1/auth/oauth) and GitHub organization links
  { name: 'oauth: sign-in with a provider that is not configured', method: 'GET', path: '/v1/auth/oauth/facebook', who: 'none', status: 404, code: 'not_found' },
  { name: 'oauth: callback of a provider that is not configured', method: 'GET', path: '/v1/auth/oauth/facebook/callback?code=x&state=y', who: 'none', status: 404, code: 'not_found' },
  { name: 'oauth: sign-in redirect to another origin', method: 'GET', path: '/v1/auth/oauth/github?redirect=https%3A%2F%2Fevil.example%2F', who: 'none', status: 422, code: 'validation_failed', paths: ['querystring.redirect'] },
  { name: 'oauth: callback with an over-long state', method: 'GET', path: `/v1/auth/oauth/github/callback?code=x&state=${'s'.repeat(600)}`, who: 'none', status: 422, code: 'validation_failed', paths: ['querystring.state'] },
  { name: 'github link: owner as the default role', method: 'PUT', path: '/v1/orgs/ws_default/github', body: { org: 'acme', default_role: 'owner' }, status: 422, code: 'validation_failed', paths: ['body.default_role'] },
  { name: 'github link: not a GitHub organization name', method: 'PUT', path: '/v1/orgs/ws_default/github', body: { org: 'acme corp/x', default_role: 'member' }, status: 422, code: 'validation_failed', paths: ['body.org'] },
  { name: 'github link with an API key', method: 'PUT', path: '/v1/orgs/ws_default/github', body: { org: 'acme', default_role: 'member' }, status: 403, code: 'forbidden' },
  {
    name: 'a forged access token (JWT shape, no valid signature)',
    method: 'GET',
    path: '/v1/recipients',
    who: { authorization: `Bearer ${b64('{"alg":"ES256","typ":"at+jwt","kid":"x"}')}.${b64('{"sub":"usr_x","org":"ws_default","sid":"ses_x","iss":"herald","aud":"herald","exp":9999999999,"iat":1}')}.${b64('sig')}` },
    status: 401,
    code: 'unauthorized',
  },
  {
    name: 'an unsigned access token (alg none)',
    method: 'GET',
    path: '/v1/recipients',
    who: { authorization: `Bearer ${b64('{"alg":"none","typ":"at+jwt"}')}.${b64('{"sub":"usr_x","org":"ws_default","sid":"ses_x","iss":"herald","aud":"herald","exp":9999999999,"iat":1}')}.x` },
    status: 401,
    code: 'unauthorized',
  },
  { name: 'an access-token cookie on an unsafe request without CSRF proof', method: 'POST', path: '/v1/keys', who: 'none', headers: { cookie: 'herald_access=a.b.c' }, body: { name: 'x', scopes: ['read'] }, status: 403, code: 'csrf_failed' },
  { name: 'a malformed access-token cookie on a safe request', method: 'GET', path: '/v1/recipients', who: 'none', headers: { cookie: 'herald_access=garbage' }, status: 401, code: 'unauthorized' },
  { name: 'orgs with an API key', method: 'GET', path: '/v1/orgs', status: 403, code: 'forbidden' },
  { name: 'create an org: name missing', method: 'POST', path: '/v1/orgs', body: {}, status: 422, code: 'validation_failed', paths: ['body.name'] },
  { name: 'member role not a role', method: 'PUT', path: '/v1/orgs/ws_default/members/usr_x', body: { role: 'god' }, status: 422, code: 'validation_failed', paths: ['body.role'] },
  { name: 'orgs without a credential', method: 'GET', path: '/v1/orgs/ws_default/members', who: 'none', status: 401, code: 'unauthorized' },
  { name: 'key expiry not a time', method: 'POST', path: '/v1/keys', body: { name: 'x', scopes: ['read'], expires_at: 'next week' }, status: 422, code: 'validation_failed', paths: ['body.expires_at'] },
  { name: 'key expiry in the past', method: 'POST', path: '/v1/keys', body: { name: 'x', scopes: ['read'], expires_at: '2001-01-01T00:00:00Z' }, status: 422, code: 'validation_failed', paths: ['body.expires_at'] },
  { name: 'audit filter from not a time', method: 'GET', path: '/v1/audit?from=yesterday', status: 422, code: 'validation_failed', paths: ['querystring.from'] },
  { name: 'audit filter with an unknown parameter', method: 'GET', path: '/v1/audit?who=me', status: 422, code: 'validation_failed' },
  { name: 'stats: from not a time', method: 'GET', path: '/v1/stats?from=yesterday', status: 422, code: 'validation_failed', paths: ['querystring.from'] },
  { name: 'stats: bucket not a duration', method: 'GET', path: '/v1/stats?bucket=hourly', status: 422, code: 'validation_failed', paths: ['querystring.bucket'] },
  { name: 'stats: bucket below a second', method: 'GET', path: '/v1/stats?bucket=10ms', status: 422, code: 'validation_failed', paths: ['querystring.bucket'] },
  { name: 'stats: from after to', method: 'GET', path: '/v1/stats?from=2026-02-01T00:00:00Z&to=2026-01-01T00:00:00Z', status: 422, code: 'validation_failed', paths: ['querystring.from'] },
  { name: 'stats: over 1000 buckets', method: 'GET', path: '/v1/stats?from=2020-01-01T00:00:00Z&to=2026-01-01T00:00:00Z&bucket=1h', status: 422, code: 'validation_failed', paths: ['querystring.bucket'] },
  { name: 'stats: unknown parameter', method: 'GET', path: '/v1/stats?channel=email', status: 422, code: 'validation_failed', paths: ['querystring.channel'] },
  { name: 'stats: without a credential', method: 'GET', path: '/v1/stats', who: 'none', status: 401, code: 'unauthorized' },
  { name: 'invitation: email not an address', method: 'POST', path: '/v1/orgs/ws_default/invitations', body: { email: 'nobody', role: 'viewer' }, status: 422, code: 'validation_failed', paths: ['body.email'] },
  { name: 'invitation: role not a role', method: 'POST', path: '/v1/orgs/ws_default/invitations', body: { email: 'a@example.com', role: 'god' }, status: 422, code: 'validation_failed', paths: ['body.role'] },
  { name: 'invitations with an API key', method: 'GET', path: '/v1/orgs/ws_default/invitations', status: 403, code: 'forbidden' },
  { name: 'accept an unknown invitation', method: 'POST', path: '/v1/invitations/hi_unknown/accept', who: 'none', body: { name: 'x', password: 'a long enough passphrase' }, status: 400, code: 'invalid_token' },
  { name: 'accept an invitation with an unknown property', method: 'POST', path: '/v1/invitations/hi_unknown/accept', who: 'none', body: { role: 'owner' }, status: 422, code: 'validation_failed' },
  { name: 'accept an invitation with an API key', method: 'POST', path: '/v1/invitations/hi_unknown/accept', body: {}, status: 403, code: 'forbidden' },
  { name: 'register with an empty invitation token', method: 'POST', path: '/v1/auth/register', who: 'none', body: { email: 'a@example.com', password: 'a long enough passphrase', name: 'A', invitation: '' }, status: 422, code: 'validation_failed', paths: ['body.invitation'] },
  // --- subscriptions
  { name: 'subscription: filter with an unknown operator', method: 'POST', path: '/v1/subscriptions', body: { path_pattern: '/a', filter: { 'payload.n': { $gtx: 1 } }, action: { forward: { url: 'https://example.com/' } } }, status: 422, code: 'validation_failed', paths: ['body.filter.payload.n.$gtx'] },
  { name: 'subscription: filter with a backtracking regex', method: 'POST', path: '/v1/subscriptions', body: { path_pattern: '/a', filter: { 'payload.n': { $regex: '(?=x)' } }, action: { forward: { url: 'https://example.com/' } } }, status: 422, code: 'validation_failed', paths: ['body.filter.payload.n.$regex'] },
  { name: 'subscription: filter not an object', method: 'POST', path: '/v1/subscriptions', body: { path_pattern: '/a', filter: [1], action: { forward: { url: 'https://example.com/' } } }, status: 422, code: 'validation_failed', paths: ['body.filter'] },
  { name: 'subscription: path pattern without a leading slash', method: 'POST', path: '/v1/subscriptions', body: { path_pattern: 'a/*', action: { forward: { url: 'https://example.com/' } } }, status: 422, code: 'validation_failed', paths: ['body.path_pattern'] },
  { name: 'subscription: no action', method: 'POST', path: '/v1/subscriptions', body: { path_pattern: '/a' }, status: 422, code: 'validation_failed', paths: ['body.action'] },
  { name: 'subscription: two notify targets', method: 'POST', path: '/v1/subscriptions', body: { path_pattern: '/a', action: { notify: { to: 'x', to_path: 'payload.user', template: 't' } } }, status: 422, code: 'validation_failed', paths: ['body.action.notify'] },
  { name: 'subscription: realtime channel not a room', method: 'POST', path: '/v1/subscriptions', body: { path_pattern: '/a', action: { realtime: { channel: 'ops' } } }, status: 422, code: 'validation_failed', paths: ['body.action'] },
  { name: 'subscription: read scope', method: 'GET', path: '/v1/subscriptions', who: 'read', status: 403, code: 'forbidden' },
  { name: 'subscription: a cursor Herald did not make', method: 'GET', path: '/v1/subscriptions?cursor=bm9wZQ', status: 400, code: 'invalid_cursor' },
  { name: 'subscription: unknown id', method: 'GET', path: '/v1/subscriptions/sub_nope', status: 404, code: 'not_found' },
  { name: 'event replay with a reason too long', method: 'POST', path: '/v1/events/evt_x/replay', body: { reason: 'x'.repeat(1001) }, status: 422, code: 'validation_failed', paths: ['body.reason'] },
  { name: 'TOTP enrolment with an API key', method: 'POST', path: '/v1/auth/totp', status: 403, code: 'forbidden' },
  { name: 'TOTP confirm: code missing', method: 'POST', path: '/v1/auth/totp/confirm', body: {}, status: 422, code: 'validation_failed', paths: ['body.code'] },
  { name: 'TOTP confirm: code not a string', method: 'POST', path: '/v1/auth/totp/confirm', body: { code: 123456 }, status: 422, code: 'validation_failed', paths: ['body.code'] },
  { name: 'TOTP disable: unknown property', method: 'POST', path: '/v1/auth/totp/disable', body: { secret: 'x' }, status: 422, code: 'validation_failed' },
  { name: 'login: totp not a string', method: 'POST', path: '/v1/auth/login', who: 'none', body: { email: 'a@example.com', password: 'x', totp: 123456 }, status: 422, code: 'validation_failed', paths: ['body.totp'] },
  { name: 'org: require_totp not a boolean', method: 'PATCH', path: '/v1/orgs/ws_default', body: { require_totp: 'yes' }, headers: { 'content-type': 'application/merge-patch+json' }, status: 422, code: 'validation_failed' },
  { name: 'password change: new password missing', method: 'POST', path: '/v1/auth/password', body: { current_password: 'x' }, status: 422, code: 'validation_failed', paths: ['body.new_password'] },
  { name: 'password change with an API key', method: 'POST', path: '/v1/auth/password', body: { current_password: 'x', new_password: 'y' }, status: 403, code: 'forbidden' },
  { name: 'erase account: password missing', method: 'DELETE', path: '/v1/auth/me', body: {}, status: 422, code: 'validation_failed', paths: ['body.password'] },
  { name: 'recipient id with SQL metacharacters', method: 'PUT', path: `/v1/recipients/${encodeURIComponent("x' OR '1'='1")}`, body: { name: 'x' }, status: 422, code: 'validation_failed', paths: ['params.id'] },
  // --- webhook broker: sources, events, consumers, ingest
  { name: 'source with an unknown provider', method: 'PUT', path: '/v1/sources/s1', body: { path: '/gh', provider: 'bitbucket', secrets: ['x'] }, status: 422, code: 'validation_failed', paths: ['body.provider'] },
  { name: 'source path under a reserved prefix', method: 'PUT', path: '/v1/sources/s1', body: { path: '/v1/hooks', provider: 'github', secrets: ['x'] }, status: 422, code: 'validation_failed', paths: ['body.path'] },
  { name: 'source path with a dot-dot segment', method: 'PUT', path: '/v1/sources/s1', body: { path: '/a/../b', provider: 'github', secrets: ['x'] }, status: 422, code: 'validation_failed', paths: ['body.path'] },
  { name: 'source path without a leading slash', method: 'PUT', path: '/v1/sources/s1', body: { path: 'gh', provider: 'github', secrets: ['x'] }, status: 422, code: 'validation_failed', paths: ['body.path'] },
  { name: 'source secret with a space', method: 'PUT', path: '/v1/sources/s1', body: { path: '/gh', provider: 'github', secrets: ['a b'] }, status: 422, code: 'validation_failed', paths: ['body.secrets.0'] },
  { name: 'unsigned source without "unsigned": true', method: 'PUT', path: '/v1/sources/s1', body: { path: '/open', provider: 'none' }, status: 422, code: 'validation_failed', paths: ['body.unsigned'] },
  { name: 'source retention that is not a duration', method: 'PUT', path: '/v1/sources/s1', body: { path: '/gh', provider: 'github', secrets: ['x'], retention: 'forever' }, status: 422, code: 'validation_failed', paths: ['body.retention'] },
  { name: 'source owner who is not a member', method: 'PUT', path: '/v1/sources/s1', body: { path: '/gh', provider: 'github', secrets: ['x'], owner: 'usr_nobody' }, status: 422, code: 'validation_failed', paths: ['body.owner'] },
  { name: 'source GitHub read grant that is not a boolean', method: 'PUT', path: '/v1/sources/s1', body: { path: '/gh/acme/api', provider: 'github', secrets: ['x'], github_read: 'yes' }, status: 422, code: 'validation_failed', paths: ['body.github_read'] },
  { name: 'source GitHub read grant in an organization not linked to GitHub', method: 'PUT', path: '/v1/sources/s1', body: { path: '/gh/acme/api', provider: 'github', secrets: ['x'], github_read: true }, status: 422, code: 'validation_failed', paths: ['body.github_read'] },
  { name: 'source with a read key', method: 'PUT', path: '/v1/sources/s1', who: 'read', body: { path: '/gh', provider: 'github', secrets: ['x'] }, status: 403, code: 'forbidden' },
  { name: 'unknown source', method: 'GET', path: '/v1/sources/nope', status: 404, code: 'not_found' },
  { name: 'events after a non-event id', method: 'GET', path: '/v1/events?after=ntf_1', status: 422, code: 'validation_failed', paths: ['querystring.after'] },
  { name: 'events in an unknown order', method: 'GET', path: '/v1/events?order=sideways', status: 422, code: 'validation_failed', paths: ['querystring.order'] },
  { name: 'unknown event', method: 'GET', path: '/v1/events/evt_01M80SGJJ90MBTNVTV0KVD1QYY', status: 404, code: 'not_found' },
  { name: 'consumer without a filter', method: 'PUT', path: '/v1/consumers/c1', body: {}, status: 422, code: 'validation_failed', paths: ['body.filter'] },
  { name: 'consumer ack timeout that is not a duration', method: 'PUT', path: '/v1/consumers/c1', body: { filter: { path: '/x' }, ack_timeout: 'soon' }, status: 422, code: 'validation_failed', paths: ['body.ack_timeout'] },
  { name: 'consumer match with an unknown operator', method: 'PUT', path: '/v1/consumers/c1', body: { filter: { path: '/x', match: { 'payload.a': { $like: 'x' } } } }, status: 422, code: 'validation_failed' },
  { name: 'consumer max_deliveries of 0', method: 'PUT', path: '/v1/consumers/c1', body: { filter: { path: '/x' }, max_deliveries: 0 }, status: 422, code: 'validation_failed', paths: ['body.max_deliveries'] },
  { name: 'consumer ack with no ids', method: 'POST', path: '/v1/consumers/c1/ack', body: { ids: [] }, status: 422, code: 'validation_failed', paths: ['body.ids'] },
  { name: 'consumer nack delay that is not a duration', method: 'POST', path: '/v1/consumers/c1/nack', body: { ids: ['evt_01M80SGJJ90MBTNVTV0KVD1QYY'], delay: 'later' }, status: 422, code: 'validation_failed', paths: ['body.delay'] },
  { name: 'consumer pull waiting longer than 60 s', method: 'GET', path: '/v1/consumers/c1/events?wait=10m', status: 422, code: 'validation_failed', paths: ['querystring.wait'] },
  { name: 'pull from an unknown consumer', method: 'GET', path: '/v1/consumers/nope/events', status: 404, code: 'not_found' },
  { name: 'webhook to an unknown source path', method: 'POST', path: '/hooks/nobody/here', who: 'none', body: { a: 1 }, status: 404, code: 'not_found' },
];

for (const dialect of ['sqlite', 'postgres'] as const) describe(`bad input is refused with a problem (${dialect})`, () => {
  let h: TestHerald;
  let small: TestHerald;
  let rx: Receiver;
  let readKey: string;
  /** Ids of every notification this suite expects to exist. */
  const accepted: string[] = [];
  const acceptedSmall: string[] = [];

  const send = async (server: TestHerald, body: unknown) => {
    const r = await server.api('POST', SEND, body);
    assert.equal(r.status, 202, r.text);
    return r;
  };

  before(async () => {
    rx = await startReceiver();
    h = await startHeraldOn(dialect);
    small = await startHeraldOn(dialect, { HERALD_BODY_LIMIT: '2048' });
    for (const s of [h, small]) {
      assert.equal((await s.api('PUT', '/v1/recipients/alice', { name: 'Alice', webhook: { url: `${rx.url}/alice` } })).status, 201);
      assert.equal((await s.api('PUT', '/v1/recipients/bob', { name: 'Bob, no address' })).status, 201);
    }
    const key = await h.api('POST', '/v1/keys', { name: 'reader', scopes: ['read'] });
    assert.equal(key.status, 201, key.text);
    readKey = key.body.key;
    accepted.push((await send(h, { to: 'alice', title: 'before' })).body.id);
    acceptedSmall.push((await send(small, { to: 'alice', title: 'before' })).body.id);
  });

  after(async () => {
    await h?.stop();
    await small?.stop();
    await rx?.close();
  });

  for (const c of cases) {
    it(`${c.status} ${c.code}: ${c.name}`, async () => {
      const server = c.server === 'small' ? small : h;
      const who = c.who ?? 'admin';
      const key = who === 'admin' ? server.key : who === 'read' ? readKey : undefined;
      const headers = { ...(typeof who === 'object' ? who : {}), ...c.headers };
      const r = await request(server.url, key, c.method ?? 'POST', c.path ?? SEND, c.body, headers);

      assert.equal(r.status, c.status, r.text.slice(0, 500));
      assert.ok(r.status >= 400 && r.status < 500);
      assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
      assert.equal(r.body.code, c.code);
      assert.equal(r.body.status, c.status);
      assert.equal(r.body.type, `urn:herald:problem:${c.code}`);
      assert.equal(typeof r.body.title, 'string');
      if (c.status === 401) assert.match(r.headers.get('www-authenticate') ?? '', /^Bearer/);
      if (c.paths) {
        assert.ok(Array.isArray(r.body.errors), 'errors[] is present');
        const got = new Set((r.body.errors as { path: string; message: string }[]).map((e) => e.path));
        for (const p of c.paths) assert.ok(got.has(p), `errors[] names ${p}; got ${[...got].join(', ')}`);
        for (const e of r.body.errors) assert.equal(typeof e.message, 'string');
      }
      // A server fault's message is never echoed; nothing here may look like one.
      assert.doesNotMatch(r.text, /stack|RangeError|TypeError|SQLITE|violates|syntax error/i);
      c.check?.(r);
    });
  }

  // Requests Node's HTTP parser refuses, before any route runs: written on a raw socket.
  const rawCases: { name: string; head: string; body?: string; status: number; code: string }[] = [
    { name: 'Content-Length that is not a number', head: 'Content-Length: abc', body: '{}', status: 400, code: 'malformed_request' },
    { name: 'body shorter than its Content-Length', head: 'Content-Length: 500', body: '{"to":"alice","title":"x"}', status: 400, code: 'malformed_request' },
    { name: 'both Content-Length and Transfer-Encoding', head: 'Content-Length: 2\r\nTransfer-Encoding: chunked', body: '0\r\n\r\n', status: 400, code: 'malformed_request' },
    { name: 'header section over the 16 KB limit', head: `X-Padding: ${'p'.repeat(20_000)}`, status: 431, code: 'headers_too_large' },
  ];
  for (const c of rawCases) {
    it(`${c.status} ${c.code}: ${c.name} (raw HTTP)`, async () => {
      const { port } = new URL(h.url);
      const head = `POST ${SEND} HTTP/1.1\r\nHost: localhost\r\nAuthorization: Bearer ${h.key}\r\nContent-Type: application/json\r\n${c.head}\r\n\r\n`;
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect(Number(port), '127.0.0.1', () => socket.end(head + (c.body ?? '')));
        let out = '';
        socket.setEncoding('utf8').on('data', (d: string) => (out += d));
        socket.on('close', () => resolve(out));
        socket.on('error', (err) => (out ? resolve(out) : reject(err)));
      });
      assert.match(answer, new RegExp(`^HTTP/1.1 ${c.status} `), answer.slice(0, 300));
      const split = answer.indexOf('\r\n\r\n');
      assert.match(answer.slice(0, split), /\r\ncontent-type: application\/problem\+json/i);
      const problem = JSON.parse(answer.slice(split + 4));
      assert.equal(problem.code, c.code);
      assert.equal(problem.status, c.status);
    });
  }

  it('accepts hostile strings as content and stores them verbatim', async () => {
    const body = {
      to: 'alice',
      kind: 'a.b-c_d',
      title: "' OR '1'='1; DROP TABLE notifications;-- 😀 \\u0000 (as text)",
      body: '__proto__ constructor <script>alert(1)</script> \u202e\u200b',
      data: { 'constructor': 'plain', toString: 'x', 'a.b': ["'; --", null, 1e308, -0, { nested: '\u0001\u001f' }] },
      metadata: { hasOwnProperty: 1, '': 'empty key', "k'); --": 'v' },
    };
    const r = await send(h, body);
    accepted.push(r.body.id);
    const got = await h.api('GET', `${SEND}/${r.body.id}`);
    assert.equal(got.status, 200);
    assert.equal(got.body.title, body.title);
    assert.equal(got.body.body, body.body);
    assert.equal(got.body.kind, body.kind);
    assert.deepEqual(got.body.data, JSON.parse(JSON.stringify(body.data)));
    assert.deepEqual(got.body.metadata, body.metadata);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it('refuses a NUL character anywhere in a JSON body (no store keeps one everywhere), naming where', async () => {
    for (const [body, path] of [
      [{ to: 'alice', title: 'NUL\u0000' }, 'body.title'],
      [{ to: 'alice', title: 'T', data: { a: [1, { nested: '\u0000' }] } }, 'body.data.a.1.nested'],
    ] as const) {
      const r = await h.api('POST', SEND, body);
      assert.equal(r.status, 422, r.text);
      assert.equal(r.body.code, 'validation_failed');
      assert.equal(r.body.errors[0].path, path);
    }
    const key = await h.api('POST', SEND, { to: 'alice', title: 'T', metadata: { 'k\u0000': 1 } });
    assert.equal(key.status, 422, key.text);
    assert.deepEqual(key.body.errors, [{ path: 'body.metadata', message: 'has a property name that contains a NUL character (U+0000), which cannot be stored' }]);
  });

  it('refuses a JSON body that is not valid UTF-8 (400 malformed_json), never storing U+FFFD', async () => {
    const raw = (text: string, bad: number[]) => {
      const [head, tail] = text.split('@');
      return Buffer.concat([Buffer.from(head!, 'utf8'), Buffer.from(bad), Buffer.from(tail!, 'utf8')]);
    };
    const post = (path: string, method: string, body: Buffer, contentType = 'application/json') =>
      fetch(h.url + path, { method, headers: { authorization: `Bearer ${h.key}`, 'content-type': contentType }, body });
    // A stray continuation byte, an invalid lead byte, an overlong "/", a UTF-16 surrogate, a sequence cut short.
    for (const bad of [[0x80], [0xff], [0xc0, 0xaf], [0xed, 0xa0, 0x80], [0xe2, 0x82]]) {
      for (const [method, path, body, contentType] of [
        ['POST', SEND, raw('{"to":"alice","title":"caf@"}', bad), 'application/json'],
        ['PUT', '/v1/recipients/mallory', raw('{"name":"M@"}', bad), 'application/json; charset=utf-8'],
        ['PATCH', '/v1/recipients/alice/preferences', raw('{"kinds":{"marketing@":null}}', bad), 'application/merge-patch+json'],
      ] as const) {
        const r = await post(path, method, body, contentType);
        const text = await r.text();
        assert.equal(r.status, 400, `${method} ${path} ${JSON.stringify(bad)}: ${text}`);
        assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
        const problem = JSON.parse(text);
        assert.equal(problem.code, 'malformed_json');
        assert.match(problem.detail, /not valid UTF-8/);
      }
    }
    // Well-formed multi-byte text goes through untouched.
    const ok = await post(SEND, 'POST', Buffer.from('{"to":"alice","title":"café ✓ 😀 한글"}', 'utf8'));
    assert.equal(ok.status, 202, await ok.clone().text());
    const id = ((await ok.json()) as { id: string }).id;
    accepted.push(id);
    assert.equal((await h.api('GET', `${SEND}/${id}`)).body.title, 'café ✓ 😀 한글');
  });

  it('stays healthy: ready, and a valid send still works', async () => {
    for (const [s, list] of [[h, accepted], [small, acceptedSmall]] as const) {
      const ready = await s.api('GET', '/healthz/ready');
      assert.equal(ready.status, 200);
      assert.equal(ready.body.status, 'ok');
      list.push((await send(s, { to: 'alice', title: 'after', body: 'still works' })).body.id);
    }
  });

  it('wrote nothing for the rejected sends', async () => {
    for (const [s, list] of [[h, accepted], [small, acceptedSmall]] as const) {
      const r = await s.api('GET', `${SEND}?limit=200`);
      assert.equal(r.status, 200);
      assert.equal(r.body.next_cursor, null);
      assert.deepEqual((r.body.data as { id: string }[]).map((n) => n.id).sort(), [...list].sort());
      // And nothing created by the refused recipient writes.
      for (const id of ['rc', 'mallory']) assert.equal((await s.api('GET', `/v1/recipients/${id}`)).status, 404);
    }
  });
});
