// The in-app inbox: items stored durably per recipient (a delivery to the `inbox` channel makes
// one), read by the application (`GET /v1/recipients/{id}/inbox`) and by the recipient
// (`/v1/me/inbox`, the gateway's `inbox.mark`), and published to the recipient's live sessions on
// their `inbox` stream (`<org>/inbox:<recipient>`): `inbox.item` for a new item, `inbox.unread`
// with the unread count after every change, so every session of the recipient shows the same count.
//
// An item's status: unseen -> seen -> read -> archived (read and archived can be reached directly;
// `unread` clears read). Reading an item moves its delivery to `read` (deliveries/service.ts
// report), which announces `delivery.status`. Publishing is best effort: the store is the truth,
// and a session that missed a publication recovers it or re-reads the inbox over REST.

import type { Kysely } from 'kysely';
import type { Logger } from 'pino';
import type { InboxDelivery } from '../channels/inbox.ts';
import type { Database } from '../store/schema.ts';
import type { InboxMarkState } from '../domain/realtime-protocol.ts';
import { countUnread, getInboxItem, insertInboxItem, listInbox, markInbox, markUnread, type InboxRow, type InboxStatusFilter } from './store.ts';
import type { RealtimeService } from './service.ts';

export interface InboxItemView {
  id: string;
  notification_id: string | null;
  kind: string | null;
  title: string | null;
  body: string | null;
  data: unknown;
  action_url: string | null;
  status: 'unseen' | 'seen' | 'read' | 'archived';
  created_at: string;
  seen_at: string | null;
  read_at: string | null;
  archived_at: string | null;
}

const iso = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());

export function inboxView(r: InboxRow): InboxItemView {
  return {
    id: r.id,
    notification_id: r.notification_id,
    kind: r.kind,
    title: r.title,
    body: r.body,
    data: r.data === null ? null : (JSON.parse(r.data) as unknown),
    action_url: r.action_url,
    status: r.archived_at !== null ? 'archived' : r.read_at !== null ? 'read' : r.seen_at !== null ? 'seen' : 'unseen',
    created_at: new Date(r.created_at).toISOString(),
    seen_at: iso(r.seen_at),
    read_at: iso(r.read_at),
    archived_at: iso(r.archived_at),
  };
}

/** The inbox item id of a delivery: `inb_` and the delivery id's own part, so a retry finds it. */
export function inboxItemId(deliveryId: string): string {
  return `inb_${deliveryId.slice(deliveryId.indexOf('_') + 1)}`;
}

export class InboxService {
  readonly #db: Kysely<Database>;
  readonly #realtime: RealtimeService;
  readonly #report: (deliveryId: string) => Promise<unknown>;
  readonly #log: Logger;

  constructor(deps: { db: Kysely<Database>; realtime: RealtimeService; report: (deliveryId: string) => Promise<unknown>; log: Logger }) {
    this.#db = deps.db;
    this.#realtime = deps.realtime;
    this.#report = deps.report;
    this.#log = deps.log;
  }

  /** Stores the delivery's item (once per delivery) and publishes it; resolves with its id. */
  async deliver(d: InboxDelivery): Promise<string> {
    const row: InboxRow = {
      id: inboxItemId(d.deliveryId),
      workspace_id: d.workspaceId,
      recipient_id: d.recipientId,
      notification_id: d.notificationId,
      delivery_id: d.deliveryId,
      kind: d.kind,
      title: d.title,
      body: d.body,
      data: d.data === undefined || d.data === null ? null : JSON.stringify(d.data),
      action_url: d.actionUrl,
      created_at: Date.now(),
      seen_at: null,
      read_at: null,
      archived_at: null,
    };
    if (await insertInboxItem(this.#db, row)) {
      await this.#publish(d.workspaceId, d.recipientId, { type: 'inbox.item', item: inboxView(row) });
      await this.#publishUnread(d.workspaceId, d.recipientId);
    }
    return row.id;
  }

  async list(workspaceId: string, recipientId: string, status: InboxStatusFilter, before: string | undefined, limit: number): Promise<{ data: InboxItemView[]; next: string | null }> {
    const rows = await listInbox(this.#db, workspaceId, recipientId, status, before, limit + 1);
    const more = rows.length > limit;
    const page = rows.slice(0, limit);
    return { data: page.map(inboxView), next: more ? page.at(-1)!.id : null };
  }

  async get(workspaceId: string, recipientId: string, id: string): Promise<InboxItemView | undefined> {
    const r = await getInboxItem(this.#db, workspaceId, recipientId, id);
    return r && inboxView(r);
  }

  unread(workspaceId: string, recipientId: string): Promise<number> {
    return countUnread(this.#db, workspaceId, recipientId);
  }

  /**
   * Marks the recipient's items (`ids`, or all when undefined) `state`; ids of other recipients
   * are ignored. Moves read items' deliveries to `read` and publishes the unread count. Returns how
   * many items changed.
   */
  async mark(workspaceId: string, recipientId: string, ids: readonly string[] | undefined, state: InboxMarkState): Promise<number> {
    let changed: number;
    if (state === 'unread') changed = ids ? await markUnread(this.#db, workspaceId, recipientId, ids) : 0;
    else {
      const deliveries = await markInbox(this.#db, workspaceId, recipientId, ids, state === 'read' ? 'read_at' : state === 'archived' ? 'archived_at' : 'seen_at', Date.now());
      changed = deliveries.length;
      if (state === 'read') {
        for (const id of deliveries) {
          if (id) await this.#report(id).catch((err: unknown) => this.#log.warn({ err, delivery: id }, 'inbox read: the delivery could not be moved to read'));
        }
      }
    }
    if (changed > 0) await this.#publishUnread(workspaceId, recipientId);
    return changed;
  }

  async #publishUnread(workspaceId: string, recipientId: string): Promise<void> {
    await this.#publish(workspaceId, recipientId, { type: 'inbox.unread', unread: await countUnread(this.#db, workspaceId, recipientId) });
  }

  async #publish(workspaceId: string, recipientId: string, data: unknown): Promise<void> {
    try {
      await this.#realtime.publish(workspaceId, `inbox:${recipientId}`, data);
    } catch (err) {
      this.#log.warn({ err: (err as Error).message }, 'inbox publication failed; sessions re-read the inbox');
    }
  }
}
