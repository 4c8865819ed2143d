// Recipient preferences (table preferences), with their JSON parsed. A recipient without a row has
// the defaults: every kind allowed on the kind's channels, no quiet hours.

import { sql, type Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';
import type { StoreAdapter } from '../store/adapter.ts';

export interface KindPreference {
  /** false: opted out (never for a mandatory kind). Absent: allowed. */
  allowed?: boolean;
  /** The channels the recipient wants this kind on, in their order of priority. Absent: the kind's. */
  channels?: string[];
}

/** Local wall-clock times "HH:MM" in the recipient's time zone (UTC without one); end may be before start (crosses midnight). */
export interface QuietHours {
  start: string;
  end: string;
}

export interface Preferences {
  workspace_id: string;
  recipient_id: string;
  kinds: Record<string, KindPreference>;
  quiet_hours: QuietHours | null;
  /** Null for the defaults of a recipient who never set preferences. */
  updated_at: number | null;
}

export function defaultPreferences(workspaceId: string, recipientId: string): Preferences {
  return { workspace_id: workspaceId, recipient_id: recipientId, kinds: {}, quiet_hours: null, updated_at: null };
}

/** A recipient's preferences (the defaults when none were set). */
export async function getPreferences(db: Kysely<Database>, workspaceId: string, recipientId: string): Promise<Preferences> {
  return (await getPreferencesFor(db, workspaceId, [recipientId])).get(recipientId)!;
}

/** The preferences of each recipient among `ids` (defaults for those without), in one query per 500 ids. */
export async function getPreferencesFor(db: Kysely<Database>, workspaceId: string, ids: readonly string[]): Promise<Map<string, Preferences>> {
  const out = new Map<string, Preferences>();
  for (const id of ids) out.set(id, defaultPreferences(workspaceId, id));
  for (let i = 0; i < ids.length; i += 500) {
    const rows = await db
      .selectFrom('preferences')
      .selectAll()
      .where('workspace_id', '=', workspaceId)
      .where('recipient_id', 'in', ids.slice(i, i + 500))
      .execute();
    for (const r of rows) {
      out.set(r.recipient_id, {
        workspace_id: r.workspace_id,
        recipient_id: r.recipient_id,
        kinds: JSON.parse(r.kinds) as Record<string, KindPreference>,
        quiet_hours: r.quiet_hours === null ? null : (JSON.parse(r.quiet_hours) as QuietHours),
        updated_at: r.updated_at,
      });
    }
  }
  return out;
}

/** Replaces a recipient's preferences. */
export async function putPreferences(
  db: Kysely<Database>,
  p: { workspace_id: string; recipient_id: string; kinds: Record<string, KindPreference>; quiet_hours: QuietHours | null },
  now = Date.now(),
): Promise<Preferences> {
  const changes = { kinds: JSON.stringify(p.kinds), quiet_hours: p.quiet_hours === null ? null : JSON.stringify(p.quiet_hours), updated_at: now };
  await db
    .insertInto('preferences')
    .values({ workspace_id: p.workspace_id, recipient_id: p.recipient_id, ...changes })
    .onConflict((oc) => oc.columns(['workspace_id', 'recipient_id']).doUpdateSet(changes))
    .execute();
  return { ...p, updated_at: now };
}

/**
 * Read-modify-write of a recipient's preferences in one transaction: `change` gets the current
 * preferences (the defaults when never set) and the recipient's time zone, and returns the new ones
 * (or throws, and nothing changes). Returns undefined, changing nothing, when there is no such
 * recipient. Concurrent changes of one recipient's preferences are serialized, on both stores, by
 * first locking the recipient's row with an UPDATE that changes nothing (a row lock on PostgreSQL,
 * which also holds off a concurrent DELETE of the recipient; SQLite transactions are serial), so
 * none is lost.
 */
export async function changePreferences(
  store: StoreAdapter,
  workspaceId: string,
  recipientId: string,
  change: (current: Preferences, timezone: string | null) => { kinds: Record<string, KindPreference>; quiet_hours: QuietHours | null },
  now = Date.now(),
): Promise<{ preferences: Preferences; timezone: string | null } | undefined> {
  return store.transaction(async (trx) => {
    const recipient = await trx
      .updateTable('recipients')
      .set({ updated_at: sql<number>`updated_at` })
      .where('workspace_id', '=', workspaceId)
      .where('id', '=', recipientId)
      .returning('timezone')
      .executeTakeFirst();
    if (!recipient) return undefined;
    const next = change(await getPreferences(trx, workspaceId, recipientId), recipient.timezone);
    return { preferences: await putPreferences(trx, { workspace_id: workspaceId, recipient_id: recipientId, ...next }, now), timezone: recipient.timezone };
  });
}

/** Erases a recipient's preferences (part of deleting the recipient). */
export async function deletePreferences(db: Kysely<Database>, workspaceId: string, recipientId: string): Promise<boolean> {
  const r = await db.deleteFrom('preferences').where('workspace_id', '=', workspaceId).where('recipient_id', '=', recipientId).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}
