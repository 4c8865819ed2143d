// The real-time gateway's JSON protocol (docs/realtime.md): parsing client frames. Pure.
//
// Contract of `parseClientFrame(text)`: a typed frame, or `{error: {code, message}}` for anything
// else (not JSON, not an object, an unknown `type`, a missing or wrongly typed field, an unknown
// field). It never throws, whatever the input.

export type Since = { readonly offset: number; readonly epoch: string };

export type ClientFrame =
  | { readonly type: 'auth'; readonly token: string }
  | { readonly type: 'refresh'; readonly token: string }
  | { readonly type: 'subscribe'; readonly channel: string; readonly since?: Since }
  | { readonly type: 'unsubscribe'; readonly channel: string }
  | { readonly type: 'message'; readonly to: string; readonly body: string; readonly client_id: string }
  | { readonly type: 'typing'; readonly to?: string; readonly room?: string; readonly active: boolean }
  | { readonly type: 'presence'; readonly ids: readonly string[] }
  | { readonly type: 'inbox.mark'; readonly ids: readonly string[]; readonly state: InboxMarkState }
  | { readonly type: 'ping' };

export const INBOX_MARK_STATES = ['seen', 'read', 'unread', 'archived'] as const;
export type InboxMarkState = (typeof INBOX_MARK_STATES)[number];

export interface FrameError {
  readonly code: 'malformed_frame' | 'unknown_frame' | 'invalid_frame';
  readonly message: string;
}

/** Longest token accepted in a frame. */
export const MAX_TOKEN_LENGTH = 8192;
/** Most ids in one presence or inbox.mark frame. */
export const MAX_IDS = 100;
/** Longest direct message body, in characters. */
export const MAX_MESSAGE_BODY = 16_384;
/** Channel names: `inbox` or `room:<name>`, names of 1-128 of these characters. */
export const ROOM_NAME = /^[A-Za-z0-9_.:@-]{1,128}$/;
/** Recipient ids as the REST API accepts them. */
const ID = /^[A-Za-z0-9][A-Za-z0-9._:@+-]{0,127}$/;
const CLIENT_ID = /^[!-~]{1,128}$/;

const FIELDS: Record<ClientFrame['type'], readonly string[]> = {
  auth: ['token'],
  refresh: ['token'],
  subscribe: ['channel', 'since'],
  unsubscribe: ['channel'],
  message: ['to', 'body', 'client_id'],
  typing: ['to', 'room', 'active'],
  presence: ['ids'],
  'inbox.mark': ['ids', 'state'],
  ping: [],
};

/** Whether `channel` is a channel name a client may name: `inbox` or `room:<name>`. */
export function isChannelName(channel: string): boolean {
  return channel === 'inbox' || (channel.startsWith('room:') && ROOM_NAME.test(channel.slice(5)));
}

export function isRecipientId(id: string): boolean {
  return ID.test(id);
}

export function parseClientFrame(text: string): ClientFrame | { error: FrameError } {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return fail('malformed_frame', 'A frame must be one JSON object');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail('malformed_frame', 'A frame must be one JSON object');
  const o = v as Record<string, unknown>;
  const type = o.type;
  if (typeof type !== 'string') return fail('invalid_frame', 'A frame needs a string "type"');
  if (!Object.hasOwn(FIELDS, type)) return fail('unknown_frame', `Unknown frame type "${type.slice(0, 64)}"`);
  const t = type as ClientFrame['type'];
  for (const k of Object.keys(o)) {
    if (k !== 'type' && !FIELDS[t].includes(k)) return fail('invalid_frame', `A ${t} frame has no field "${k.slice(0, 64)}"`);
  }
  switch (t) {
    case 'auth':
    case 'refresh':
      if (typeof o.token !== 'string' || o.token.length === 0 || o.token.length > MAX_TOKEN_LENGTH) return fail('invalid_frame', `${t} needs a "token" string`);
      return { type: t, token: o.token };
    case 'subscribe': {
      if (typeof o.channel !== 'string' || !isChannelName(o.channel)) return fail('invalid_frame', 'subscribe needs a "channel": "inbox" or "room:<name>"');
      if (o.since === undefined) return { type: t, channel: o.channel };
      const s = o.since as Record<string, unknown> | null;
      if (typeof s !== 'object' || s === null || Array.isArray(s) || Object.keys(s).some((k) => k !== 'offset' && k !== 'epoch')) {
        return fail('invalid_frame', '"since" must be {offset, epoch}');
      }
      if (!Number.isSafeInteger(s.offset) || (s.offset as number) < 0) return fail('invalid_frame', '"since.offset" must be a non-negative integer');
      if (typeof s.epoch !== 'string' || s.epoch.length === 0 || s.epoch.length > 64) return fail('invalid_frame', '"since.epoch" must be a string');
      return { type: t, channel: o.channel, since: { offset: s.offset as number, epoch: s.epoch } };
    }
    case 'unsubscribe':
      if (typeof o.channel !== 'string' || !isChannelName(o.channel)) return fail('invalid_frame', 'unsubscribe needs a "channel"');
      return { type: t, channel: o.channel };
    case 'message':
      if (typeof o.to !== 'string' || !ID.test(o.to)) return fail('invalid_frame', 'message needs "to", a recipient id');
      if (typeof o.body !== 'string' || o.body.length === 0 || o.body.length > MAX_MESSAGE_BODY || o.body.includes('\u0000')) {
        return fail('invalid_frame', `message needs a "body" of 1 to ${MAX_MESSAGE_BODY} characters`);
      }
      if (typeof o.client_id !== 'string' || !CLIENT_ID.test(o.client_id)) return fail('invalid_frame', 'message needs a "client_id" of 1 to 128 printable characters');
      return { type: t, to: o.to, body: o.body, client_id: o.client_id };
    case 'typing': {
      if (typeof o.active !== 'boolean') return fail('invalid_frame', 'typing needs "active": true or false');
      const to = o.to, room = o.room;
      if ((to === undefined) === (room === undefined)) return fail('invalid_frame', 'typing needs exactly one of "to" or "room"');
      if (to !== undefined && (typeof to !== 'string' || !ID.test(to))) return fail('invalid_frame', '"to" must be a recipient id');
      if (room !== undefined && (typeof room !== 'string' || !ROOM_NAME.test(room))) return fail('invalid_frame', '"room" must be a room name');
      return to !== undefined ? { type: t, to: to as string, active: o.active } : { type: t, room: room as string, active: o.active };
    }
    case 'presence': {
      const ids = idList(o.ids);
      if (!ids) return fail('invalid_frame', `presence needs "ids": 1 to ${MAX_IDS} recipient ids`);
      return { type: t, ids };
    }
    case 'inbox.mark': {
      const ids = idList(o.ids);
      if (!ids) return fail('invalid_frame', `inbox.mark needs "ids": 1 to ${MAX_IDS} item ids`);
      if (typeof o.state !== 'string' || !(INBOX_MARK_STATES as readonly string[]).includes(o.state)) {
        return fail('invalid_frame', `inbox.mark needs "state": ${INBOX_MARK_STATES.join(', ')}`);
      }
      return { type: t, ids, state: o.state as InboxMarkState };
    }
    case 'ping':
      return { type: t };
  }
}

function idList(v: unknown): string[] | undefined {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_IDS) return undefined;
  for (const id of v) if (typeof id !== 'string' || !ID.test(id)) return undefined;
  return [...new Set(v as string[])];
}

function fail(code: FrameError['code'], message: string): { error: FrameError } {
  return { error: { code, message } };
}

/** Most channels one cursor names. */
export const MAX_CURSOR_CHANNELS = 100;

/**
 * A connection's recovery positions as one opaque token (the SSE form's event id and `since`):
 * base64url of `{"<channel>": [offset, "epoch"], …}`. `decodeCursor` answers undefined for
 * anything `encodeCursor` cannot have made (never throws).
 */
export function encodeCursor(positions: Readonly<Record<string, Since>>): string {
  const o: Record<string, [number, string]> = {};
  for (const [channel, s] of Object.entries(positions)) o[channel] = [s.offset, s.epoch];
  return Buffer.from(JSON.stringify(o)).toString('base64url');
}

export function decodeCursor(cursor: string): Map<string, Since> | undefined {
  if (cursor.length > 16_384 || !/^[A-Za-z0-9_-]*$/.test(cursor)) return undefined;
  let v: unknown;
  try {
    v = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return undefined;
  const entries = Object.entries(v as Record<string, unknown>);
  if (entries.length > MAX_CURSOR_CHANNELS) return undefined;
  const out = new Map<string, Since>();
  for (const [channel, p] of entries) {
    if (!isChannelName(channel) || !Array.isArray(p) || p.length !== 2) return undefined;
    const [offset, epoch] = p as unknown[];
    if (!Number.isSafeInteger(offset) || (offset as number) < 0 || typeof epoch !== 'string' || epoch.length === 0 || epoch.length > 64) return undefined;
    out.set(channel, { offset: offset as number, epoch });
  }
  return out;
}
