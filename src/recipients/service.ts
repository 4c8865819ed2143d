// Recipients of a workspace: read, create or replace, delete (erasing personal data), and
// disabling an address a vendor reported gone. Every change drops the accept path's cached copy of
// the recipient on every node (queue/recipient-cache.ts).

import type { Kysely } from 'kysely';
import type { RecipientCache } from '../queue/recipient-cache.ts';
import type { Events } from '../events/events.ts';
import { moveEvents } from '../events/delivery-events.ts';
import type { StoreAdapter } from '../store/adapter.ts';
import type { Database, RecipientsTable } from '../store/schema.ts';
import { deleteRecipient, disableRecipientAddress, disableRecipientWebhook, getRecipient, listRecipients, upsertRecipient } from './store.ts';

export class RecipientService {
  readonly #store: StoreAdapter;
  readonly #db: Kysely<Database>;
  readonly #cache: RecipientCache;
  readonly #events: Events | undefined;

  constructor(store: StoreAdapter, deps: { cache: RecipientCache; events?: Events | undefined }) {
    this.#store = store;
    this.#db = store.db;
    this.#cache = deps.cache;
    this.#events = deps.events;
  }

  get(workspaceId: string, id: string): Promise<RecipientsTable | undefined> {
    return getRecipient(this.#db, workspaceId, id);
  }

  /** By id, keyset-paged after `after`; `q` keeps those whose id, name or email contains it, ignoring case. */
  list(workspaceId: string, q: { after?: string | undefined; limit: number; q?: string | undefined }): Promise<RecipientsTable[]> {
    return listRecipients(this.#db, this.#store.dialect, workspaceId, q);
  }

  /** Creates or replaces the recipient; true when it was created. */
  async upsert(row: RecipientsTable): Promise<boolean> {
    const created = await upsertRecipient(this.#db, row);
    this.#cache.invalidate(row.workspace_id, row.id);
    return created;
  }

  /**
   * Deletes the recipient and its personal data; its unsent deliveries are skipped (announced as
   * delivery.status). False when there is none.
   */
  async delete(workspaceId: string, id: string): Promise<boolean> {
    const skipped = await deleteRecipient(this.#store, workspaceId, id);
    this.#cache.invalidate(workspaceId, id);
    if (skipped?.length) this.#events?.emit(moveEvents(skipped));
    return skipped !== undefined;
  }

  /** After a vendor reported the recipient's address on `channel` gone; a later PUT with it re-enables it. */
  async disableAddress(workspaceId: string, id: string, channel: string, now: number): Promise<void> {
    await disableRecipientAddress(this.#db, workspaceId, id, channel, now);
    this.#cache.invalidate(workspaceId, id);
  }

  /** After the recipient's webhook answered 410 Gone; a later PUT re-enables it. */
  async disableWebhook(workspaceId: string, id: string, reason: string, now: number): Promise<void> {
    await disableRecipientWebhook(this.#db, workspaceId, id, reason, now);
    this.#cache.invalidate(workspaceId, id);
  }
}
