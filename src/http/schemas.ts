// Schemas shared by several resources.

import { Type, type TSchema } from 'typebox';
import { decodeCursor, encodeCursor } from '../domain/cursor.ts';
import { Problem, type FieldError } from '../errors.ts';

/** JSON merge patch (RFC 7396): the body of PATCH routes, beside application/json. */
export const MERGE_PATCH_JSON = 'application/merge-patch+json';

export const ProblemSchema = Type.Object(
  {
    type: Type.String(),
    title: Type.String(),
    status: Type.Integer(),
    code: Type.String(),
    detail: Type.Optional(Type.String()),
    instance: Type.Optional(Type.String()),
    errors: Type.Optional(Type.Array(Type.Object({ path: Type.String(), message: Type.String() }))),
  },
  { additionalProperties: true, description: 'RFC 9457 problem details' },
);

/** The errors of a schema validation (Ajv's) as one validation_failed problem, each field named `<dataVar>.<path>`. */
export function schemaProblem(errors: readonly { instancePath: string; keyword: string; params: unknown; message?: string | undefined }[], dataVar: string): Problem {
  const fields: FieldError[] = errors.map((e) => {
    let path = `${dataVar}${e.instancePath.replace(/\//g, '.')}`;
    if (e.keyword === 'required') path += `.${(e.params as { missingProperty: string }).missingProperty}`;
    if (e.keyword === 'additionalProperties') path += `.${(e.params as { additionalProperty: string }).additionalProperty}`;
    const message = e.keyword === 'additionalProperties' ? 'is not a known field' : (e.message ?? 'is invalid');
    return { path, message };
  });
  return new Problem('validation_failed', fields.map((f) => `${f.path} ${f.message}`).join('; '), { errors: fields });
}

/** Response entries for the problem statuses a route can answer with. */
export function problems(...statuses: number[]): Record<number, unknown> {
  return Object.fromEntries(statuses.map((s) => [s, { $ref: 'Problem#', description: 'Problem details' }]));
}

/** An optional member that may also be null (null: remove or clear it). */
export const Nullable = <T extends Parameters<typeof Type.Union>[0][number]>(t: T) => Type.Optional(Type.Union([t, Type.Null()]));

export const RecipientId = Type.String({ pattern: '^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$', description: 'Your id for the recipient' });

export const Cursor = Type.String({ maxLength: 300, description: 'Opaque cursor from the previous page' });
export const Limit = Type.Integer({ minimum: 1, maximum: 200, default: 50 });

export const Timestamp = Type.String({ format: 'date-time' });

export const iso = (ms: number | null): string | null => (ms === null ? null : new Date(ms).toISOString());

/** A page of a keyset-paginated listing. */
export const Page = <T extends TSchema>(item: T) => Type.Object({ data: Type.Array(item), next_cursor: Type.Union([Type.String(), Type.Null()]) });

/**
 * Where a page starts and how long it is. Listings read `limit + 1` rows strictly after `before`
 * and pass them to `nextCursor`. A cursor Herald did not make is a 400.
 */
export function pageRequest(q: { cursor?: string | undefined; limit?: number | undefined }): { before: string | undefined; limit: number } {
  let before: string | undefined;
  if (q.cursor !== undefined) {
    before = decodeCursor(q.cursor);
    if (!before) throw new Problem('invalid_cursor', 'Use the next_cursor value of a previous page');
  }
  return { before, limit: q.limit ?? 50 };
}

/** Trims rows read with `limit + 1` to the page, with the cursor of the next page (null on the last). */
export function pageOf<T extends { id: string }>(rows: T[], limit: number): { rows: T[]; next_cursor: string | null } {
  if (rows.length <= limit) return { rows, next_cursor: null };
  const page = rows.slice(0, limit);
  return { rows: page, next_cursor: encodeCursor(page.at(-1)!.id) };
}

/** Cursors of listings ordered by a textual key (kinds, templates, topics, members). */
const KEY_CURSOR_PREFIX = 'k1:';

/**
 * Where a page of a listing ordered by a textual key starts (the key after which it starts) and
 * how long it is. The cursor names the last key of the previous page; one whose key does not match
 * `pattern` (not made by Herald for this listing) is a 400.
 */
export function keyPageRequest(q: { cursor?: string | undefined; limit?: number | undefined }, pattern: RegExp): { after: string | undefined; limit: number } {
  let after: string | undefined;
  if (q.cursor !== undefined) {
    const text = /^[A-Za-z0-9_-]{1,300}$/.test(q.cursor) ? Buffer.from(q.cursor, 'base64url').toString('utf8') : '';
    after = text.startsWith(KEY_CURSOR_PREFIX) ? text.slice(KEY_CURSOR_PREFIX.length) : undefined;
    if (after === undefined || !pattern.test(after)) throw new Problem('invalid_cursor', 'Use the next_cursor value of a previous page');
  }
  return { after, limit: q.limit ?? 50 };
}

/** Trims rows read with `limit + 1` to the page, with the cursor of the next page (null on the last). */
export function keyPageOf<T>(rows: T[], limit: number, keyOf: (row: T) => string): { rows: T[]; next_cursor: string | null } {
  if (rows.length <= limit) return { rows, next_cursor: null };
  const page = rows.slice(0, limit);
  return { rows: page, next_cursor: Buffer.from(KEY_CURSOR_PREFIX + keyOf(page.at(-1)!), 'utf8').toString('base64url') };
}

/** A kind's name (kinds, preferences, sends). */
export const KIND_PATTERN = '^[a-z0-9][a-z0-9_.-]{0,63}$';

/** Local wall-clock time, HH:MM (24 h): quiet hours and blackout windows. */
export const LOCAL_TIME_PATTERN = '^([01][0-9]|2[0-3]):[0-5][0-9]$';

export const TOPIC_KEY_PATTERN = '^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$';
export const TopicKey = Type.String({ pattern: TOPIC_KEY_PATTERN, description: 'Your key for the topic, e.g. ops or project:42:watchers' });
