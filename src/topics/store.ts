// Topics (tables topics, topic_members): named audiences of recipients.
//
// Members are written and removed in statements of at most MEMBER_CHUNK rows, each its own
// statement outside any transaction: a bulk add of any size never becomes one giant statement or
// transaction, and since adding is idempotent (ON CONFLICT DO NOTHING) and removing too, a bulk
// change that fails half-way is completed by repeating it. Members are ordered by recipient_id;
// listings and the fan-out page by it (keyset), never by OFFSET.

import type { Kysely } from 'kysely';
import type { StoreAdapter } from '../store/adapter.ts';
import type { Database, TopicsTable } from '../store/schema.ts';

/** The most rows one member statement writes or names. */
export const MEMBER_CHUNK = 500;

export interface TopicMember {
  recipient_id: string;
  added_at: number;
}

/** Creates a topic or renames it; returns it and whether it was created. */
export async function upsertTopic(db: Kysely<Database>, workspaceId: string, key: string, name: string | null, now = Date.now()): Promise<{ topic: TopicsTable; created: boolean }> {
  const existing = await getTopic(db, workspaceId, key);
  const topic: TopicsTable = { workspace_id: workspaceId, key, name, created_at: existing?.created_at ?? now, updated_at: now };
  await db
    .insertInto('topics')
    .values(topic)
    .onConflict((oc) => oc.columns(['workspace_id', 'key']).doUpdateSet({ name, updated_at: now }))
    .execute();
  return { topic, created: !existing };
}

export async function getTopic(db: Kysely<Database>, workspaceId: string, key: string): Promise<TopicsTable | undefined> {
  return db.selectFrom('topics').selectAll().where('workspace_id', '=', workspaceId).where('key', '=', key).executeTakeFirst();
}

/** Topics by key, `limit` of them after `after` (keyset). */
export async function listTopics(db: Kysely<Database>, workspaceId: string, q: { after?: string | undefined; limit: number }): Promise<TopicsTable[]> {
  let query = db.selectFrom('topics').selectAll().where('workspace_id', '=', workspaceId);
  if (q.after !== undefined) query = query.where('key', '>', q.after);
  return query.orderBy('key').limit(q.limit).execute();
}

/** Deletes a topic with its memberships, in one transaction (a later topic with the same key starts empty). */
export async function deleteTopic(store: StoreAdapter, workspaceId: string, key: string): Promise<boolean> {
  return store.transaction(async (trx) => {
    const r = await trx.deleteFrom('topics').where('workspace_id', '=', workspaceId).where('key', '=', key).executeTakeFirst();
    if (Number(r.numDeletedRows) === 0) return false;
    await trx.deleteFrom('topic_members').where('workspace_id', '=', workspaceId).where('topic_key', '=', key).execute();
    return true;
  });
}

/** Adds recipients to a topic, MEMBER_CHUNK per statement; returns how many were not members yet. */
export async function addMembers(db: Kysely<Database>, workspaceId: string, topicKey: string, recipientIds: readonly string[], now = Date.now()): Promise<number> {
  const ids = [...new Set(recipientIds)];
  let added = 0;
  for (let i = 0; i < ids.length; i += MEMBER_CHUNK) {
    const rows = ids.slice(i, i + MEMBER_CHUNK).map((recipient_id) => ({ workspace_id: workspaceId, topic_key: topicKey, recipient_id, added_at: now }));
    const r = await db
      .insertInto('topic_members')
      .values(rows)
      .onConflict((oc) => oc.columns(['workspace_id', 'topic_key', 'recipient_id']).doNothing())
      .executeTakeFirst();
    added += Number(r.numInsertedOrUpdatedRows ?? 0n);
  }
  return added;
}

/** Removes recipients from a topic, MEMBER_CHUNK per statement; returns how many were members. */
export async function removeMembers(db: Kysely<Database>, workspaceId: string, topicKey: string, recipientIds: readonly string[]): Promise<number> {
  const ids = [...new Set(recipientIds)];
  let removed = 0;
  for (let i = 0; i < ids.length; i += MEMBER_CHUNK) {
    const r = await db
      .deleteFrom('topic_members')
      .where('workspace_id', '=', workspaceId)
      .where('topic_key', '=', topicKey)
      .where('recipient_id', 'in', ids.slice(i, i + MEMBER_CHUNK))
      .executeTakeFirst();
    removed += Number(r.numDeletedRows);
  }
  return removed;
}

/** A page of a topic's members in recipient_id order, strictly after `after`. */
export async function listMembers(db: Kysely<Database>, workspaceId: string, topicKey: string, q: { after?: string | undefined; limit: number }): Promise<TopicMember[]> {
  let query = db.selectFrom('topic_members').select(['recipient_id', 'added_at']).where('workspace_id', '=', workspaceId).where('topic_key', '=', topicKey);
  if (q.after !== undefined) query = query.where('recipient_id', '>', q.after);
  return query.orderBy('recipient_id').limit(q.limit).execute();
}

/**
 * The next batch of a topic's member ids for a fan-out: up to `limit` ids in recipient_id order,
 * strictly after `afterRecipientId` (null: from the start). An empty array means done. Each batch
 * is its own short read, so a fan-out holds no transaction across batches.
 */
export async function memberIdsAfter(db: Kysely<Database>, workspaceId: string, topicKey: string, afterRecipientId: string | null, limit: number): Promise<string[]> {
  let query = db.selectFrom('topic_members').select('recipient_id').where('workspace_id', '=', workspaceId).where('topic_key', '=', topicKey);
  if (afterRecipientId !== null) query = query.where('recipient_id', '>', afterRecipientId);
  return (await query.orderBy('recipient_id').limit(limit).execute()).map((r) => r.recipient_id);
}

export async function countMembers(db: Kysely<Database>, workspaceId: string, topicKey: string): Promise<number> {
  const r = await db
    .selectFrom('topic_members')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('workspace_id', '=', workspaceId)
    .where('topic_key', '=', topicKey)
    .executeTakeFirstOrThrow();
  return Number(r.n);
}

/** Removes a recipient from every topic (part of deleting the recipient). */
export async function removeRecipientFromTopics(db: Kysely<Database>, workspaceId: string, recipientId: string): Promise<number> {
  const r = await db.deleteFrom('topic_members').where('workspace_id', '=', workspaceId).where('recipient_id', '=', recipientId).executeTakeFirst();
  return Number(r.numDeletedRows);
}

/** Which of `ids` are recipients of the workspace (MEMBER_CHUNK ids per query). */
export async function existingRecipientIds(db: Kysely<Database>, workspaceId: string, ids: readonly string[]): Promise<Set<string>> {
  const unique = [...new Set(ids)];
  const found = new Set<string>();
  for (let i = 0; i < unique.length; i += MEMBER_CHUNK) {
    const rows = await db.selectFrom('recipients').select('id').where('workspace_id', '=', workspaceId).where('id', 'in', unique.slice(i, i + MEMBER_CHUNK)).execute();
    for (const r of rows) found.add(r.id);
  }
  return found;
}
