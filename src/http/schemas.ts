// Schemas shared by several resources.

import { Type } from 'typebox';

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
