// Herald's own webhooks (operator alerts, src/alerts; inbound forwards, src/subscriptions) travel as
// ordinary webhook deliveries: a reserved recipient row holds the address (ids start with "_",
// which no API recipient id does; recipient listings leave them out), and each message is a
// notification with one webhook delivery to it, written by the accept path like any other, so it
// gets the queue's retries, circuit breaker, attempt log and dead-letter queue.

import { deliveryId } from '../domain/ids.ts';
import type { AcceptItem } from './adapter.ts';
import type { RecipientsTable } from './schema.ts';

/** The row of a reserved recipient whose only address is the webhook `hook` (its secret sealed). */
export function reservedWebhookRecipient(workspaceId: string, id: string, name: string, hook: { url: string; sealedSecret: string }, now: number): RecipientsTable {
  return {
    workspace_id: workspaceId,
    id,
    name,
    email: null,
    phone: null,
    locale: null,
    timezone: null,
    webhook_url: hook.url,
    webhook_secret: hook.sealedSecret,
    webhook_disabled_at: null,
    webhook_disabled_reason: null,
    pushover_user_key: null,
    pushover_device: null,
    slack_webhook_url: null,
    discord_webhook_url: null,
    kakao_phone: null,
    address_disabled: null,
    metadata: null,
    created_at: now,
    updated_at: now,
  };
}

/** A notification `id` with one webhook delivery, due now, to the reserved `recipient`; `dedupe` holds its key until expiresAt. */
export function reservedWebhookItem(m: {
  workspaceId: string;
  id: string;
  recipient: string;
  kind: string;
  title: string;
  body: string;
  data: unknown;
  now: number;
  dedupe?: { key: string; expiresAt: number } | undefined;
}): AcceptItem {
  const { workspaceId, id, recipient, now } = m;
  return {
    notification: {
      id,
      workspace_id: workspaceId,
      kind: m.kind,
      title: m.title,
      body: m.body,
      data: JSON.stringify(m.data),
      metadata: null,
      status: 'accepted',
      idempotency_key: null,
      delivery_count: 1,
      channel_options: null,
      fallback: 0,
      routing: 'all',
      template: null,
      created_at: now,
    },
    deliveries: [
      {
        id: deliveryId(id, 0),
        workspace_id: workspaceId,
        notification_id: id,
        recipient_id: recipient,
        channel: 'webhook',
        device_id: null,
        status: 'pending',
        reason: null,
        attempts: 0,
        run_at: now,
        lease_owner: null,
        error_class: null,
        last_error: null,
        provider_message_id: null,
        created_at: now,
        updated_at: now,
        completed_at: null,
        after_id: null,
        content: null,
      },
    ],
    ...(m.dedupe && { dedupe: { key: m.dedupe.key, recipients: [recipient], expiresAt: m.dedupe.expiresAt } }),
  };
}
