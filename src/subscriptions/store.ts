// Subscriptions' queries (Kysely, both dialects): the subscriptions, their runs, and each forward's
// reserved webhook recipient (`_fwd_` + the subscription id; like the operator webhook,
// alerts/store.ts, it is a recipient row so that a forward is an ordinary webhook delivery, claimed
// and joined to its address like any other). Reserved recipient ids start with "_", which no API
// recipient id does, and recipient listings leave them out.

import type { Kysely } from 'kysely';
import { reservedWebhookRecipient } from '../store/reserved-webhook.ts';
import type { Database, SubscriptionRunsTable, SubscriptionsTable } from '../store/schema.ts';

export function forwardRecipientId(subscriptionId: string): string {
  return `_fwd_${subscriptionId}`;
}

export async function insertSubscription(db: Kysely<Database>, row: SubscriptionsTable, forward: { url: string; sealedSecret: string } | undefined): Promise<void> {
  await db.transaction().execute(async (tx) => {
    await tx.insertInto('subscriptions').values(row).execute();
    if (!forward) return;
    await tx
      .insertInto('recipients')
      .values(reservedWebhookRecipient(row.workspace_id, forwardRecipientId(row.id), `Subscription ${row.id} forward`, forward, row.created_at))
      .execute();
  });
}

export function getSubscription(db: Kysely<Database>, workspaceId: string, id: string): Promise<SubscriptionsTable | undefined> {
  return db.selectFrom('subscriptions').selectAll().where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
}

/** Oldest first, after the cursor id. */
export function listSubscriptions(db: Kysely<Database>, workspaceId: string, q: { after?: string | undefined; limit: number }): Promise<SubscriptionsTable[]> {
  let query = db.selectFrom('subscriptions').selectAll().where('workspace_id', '=', workspaceId);
  if (q.after !== undefined) query = query.where('id', '>', q.after);
  return query.orderBy('id').limit(q.limit).execute();
}

/** Every subscription of a workspace (the per-event job matches each). */
export function workspaceSubscriptions(db: Kysely<Database>, workspaceId: string): Promise<SubscriptionsTable[]> {
  return db.selectFrom('subscriptions').selectAll().where('workspace_id', '=', workspaceId).orderBy('id').execute();
}

/**
 * Deletes a subscription and its forward recipient (deliveries already made keep their rows and
 * run or dead-letter as they would; their recipient is gone, so the claim skips them). Whether it existed.
 */
export async function deleteSubscription(db: Kysely<Database>, workspaceId: string, id: string): Promise<boolean> {
  return db.transaction().execute(async (tx) => {
    const r = await tx.deleteFrom('subscriptions').where('workspace_id', '=', workspaceId).where('id', '=', id).executeTakeFirst();
    await tx.deleteFrom('recipients').where('workspace_id', '=', workspaceId).where('id', '=', forwardRecipientId(id)).execute();
    return Number(r.numDeletedRows) > 0;
  });
}

/** The subscriptions that already ran for this event in this run. */
export async function ranSubscriptions(db: Kysely<Database>, eventId: string, run: string): Promise<Set<string>> {
  const rows = await db.selectFrom('subscription_runs').select('subscription_id').where('event_id', '=', eventId).where('run', '=', run).execute();
  return new Set(rows.map((r) => r.subscription_id));
}

export async function recordRun(db: Kysely<Database>, row: SubscriptionRunsTable): Promise<void> {
  await db.insertInto('subscription_runs').values(row).onConflict((oc) => oc.columns(['event_id', 'subscription_id', 'run']).doNothing()).execute();
}

/** An event's runs, oldest first. */
export function eventRuns(db: Kysely<Database>, workspaceId: string, eventId: string): Promise<SubscriptionRunsTable[]> {
  return db.selectFrom('subscription_runs').selectAll().where('workspace_id', '=', workspaceId).where('event_id', '=', eventId).orderBy('created_at').orderBy('subscription_id').execute();
}

/** Organizations that have subscriptions. */
export async function subscribedWorkspaces(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('subscriptions').select('workspace_id').distinct().execute();
  return rows.map((r) => r.workspace_id);
}

/** Which of these events have a recorded first run (of any subscription). */
export async function eventsRun(db: Kysely<Database>, eventIds: readonly string[]): Promise<Set<string>> {
  if (eventIds.length === 0) return new Set();
  const rows = await db.selectFrom('subscription_runs').select('event_id').distinct().where('event_id', 'in', [...eventIds]).where('run', '=', 'event').execute();
  return new Set(rows.map((r) => r.event_id));
}
