// Opaque keyset cursors. A cursor names the last row of the previous page; the next page starts
// strictly after it in the listing's order. Never an OFFSET.

const PREFIX = 'c1:';

export function encodeCursor(lastId: string): string {
  return Buffer.from(PREFIX + lastId, 'utf8').toString('base64url');
}

/** The id inside a cursor, or undefined when the cursor is not one of ours. */
export function decodeCursor(cursor: string): string | undefined {
  if (!/^[A-Za-z0-9_-]{1,200}$/.test(cursor)) return undefined;
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith(PREFIX)) return undefined;
  const id = text.slice(PREFIX.length);
  // An id of newId, or a delivery id in its notification's range (ids.ts deliveryId).
  return /^[a-z]+_[0-9A-Z]{26}([0-9A-Z]{3}|_[0-9A-Z]{26})?$/.test(id) ? id : undefined;
}
