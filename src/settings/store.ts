// Workspace settings (table workspace_settings). A workspace without a row has the defaults.

import type { Kysely } from 'kysely';
import type { Database } from '../store/schema.ts';

/** A channel's blackout window: no sends between start and end, local time in `timezone`. */
export interface BlackoutWindow {
  start: string;
  end: string;
  timezone: string;
}

export interface WorkspaceSettings {
  workspace_id: string;
  default_locale: string;
  channel_blackouts: Record<string, BlackoutWindow> | null;
  /** Null for the defaults of a workspace whose settings were never set. */
  updated_at: number | null;
}

export const DEFAULT_LOCALE = 'en';

export async function getSettings(db: Kysely<Database>, workspaceId: string): Promise<WorkspaceSettings> {
  const r = await db.selectFrom('workspace_settings').selectAll().where('workspace_id', '=', workspaceId).executeTakeFirst();
  if (!r) return { workspace_id: workspaceId, default_locale: DEFAULT_LOCALE, channel_blackouts: null, updated_at: null };
  return {
    workspace_id: r.workspace_id,
    default_locale: r.default_locale,
    channel_blackouts: r.channel_blackouts === null ? null : (JSON.parse(r.channel_blackouts) as Record<string, BlackoutWindow>),
    updated_at: r.updated_at,
  };
}

/** Replaces the workspace's settings. */
export async function putSettings(
  db: Kysely<Database>,
  s: { workspace_id: string; default_locale: string; channel_blackouts: Record<string, BlackoutWindow> | null },
  now = Date.now(),
): Promise<WorkspaceSettings> {
  const changes = { default_locale: s.default_locale, channel_blackouts: s.channel_blackouts === null ? null : JSON.stringify(s.channel_blackouts), updated_at: now };
  await db
    .insertInto('workspace_settings')
    .values({ workspace_id: s.workspace_id, ...changes })
    .onConflict((oc) => oc.column('workspace_id').doUpdateSet(changes))
    .execute();
  return { ...s, updated_at: now };
}
