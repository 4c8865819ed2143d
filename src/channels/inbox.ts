// The in-app inbox channel: a delivery stores an inbox item for the recipient and publishes it to
// their live real-time sessions (src/realtime/inbox.ts does both; this channel is handed that
// operation, since channels never touch the store). Every recipient has an inbox. A send reaches
// it only when its channels (or its kind's) name `inbox`; it is never a default candidate.
//
// Options (channel_options.inbox): {action_url?}.

import { Type } from 'typebox';
import { RetryableError, type Channel, type DeliveryJob, type DeliveryResult } from './channel.ts';

export const InboxOptions = Type.Object(
  { action_url: Type.Optional(Type.String({ maxLength: 2048, description: 'Where the item leads when clicked' })) },
  { additionalProperties: false },
);

/** What the inbox stores for one delivery. */
export interface InboxDelivery {
  readonly deliveryId: string;
  readonly notificationId: string;
  readonly workspaceId: string;
  readonly recipientId: string;
  readonly kind: string;
  readonly title: string;
  readonly body: string;
  readonly data: unknown;
  readonly actionUrl: string | null;
}

export class InboxChannel implements Channel {
  readonly name = 'inbox' as const;
  readonly #store: (item: InboxDelivery) => Promise<string>;

  /** `store` stores the item (idempotent per delivery id) and publishes it; resolves with the item id. */
  constructor(store: (item: InboxDelivery) => Promise<string>) {
    this.#store = store;
  }

  async deliver(job: DeliveryJob): Promise<DeliveryResult> {
    const n = job.notification;
    const actionUrl = typeof n.options.action_url === 'string' ? n.options.action_url : null;
    try {
      const id = await this.#store({
        deliveryId: job.deliveryId,
        notificationId: job.notificationId,
        workspaceId: job.workspaceId,
        recipientId: job.recipient.id,
        kind: n.kind,
        title: n.title,
        body: n.body,
        data: n.data,
        actionUrl,
      });
      return { providerMessageId: id };
    } catch (err) {
      throw new RetryableError('inbox_store', `the inbox item could not be stored: ${(err as Error).message}`);
    }
  }

  async close(): Promise<void> {}
}
