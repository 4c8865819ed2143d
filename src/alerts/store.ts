// The operator webhook's storage: the workspace's reserved recipient OPERATOR_RECIPIENT
// (domain/operator.ts), whose webhook_url and sealed webhook_secret are the operator_webhook. Its
// deliveries are then ordinary webhook deliveries, joined to it by the claim like any other.

import type { Kysely } from 'kysely';
import { OPERATOR_RECIPIENT } from '../domain/operator.ts';
import { reservedWebhookRecipient } from '../store/reserved-webhook.ts';
import type { Database } from '../store/schema.ts';

export interface StoredOperatorWebhook {
  url: string;
  /** Sealed (auth/secret-box.ts). */
  sealedSecret: string;
  /** When the receiver answered 410 Gone (the channel then treats the webhook as absent). */
  disabledAt: number | null;
  disabledReason: string | null;
}

export async function getOperatorWebhook(db: Kysely<Database>, workspaceId: string): Promise<StoredOperatorWebhook | undefined> {
  const r = await db
    .selectFrom('recipients')
    .select(['webhook_url', 'webhook_secret', 'webhook_disabled_at', 'webhook_disabled_reason'])
    .where('workspace_id', '=', workspaceId)
    .where('id', '=', OPERATOR_RECIPIENT)
    .executeTakeFirst();
  if (!r?.webhook_url || !r.webhook_secret) return undefined;
  return { url: r.webhook_url, sealedSecret: r.webhook_secret, disabledAt: r.webhook_disabled_at, disabledReason: r.webhook_disabled_reason };
}

/** Sets the operator webhook (re-enabling one disabled by a 410), or removes it (null). */
export async function putOperatorWebhook(db: Kysely<Database>, workspaceId: string, hook: { url: string; sealedSecret: string } | null, now: number): Promise<void> {
  if (hook === null) {
    await db.deleteFrom('recipients').where('workspace_id', '=', workspaceId).where('id', '=', OPERATOR_RECIPIENT).execute();
    return;
  }
  const changes = { webhook_url: hook.url, webhook_secret: hook.sealedSecret, webhook_disabled_at: null, webhook_disabled_reason: null, updated_at: now };
  await db
    .insertInto('recipients')
    .values(reservedWebhookRecipient(workspaceId, OPERATOR_RECIPIENT, 'Operator webhook', hook, now))
    .onConflict((oc) => oc.columns(['workspace_id', 'id']).doUpdateSet(changes))
    .execute();
}

/** Workspaces that have an operator webhook. */
export async function workspacesWithOperatorWebhook(db: Kysely<Database>): Promise<string[]> {
  const rows = await db.selectFrom('recipients').select('workspace_id').where('id', '=', OPERATOR_RECIPIENT).where('webhook_url', 'is not', null).execute();
  return rows.map((r) => r.workspace_id);
}
