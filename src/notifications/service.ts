// Notifications: send (the accept path, queue/accept.ts: durable before it answers), read one with
// its deliveries and attempt log, list, and cancel what has not been sent.

import type { Kysely } from 'kysely';
import type { NotificationStatus } from '../domain/delivery-status.ts';
import type { Accepter, AcceptResult, SendRequest } from '../queue/accept.ts';
import type { Events } from '../events/events.ts';
import { moveEvents } from '../events/delivery-events.ts';
import type { StoreAdapter } from '../store/adapter.ts';
import type { Database, DeliveriesTable, NotificationsTable } from '../store/schema.ts';
import { cancelNotification, getFanout, getNotification, listNotifications, type NotificationRecord } from './store.ts';

export type { AcceptResult, SendRequest } from '../queue/accept.ts';
export type { NotificationRecord } from './store.ts';

export class NotificationService {
  readonly #store: StoreAdapter;
  readonly #db: Kysely<Database>;
  readonly #accepter: Accepter;
  readonly #events: Events | undefined;

  constructor(store: StoreAdapter, deps: { accepter: Accepter; events?: Events | undefined }) {
    this.#events = deps.events;
    this.#store = store;
    this.#db = store.db;
    this.#accepter = deps.accepter;
  }

  /** Accepts a send; resolves once it is durably stored (or replays the answer to an Idempotency-Key). */
  send(workspaceId: string, req: SendRequest, idempotencyKey?: string): Promise<AcceptResult> {
    return this.#accepter.accept(workspaceId, req, idempotencyKey);
  }

  get(workspaceId: string, id: string): Promise<NotificationRecord | undefined> {
    return getNotification(this.#db, workspaceId, id);
  }

  /** The topic fan-out's progress of a notification sent to a topic. */
  fanout(notificationId: string): Promise<{ topic: string; state: string; recipients: number } | undefined> {
    return getFanout(this.#db, notificationId);
  }

  /** Newest first, before the cursor id, with their deliveries. */
  list(
    workspaceId: string,
    q: { recipient?: string | undefined; status?: NotificationStatus | undefined; before?: string | undefined; limit: number },
  ): Promise<{ notifications: NotificationsTable[]; deliveries: DeliveriesTable[] }> {
    return listNotifications(this.#db, workspaceId, q);
  }

  /**
   * Cancels the deliveries still waiting and announces each (delivery.status); undefined for an
   * unknown notification, else how many.
   */
  async cancel(workspaceId: string, id: string): Promise<number | undefined> {
    const moves = await cancelNotification(this.#store, workspaceId, id, Date.now());
    if (moves?.length) this.#events?.emit(moveEvents(moves));
    return moves?.length;
  }
}
