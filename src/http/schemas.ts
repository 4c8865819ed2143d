// Schemas shared by several resources.

import { Type, type TSchema } from 'typebox';
import { decodeCursor, encodeCursor } from '../domain/cursor.ts';
import { Problem } from '../errors.ts';

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

/** Response entries for the problem statuses a route can answer with. */
export function problems(...statuses: number[]): Record<number, unknown> {
  return Object.fromEntries(statuses.map((s) => [s, { $ref: 'Problem#', description: 'Problem details' }]));
}

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
