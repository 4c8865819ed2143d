// Templates (table templates): append-only versions per key; the latest version is the highest.
// A PUT writes version max + 1; two concurrent PUTs of one key never share a version (the loser of
// the primary key retries with the next number).

import type { Kysely } from 'kysely';
import type { StoreAdapter } from '../store/adapter.ts';
import type { Database } from '../store/schema.ts';

/** One variant of a template: for a locale and, optionally, one channel (null: any channel). */
export interface TemplateVariant {
  locale: string;
  channel: string | null;
  title: string;
  body: string;
  html?: string;
  subject?: string;
}

export interface Template {
  workspace_id: string;
  key: string;
  version: number;
  variants: TemplateVariant[];
  created_at: number;
}

/** A template key with its latest version, for listings. */
export interface TemplateSummary {
  key: string;
  latest_version: number;
  /** When the first version was written. */
  created_at: number;
  /** When the latest version was written. */
  updated_at: number;
}

/** Writes the next version of `key` (1 for a new key) and returns it. */
export async function putTemplate(store: StoreAdapter, workspaceId: string, key: string, variants: TemplateVariant[], now = Date.now()): Promise<Template> {
  const json = JSON.stringify(variants);
  for (let tries = 0; ; tries++) {
    const version = await store.transaction(async (trx) => {
      const { latest } = await trx
        .selectFrom('templates')
        .select((eb) => eb.fn.max<number | null>('version').as('latest'))
        .where('workspace_id', '=', workspaceId)
        .where('key', '=', key)
        .executeTakeFirstOrThrow();
      const next = Number(latest ?? 0) + 1;
      const r = await trx
        .insertInto('templates')
        .values({ workspace_id: workspaceId, key, version: next, variants: json, created_at: now })
        .onConflict((oc) => oc.columns(['workspace_id', 'key', 'version']).doNothing())
        .executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0n) > 0 ? next : undefined;
    });
    if (version !== undefined) return { workspace_id: workspaceId, key, version, variants, created_at: now };
    if (tries >= 20) throw new Error(`could not write a new version of template "${key}": too many concurrent writers`);
  }
}

/** The given version of a template, or its latest. */
export async function getTemplate(db: Kysely<Database>, workspaceId: string, key: string, version?: number): Promise<Template | undefined> {
  let q = db.selectFrom('templates').selectAll().where('workspace_id', '=', workspaceId).where('key', '=', key);
  q = version === undefined ? q.orderBy('version', 'desc').limit(1) : q.where('version', '=', version);
  const r = await q.executeTakeFirst();
  return r && { workspace_id: r.workspace_id, key: r.key, version: Number(r.version), variants: JSON.parse(r.variants) as TemplateVariant[], created_at: r.created_at };
}

/** Template keys in order, `limit` of them after `after` (keyset), with their latest version. */
export async function listTemplates(db: Kysely<Database>, workspaceId: string, q: { after?: string | undefined; limit: number }): Promise<TemplateSummary[]> {
  let query = db
    .selectFrom('templates')
    .select((eb) => [
      'key',
      eb.fn.max<number>('version').as('latest_version'),
      eb.fn.min<number>('created_at').as('created_at'),
      eb.fn.max<number>('created_at').as('updated_at'),
    ])
    .where('workspace_id', '=', workspaceId);
  if (q.after !== undefined) query = query.where('key', '>', q.after);
  const rows = await query.groupBy('key').orderBy('key').limit(q.limit).execute();
  return rows.map((r) => ({ key: r.key, latest_version: Number(r.latest_version), created_at: Number(r.created_at), updated_at: Number(r.updated_at) }));
}

/** Deletes every version of a template. */
export async function deleteTemplate(db: Kysely<Database>, workspaceId: string, key: string): Promise<boolean> {
  const r = await db.deleteFrom('templates').where('workspace_id', '=', workspaceId).where('key', '=', key).executeTakeFirst();
  return Number(r.numDeletedRows) > 0;
}
